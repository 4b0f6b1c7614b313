"""Warehouse writes on both backends, side by side.

The frames are the iBuildApp time-entry path's own (``benchmarks.processing``): the raw frame
``load_time_entries`` builds from pre-recorded pages, and ``conform_timesheets`` of it. They
are built once and pickled; each backend then runs in a fresh process that loads them and
writes them through ``WarehouseIOManager.handle_output`` as a single-run backfill of their
window does (one transaction each: delete the window, load, insert), raw first, then
conformed (which declares its primary key: staged, incoming keys removed from other days,
inserted). Reported per backend: rows/s of each write and of both, the process's peak RSS and
its RSS with the frames loaded (what the writes added is the difference).

PostgreSQL is a throwaway server started here (``tests/support/postgres.py``), on this
machine, with ``fsync`` on (the test servers turn it off), over loopback TCP.

    python -m benchmarks.warehouse --records 1000000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("duckdb", "postgresql")
POSTGRES_TARGET_ROWS_PER_S = 50_000
WARMUP_ROWS = 2_000


def prepare_frames(records: int, cache_dir: Path | None = None) -> Path:
    """Pickle the raw and conformed frames of a ``records``-entry window (cached)."""
    from benchmarks import processing

    store = processing.record_pages(records, cache_dir)
    path = Path(store.path).with_suffix(".frames.pickle")
    if path.exists():
        return path
    from timesheet_assets.vendors.ibuildapp.assets import load_time_entries
    from timesheet_assets.vendors.ibuildapp.conform import conform_timesheets

    resource = processing.bench_resource(store)
    try:
        raw, _ = load_time_entries(resource, *store.window)
    finally:
        resource.close()
    frames = {"window": store.window, "raw": raw.frame, "conformed": conform_timesheets(raw.frame)}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        pickle.dump(frames, out, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.rename(path)
    return path


def _write_both(database: str, frames: dict[str, Any]) -> dict[str, float]:
    from benchmarks.processing import write_through_io_manager
    from timesheet_assets.conformed.assets import TIMESHEETS_KEY
    from timesheet_assets.vendors.ibuildapp.assets import TIME_ENTRIES_KEY

    first, last = frames["window"]
    started = time.perf_counter()
    write_through_io_manager(database, TIME_ENTRIES_KEY, frames["raw"], first, last)
    raw_done = time.perf_counter()
    write_conformed(database, TIMESHEETS_KEY, frames["conformed"], first, last)
    finished = time.perf_counter()
    return {"raw_s": raw_done - started, "conformed_s": finished - raw_done}


def write_conformed(database: str, asset_key: Any, frame: Any, first: date, last: date) -> None:
    """As ``write_through_io_manager``, with the conformed asset's primary key declared."""
    import dagster as dg

    from timesheet_assets.conformed.schema import TIMESHEET_KEY
    from timesheet_assets.ingest.partitions import daily_partitions
    from timesheet_assets.storage import PRIMARY_KEY, WarehouseIOManager

    context = dg.build_output_context(
        asset_key=asset_key,
        definition_metadata={"partition_expr": "work_date", PRIMARY_KEY: list(TIMESHEET_KEY)},
        asset_partitions_def=daily_partitions(first.isoformat()),
        asset_partition_key_range=dg.PartitionKeyRange(first.isoformat(), last.isoformat()),
    )
    WarehouseIOManager(database=database).create_io_manager(None).handle_output(context, frame)


def _count(database: str, table: str) -> int:
    from tests.support.dagster_helpers import query

    return int(query(database, f"SELECT count(*) FROM {table}")[0][0])


def measure(backend: str, database: str, warmup_database: str, frames_path: Path) -> dict[str, Any]:
    from benchmarks.processing import peak_rss_mb

    with open(frames_path, "rb") as source:
        frames = pickle.load(source)
    # Warm-up on a small slice into its own database: imports and first-use costs paid once.
    small = {**frames, "raw": frames["raw"].head(WARMUP_ROWS), "conformed": frames["conformed"].head(WARMUP_ROWS)}
    _write_both(warmup_database, small)
    del small
    gc.collect()
    rss_loaded = peak_rss_mb()
    load_before = os.getloadavg()[0]
    seconds = _write_both(database, frames)
    raw_rows, conformed_rows = len(frames["raw"]), len(frames["conformed"])
    return {
        "backend": backend,
        "raw_rows": raw_rows,
        "conformed_rows": conformed_rows,
        "raw_rows_written": _count(database, "ibuildapp.time_entries"),
        "conformed_rows_written": _count(database, "conformed.timesheets"),
        "raw_s": round(seconds["raw_s"], 3),
        "conformed_s": round(seconds["conformed_s"], 3),
        "raw_rows_per_s": round(raw_rows / seconds["raw_s"]),
        "conformed_rows_per_s": round(conformed_rows / seconds["conformed_s"]),
        "rows_per_s": round((raw_rows + conformed_rows) / (seconds["raw_s"] + seconds["conformed_s"])),
        "rss_with_frames_mb": round(rss_loaded, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        # The machine is shared: the 1-minute load average before and after the writes says
        # how much of it this measurement had.
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def _spawn(backend: str, database: str, warmup: str, frames_path: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.warehouse", "--child", backend, database, warmup, str(frames_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"warehouse benchmark ({backend}) failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_warehouse(records: int, cache_dir: Path | None = None, log=print) -> dict[str, Any]:
    from tests.support.postgres import postgres_server

    log(f"warehouse benchmark: preparing the frames of {records:,} records ...")
    frames_path = prepare_frames(records, cache_dir)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        log("  duckdb ...")
        rows.append(_spawn("duckdb", os.path.join(tmp, "w.duckdb"), os.path.join(tmp, "warm.duckdb"), frames_path, {}))
        log("  postgresql ...")
        with postgres_server({"fsync": "on"}) as server:
            database, warmup = server.create_database("bench"), server.create_database("warmup")
            env = {"TIMESHEET_WAREHOUSE_PASSWORD": server.password}
            rows.append(_spawn("postgresql", server.url(database), server.url(warmup), frames_path, env))
    return {"records": records, "rows": rows, "postgres_target_rows_per_s": POSTGRES_TARGET_ROWS_PER_S}


def warehouse_table(result: dict[str, Any]) -> str:
    from tabulate import tabulate

    body = [
        [
            r["backend"],
            f"{r['raw_rows']:,}",
            f"{r['raw_rows_per_s']:,}",
            f"{r['conformed_rows']:,}",
            f"{r['conformed_rows_per_s']:,}",
            f"{r['rows_per_s']:,}",
            r["rss_with_frames_mb"],
            r["peak_rss_mb"],
            "ok"
            if (r["raw_rows_written"], r["conformed_rows_written"]) == (r["raw_rows"], r["conformed_rows"])
            else "MISMATCH",
            " → ".join(str(v) for v in r.get("load_average", [])),
        ]
        for r in result["rows"]
    ]
    return tabulate(
        body,
        headers=[
            "backend",
            "raw rows",
            "raw rows/s",
            "conformed rows",
            "conformed rows/s",
            "all rows/s",
            "RSS with frames MB",
            "peak RSS MB",
            "rows in tables",
            "load average (2 cores)",
        ],
        tablefmt="github",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=4, metavar=("BACKEND", "DATABASE", "WARMUP", "FRAMES"))
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")
    if args.child:
        backend, database, warmup, frames = args.child
        print(json.dumps(measure(backend, database, warmup, Path(frames))))
        return 0
    result = run_warehouse(args.records)
    print(warehouse_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
