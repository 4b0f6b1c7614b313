"""Memory of a long Blikk backfill against the number of pages it reads.

For each size, a Blikk sandbox holding ``records`` time reports of 200 users over 365 days runs
in this process; a fresh child interpreter materializes ``raw/blikk/time_reports``,
``raw/blikk/projects``, ``conformed/projects`` and ``conformed/timesheets`` over the whole year
in one in-process run (as the run worker does for ``refresh_blikk``), on a DuckDB warehouse of
its own (``--postgres``: a PostgreSQL database; ``--raw-only``: the raw assets only). The child reports its peak RSS (``VmHWM``) and its RSS once everything was
imported, so ``run peak - baseline`` is what the run itself added; with ``--tracemalloc`` it
also reports the peak of Python allocations (slower).

What this measures does not depend on CPU speed: the sandbox's rate limit is lifted and the
client paced faster than Blikk allows (memory is about pages held, not time), requests are
counted by the sandbox. ``python -m benchmarks.backfill_memory 10000 70000``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DAYS = 365
EMPLOYEES = 200
# Pacing for the measurement only: memory depends on the pages held, not on how fast they came.
MEASURE_REQUESTS_PER_SECOND = 40.0
# What the child runs; a wrapper script may stand in (e.g. one sampling RSS around each stage,
# its stderr shown with BACKFILL_MEMORY_SHOW_CHILD=1).
CHILD_ENTRY = ["-m", "benchmarks.backfill_memory"]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    # VmHWM, not ``getrusage``'s ru_maxrss: Linux carries ru_maxrss over an exec, so a child
    # would report the RSS of the parent that started it (here the sandbox, which grows with
    # the records) whenever that was larger than its own.
    return _status_mb("VmHWM")


def child(url: str, first: date, last: date, warehouse: str, trace: bool, raw_only: bool = False) -> dict[str, Any]:
    """One backfill in this process (the raw assets only with ``raw_only``); its memory figures."""
    import dagster as dg

    from timesheet_assets.conformed.assets import build_conformed_projects, build_conformed_timesheets
    from timesheet_assets.storage import WarehouseIOManager
    from timesheet_assets.vendors.blikk import PLUGIN, BlikkResource
    from timesheet_assets.vendors.blikk.assets import blikk_projects, blikk_time_reports
    from timesheet_assets.vendors.blikk.sandbox import sandbox_env

    assets = [blikk_time_reports, blikk_projects]
    if not raw_only:
        assets += [build_conformed_projects([PLUGIN]), build_conformed_timesheets([PLUGIN])]
    resources = {
        "io_manager": WarehouseIOManager(database=warehouse),
        "blikk": BlikkResource.from_values(sandbox_env(url), requests_per_second=MEASURE_REQUESTS_PER_SECOND),
    }
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
    baseline = _rss_mb()
    if trace:
        import tracemalloc

        tracemalloc.start()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(assets, resources=resources, instance=instance, tags=tags)
    figures = {
        "success": result.success,
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    if trace:
        figures["traced_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    return figures


def measure(
    records: int,
    trace: bool = False,
    anchor: date | None = None,
    raw_only: bool = False,
    postgres: Any = None,
) -> dict[str, Any]:
    """Serve a sandbox of ``records`` reports and run one backfill of it in a child process,
    on a DuckDB file of its own or a new database of the ``postgres`` server."""
    from timesheet_assets.sandbox.data import SandboxConfig
    from timesheet_assets.sandbox.server import SandboxServer
    from timesheet_assets.vendors.blikk.sandbox import create_app

    anchor = anchor or date(2026, 6, 30)
    first = anchor - timedelta(days=DAYS - 1)
    config = SandboxConfig(time_records=records, days=DAYS, employees=EMPLOYEES, anchor_date=anchor)
    app = create_app(config)
    with SandboxServer(app) as server, tempfile.TemporaryDirectory(prefix="backfill-memory-") as workdir:
        server.sandbox.rate_rule = None  # see the module docstring: not a rate measurement
        command = (
            [
                sys.executable,
                *CHILD_ENTRY,
                "--child",
                server.url,
                "--first",
                first.isoformat(),
                "--last",
                anchor.isoformat(),
                "--warehouse",
                postgres.url(postgres.create_database("backfill")) if postgres else str(Path(workdir) / "w.duckdb"),
            ]
            + (["--tracemalloc"] if trace else [])
            + (["--raw-only"] if raw_only else [])
        )
        env = {**os.environ, "DAGSTER_HOME": workdir}
        if postgres:
            env["TIMESHEET_WAREHOUSE_PASSWORD"] = postgres.password
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"backfill child failed:\n{done.stderr[-4000:]}")
        if os.environ.get("BACKFILL_MEMORY_SHOW_CHILD"):
            print(done.stderr, file=sys.stderr)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        requests = len(server.sandbox.stats.calls("/v1/Core/TimeReports"))
    run_mb = figures["peak_rss_mb"] - figures["baseline_rss_mb"]
    return {"records": records, "time_report_requests": requests, **figures, "run_added_mb": round(run_mb, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 70_000])
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="on a PostgreSQL warehouse (a server of its own)")
    parser.add_argument(
        "--raw-only", action="store_true", help="materialize the raw assets only (the read and its write)"
    )
    parser.add_argument("--child")
    parser.add_argument("--first")
    parser.add_argument("--last")
    parser.add_argument("--warehouse")
    args = parser.parse_args(argv)
    if args.child:
        figures = child(
            args.child,
            date.fromisoformat(args.first),
            date.fromisoformat(args.last),
            args.warehouse,
            args.tracemalloc,
            args.raw_only,
        )
        print(json.dumps(figures))
        return
    if args.postgres:
        from tests.support.postgres import postgres_server

        with postgres_server() as server:
            rows = [measure(size, args.tracemalloc, raw_only=args.raw_only, postgres=server) for size in args.sizes]
    else:
        rows = [measure(size, args.tracemalloc, raw_only=args.raw_only) for size in args.sizes]
    for row in rows:
        print(json.dumps(row))
    if len(rows) >= 2:
        low, high = rows[0], rows[-1]
        pages = high["time_report_requests"] - low["time_report_requests"]
        growth = (high["run_added_mb"] - low["run_added_mb"]) / max(1, pages) * 100
        print(f"growth: {growth:.1f} MB of peak RSS per 100 time-report pages")


if __name__ == "__main__":
    main()
