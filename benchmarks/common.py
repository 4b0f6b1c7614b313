"""What every vendor benchmark shares: its row (columns fixed by the performance issue), the
full / no-change / changed sequence on one sandbox, and the command line."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from timesheet_assets.sandbox.server import SandboxServer

Row = dict[str, Any]


def scenario_row(
    vendor: str,
    scenario: str,
    *,
    requests: int,
    records: int,
    wall_s: float,
    rate_violations: int,
    documented_limit_rps: float | None = None,
) -> dict[str, Any]:
    achieved = requests / wall_s if wall_s > 0 else 0.0
    return {
        "vendor": vendor,
        "scenario": scenario,
        "requests": int(requests),
        "records": int(records),
        "wall_s": round(wall_s, 3),
        "achieved_rps": round(achieved, 3),
        "documented_limit_rps": documented_limit_rps,
        "utilisation_pct": round(100.0 * achieved / documented_limit_rps, 1) if documented_limit_rps else None,
        "rate_violations": int(rate_violations),
        "requests_per_1000_records": round(1000.0 * requests / records, 2) if records else None,
    }


def counted_row(
    vendor: str,
    scenario: str,
    stats: Any,
    started: float,
    *,
    records: int,
    documented_limit_rps: float | None = None,
) -> Row:
    """A scenario's row as the sandbox counted it: requests and violations since
    ``stats.reset()``, wall seconds since ``started`` (``time.perf_counter()``)."""
    wall_s = time.perf_counter() - started
    summary = stats.summary()
    return scenario_row(
        vendor,
        scenario,
        requests=int(summary["requests"]),
        records=records,
        wall_s=wall_s,
        rate_violations=summary["violations"],
        documented_limit_rps=documented_limit_rps,
    )


def incremental_scenarios(
    app: Any,
    run: Callable[[str, SandboxServer], Row],
    change: Callable[[], Any],
    changed_name: str = "after_1pct_changed",
) -> list[Row]:
    """On one sandbox server for ``app``: ``full``, ``no_change``, then ``change()`` (about 1 %
    of the records edited) and ``changed_name``; each row from ``run(scenario, server)``."""
    with SandboxServer(app) as server:
        rows = [run("full", server), run("no_change", server)]
        change()
        rows.append(run(changed_name, server))
    return rows


def rows_cli(description: str, run_benchmark: Callable[[int], list[Row]], default_records: int, what: str) -> None:
    """``python -m benchmarks.vendor_<v> --records N``: one JSON row per scenario."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--records", type=int, default=default_records, help=f"{what} in the sandbox")
    args = parser.parse_args()
    for row in run_benchmark(args.records):
        print(json.dumps(row))
