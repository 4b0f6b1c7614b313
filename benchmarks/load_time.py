"""What loading the code location costs a fresh interpreter (the run worker and the code server
each start one), against a bare ``import dagster``.

Each measure is a fresh ``python -c`` timed from inside (``time.perf_counter`` around the
statement), ``--runs`` times, interleaved so that a change in the machine's load touches
every measure alike; the medians are printed with the load average before and after.
CPU seconds (``*_cpu``) are given beside wall seconds: they move far less with the load.
``project_on_top_s`` is what this project adds to Dagster's own import: its modules, the
libraries they import, and building the Definitions. ``modules`` lists the libraries the
project brings into the process when the location loads (what a lazy import could remove).

``python -m benchmarks.load_time --runs 5``; ``--compare DIR`` also loads the code location
from another source tree (e.g. ``git archive main | tar -x -C DIR``), interleaved with this
one, for a before/after under the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

MEASURES = {
    "import_dagster_s": "import dagster",
    "load_location_s": "import timesheet_assets.definitions",
}

_TIMED = """
import time
_start, _cpu = time.perf_counter(), time.process_time()
{statement}
print(time.perf_counter() - _start, time.process_time() - _cpu)
"""

_LIBRARIES = """
import sys
import dagster
before = set(sys.modules)
import timesheet_assets.definitions
added = sorted({m.split('.')[0] for m in set(sys.modules) - before} - {'timesheet_assets'})
print(' '.join(added))
"""

WATCHED = ("pandas", "numpy", "duckdb", "httpx", "psycopg2", "starlette", "uvicorn", "rich")


# The other tree's package instead of the editable install's (whose finder comes first).
_OTHER_TREE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path.insert(0, {source!r})
"""


def _run(code: str, source: str | None = None) -> str:
    prelude = _OTHER_TREE.format(source=source) if source else ""
    done = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def measure(runs: int = 5, compare: str | None = None) -> dict[str, Any]:
    measures = {name: (statement, None) for name, statement in MEASURES.items()}
    if compare:
        measures["load_location_compared_s"] = (MEASURES["load_location_s"], compare)
    load_before = os.getloadavg()
    samples: dict[str, list[float]] = {name: [] for name in measures}
    cpu: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, (statement, source) in measures.items():
            wall, used = _run(_TIMED.format(statement=statement), source).split()
            samples[name].append(float(wall))
            cpu[name].append(float(used))
    load_after = os.getloadavg()
    medians = {name: round(statistics.median(values), 3) for name, values in samples.items()}
    # CPU seconds move far less with the machine's load than wall seconds do.
    medians.update({f"{name}_cpu": round(statistics.median(values), 3) for name, values in cpu.items()})
    added = _run(_LIBRARIES).split()
    compared = {}
    if compare:
        compared = {
            "compared_tree": compare,
            "compared_on_top_s": round(medians["load_location_compared_s"] - medians["import_dagster_s"], 3),
            "compared_on_top_cpu_s": round(
                medians["load_location_compared_s_cpu"] - medians["import_dagster_s_cpu"], 3
            ),
            "compared_libraries_loaded": [n for n in WATCHED if n in _run(_LIBRARIES, compare).split()],
        }
    return {
        **medians,
        "project_on_top_s": round(medians["load_location_s"] - medians["import_dagster_s"], 3),
        "project_on_top_cpu_s": round(medians["load_location_s_cpu"] - medians["import_dagster_s_cpu"], 3),
        **compared,
        "runs": runs,
        "samples": {name: [round(v, 3) for v in values] for name, values in samples.items()},
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "watched_libraries_loaded": [name for name in WATCHED if name in added],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", help="another source tree holding timesheet_assets/")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.runs, args.compare), indent=2))


if __name__ == "__main__":
    main()
