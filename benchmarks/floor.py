"""How fast the design can go: the processing floor next to ``json.loads`` (issue 10).

``benchmarks/processing.py`` times the shipped iBuildApp path. This module asks what any
implementation within docs/contracts.md could reach on the same pre-recorded pages: pydantic validates
the records, the raw table keeps each record's payload next to typed columns, the vendor's
``conform.py`` maps a pandas frame, and both land in DuckDB. It builds that path up one stage
at a time, each stage the least work it can be, with the fastest primitives at hand, and
times every prefix as a full pass over the pages:

1. ``json_loads``: bare ``json.loads`` of each page (the reference of the ratio).
2. ``parse``: ``pydantic_core.from_json`` of each page (parse only).
3. ``validate``: one ``TypeAdapter.validate_json`` per page against strict ``TypedDict`` s (the
   shipped ``TimeEntryFast``): parse and validate in one pass.
4. ``payload``: + each record's JSON text (``pydantic_core.to_json``), the raw payload column.
5. ``raw_frame``: + the typed columns as a pandas frame, every 20,000 records.
6. ``raw_write``: + each frame inserted into a DuckDB table (no transaction, no delete).
7. ``conform_write``: + the vendor's ``conform_timesheets`` on each frame and its insert.

Left out, so the floor lies under any real pipeline: HTTP, envelope checks, the side-table
join, duplicates, the date window, quarantine, the IO manager's transaction.

For scale, one path outside the design: ``duckdb_elt`` spools the pages as NDJSON and lets
DuckDB's compiled JSON reader write the raw table (typed columns + payload) and a SQL conform
write the conformed one: no pydantic, no pandas.

Every prefix runs in one process per size, pages in memory before timing, the cyclic garbage
collector paused during a pass (as the shipped read pauses it) except for the ``json.loads``
reference, which runs as ``benchmarks/processing.py`` times it; best of ``--repeat``.

    python -m benchmarks.floor --records 100000 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.processing import PageStore, record_pages

STAGES = ("json_loads", "parse", "validate", "payload", "raw_frame", "raw_write", "conform_write")
ELT = "duckdb_elt"
BATCH_RECORDS = 20_000
STAGE_NOTES = {
    "json_loads": "bare json.loads of each page, collector running (reference)",
    "parse": "pydantic_core.from_json of each page",
    "validate": "TypeAdapter.validate_json, strict TypedDicts (parse + validate, one pass)",
    "payload": "+ each record's JSON text (pydantic_core.to_json)",
    "raw_frame": "+ typed columns as a pandas frame per 20,000 records",
    "raw_write": "+ each frame inserted into DuckDB",
    "conform_write": "+ conform_timesheets on each frame, inserted into DuckDB",
    ELT: "outside the design: DuckDB read_json → raw table, SQL conform → conformed table",
}


# -- the stages -----------------------------------------------------------------------------------
def _page_adapter():
    from pydantic import TypeAdapter
    from typing_extensions import TypedDict

    from timesheet_assets.vendors.ibuildapp.models import TimeEntryFast

    class Data(TypedDict, total=False):
        time_entries: list[TimeEntryFast]

    class Page(TypedDict, total=False):
        data: Data

    return TypeAdapter(Page)


def _raw_frame(entries: list[dict[str, Any]], payloads: list[bytes]):
    import numpy as np
    import pandas as pd

    from timesheet_assets.vendors.ibuildapp.assets import _epochs, _texts

    count = len(entries)
    starts = np.fromiter((e["start_time"] for e in entries), dtype=np.int64, count=count)
    start = pd.Series(pd.to_datetime(starts, unit="s", utc=True))
    return pd.DataFrame(
        {
            "record_key": _texts([e["id"] for e in entries]),
            "work_date": start.dt.date,
            "user_id": _texts([e["user_id"] for e in entries]),
            "task_id": _texts([e.get("task_id") for e in entries]),
            "start_time": start,
            "end_time": _epochs([e.get("end_time") for e in entries]),
            "duration_seconds": np.array([e.get("duration") for e in entries], dtype=np.float64),
            "breaks": np.fromiter((e.get("breaks") or 0 for e in entries), dtype=np.int64, count=count),
            "comments": np.fromiter((e.get("comments") or 0 for e in entries), dtype=np.int64, count=count),
            "status": [e.get("status") for e in entries],
            "payment_status": [e.get("payment_status") for e in entries],
            "approve_date": _epochs([e.get("approve_date") for e in entries]),
            "updated_at": _epochs([e.get("updated") for e in entries]),
            "payload": [p.decode() for p in payloads],
        }
    )


class _Sink:
    """Appends frames to one table of an open DuckDB connection (created from the first)."""

    def __init__(self, connection: Any, table: str) -> None:
        self.connection, self.table, self.created = connection, table, False

    def write(self, frame: Any) -> None:
        self.connection.register("incoming", frame)
        if not self.created:
            self.connection.execute(f"CREATE TABLE {self.table} AS SELECT * FROM incoming")
            self.created = True
        else:
            self.connection.execute(f"INSERT INTO {self.table} SELECT * FROM incoming")
        self.connection.unregister("incoming")


def _connect(database: str):
    import duckdb

    from timesheet_assets.settings import warehouse_memory_limit

    # The warehouse's own budget per connection.
    connection = duckdb.connect(database)
    connection.execute(f"SET memory_limit='{warehouse_memory_limit()}'")
    return connection


def run_stage(pages: list[bytes], stage: str, database: str) -> dict[str, Any]:
    """One full pass of ``stage`` (with every stage before it) over ``pages``; what it wrote."""
    import pydantic_core

    from timesheet_assets.vendors.ibuildapp.conform import conform_timesheets

    depth = STAGES.index(stage)
    if stage == "json_loads":
        return {"records": sum(len(json.loads(p)["data"]["time_entries"]) for p in pages)}
    if stage == "parse":
        return {"records": sum(len(pydantic_core.from_json(p)["data"]["time_entries"]) for p in pages)}
    adapter = _page_adapter()
    connection = _connect(database) if depth >= STAGES.index("raw_write") else None
    raw_sink = _Sink(connection, "raw") if connection is not None else None
    conformed_sink = _Sink(connection, "conformed") if depth >= STAGES.index("conform_write") else None
    records = 0
    entries: list[dict[str, Any]] = []
    payloads: list[bytes] = []

    def flush() -> None:
        frame = _raw_frame(entries, payloads)
        if raw_sink is not None:
            raw_sink.write(frame)
        if conformed_sink is not None:
            conformed_sink.write(conform_timesheets(frame))
        entries.clear()
        payloads.clear()

    try:
        for body in pages:
            batch = adapter.validate_json(body)["data"]["time_entries"]
            records += len(batch)
            if depth < STAGES.index("payload"):
                continue
            payloads.extend(pydantic_core.to_json(entry) for entry in batch)
            if depth < STAGES.index("raw_frame"):
                payloads.clear()
                continue
            entries.extend(batch)
            if len(entries) >= BATCH_RECORDS:
                flush()
        if entries:
            flush()
    finally:
        if connection is not None:
            connection.close()
    return {"records": records}


ELT_RAW = """
CREATE TABLE raw AS
SELECT r.id::VARCHAR AS record_key,
       to_timestamp(r.start_time)::DATE AS work_date,
       r.user_id::VARCHAR AS user_id,
       r.task_id::VARCHAR AS task_id,
       to_timestamp(r.start_time) AS start_time,
       to_timestamp(nullif(r.end_time, 0)) AS end_time,
       r.duration::DOUBLE AS duration_seconds,
       r.breaks, r.comments, r.status, r.payment_status,
       to_timestamp(nullif(r.approve_date, 0)) AS approve_date,
       to_timestamp(nullif(r.updated, 0)) AS updated_at,
       entry::VARCHAR AS payload
FROM (
    SELECT entry, from_json(entry, '{"id":"BIGINT","user_id":"BIGINT","task_id":"BIGINT",
        "start_time":"BIGINT","end_time":"BIGINT","approve_date":"BIGINT","updated":"BIGINT",
        "duration":"DOUBLE","breaks":"BIGINT","comments":"BIGINT","status":"VARCHAR",
        "payment_status":"VARCHAR"}') AS r
    FROM (SELECT unnest(data.time_entries) AS entry
          FROM read_json(?, format = 'newline_delimited', maximum_object_size = ?,
                         columns = {data: 'STRUCT(time_entries JSON[])'}))
)
"""
ELT_CONFORMED = """
CREATE TABLE conformed AS
SELECT 'ibuildapp' AS source_system, record_key AS entry_id, work_date, user_id AS employee_id,
       round(coalesce(duration_seconds, epoch(end_time) - epoch(start_time), 0) / 3600.0, 6) AS total_hours,
       CASE WHEN lower(trim(payment_status)) IN ('payed', 'paid') THEN 'paid'
            ELSE coalesce(CASE lower(trim(status)) WHEN 'approved' THEN 'approved'
                 WHEN 'rejected' THEN 'rejected' WHEN 'in-progress' THEN 'draft' END, 'unknown') END AS status,
       updated_at AS source_updated_at
FROM raw
"""


def run_elt(pages: list[bytes], database: str) -> dict[str, Any]:
    """Pages → NDJSON spool → DuckDB raw and conformed tables, in SQL only."""
    spool = database + ".ndjson"
    with open(spool, "wb") as out:
        for body in pages:
            out.write(body.replace(b"\n", b" "))  # JSON allows whitespace wherever a newline sits
            out.write(b"\n")
    connection = _connect(database)
    try:
        # Rows in any order: DuckDB streams the read without holding it for ordering.
        connection.execute("SET preserve_insertion_order = false")
        # The reader's buffer is sized to the largest object it may meet: the largest page.
        connection.execute(ELT_RAW, [spool, max(map(len, pages), default=0) + 1])
        connection.execute(ELT_CONFORMED)
        records = connection.execute("SELECT count(*) FROM raw").fetchone()[0]
    finally:
        connection.close()
        os.remove(spool)
    return {"records": int(records)}


def written(database: str) -> dict[str, Any]:
    """What a writing pass left behind: rows, payloads and hours of the two tables."""
    import duckdb

    with duckdb.connect(database, read_only=True) as connection:
        raw_rows, payloads = connection.execute("SELECT count(*), count(payload) FROM raw").fetchone()
        conformed_rows, hours = connection.execute("SELECT count(*), sum(total_hours) FROM conformed").fetchone()
    return {
        "raw_rows": int(raw_rows),
        "payloads": int(payloads),
        "conformed_rows": int(conformed_rows),
        "total_hours": round(float(hours or 0.0), 3),
    }


# -- one size, in its own process ---------------------------------------------------------------
def _timed(run: Callable[[], dict[str, Any]], pause_gc: bool = True) -> tuple[float, dict[str, Any]]:
    gc.collect()
    if pause_gc:
        gc.disable()
    try:
        started = time.perf_counter()
        result = run()
        return time.perf_counter() - started, result
    finally:
        gc.enable()


def measure(store: PageStore, repeat: int) -> dict[str, Any]:
    pages = list(store.iter_pages())
    seconds: dict[str, float] = {}
    checks: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        # Imports, schema builds and DuckDB's extension loading paid once, untimed.
        for stage in STAGES:
            run_stage(pages[:2], stage, os.path.join(tmp, f"warm-{stage}.duckdb"))
        run_elt(pages[:2], os.path.join(tmp, "warm-elt.duckdb"))
        for attempt in range(repeat):
            # Stages interleaved, so a busy moment on the machine hits all of them alike.
            for stage in (*STAGES, ELT):
                database = os.path.join(tmp, f"{stage}-{attempt}.duckdb")
                if stage == ELT:
                    elapsed, result = _timed(lambda database=database: run_elt(pages, database))
                else:
                    # The reference is bare json.loads as the processing table times it; every
                    # stage of the floor gets the pipeline's paused collector.
                    elapsed, result = _timed(
                        lambda stage=stage, database=database: run_stage(pages, stage, database),
                        stage != "json_loads",
                    )
                if result["records"] != store.records:
                    raise RuntimeError(f"{stage} read {result['records']} records of {store.records}")
                seconds[stage] = min(seconds.get(stage, elapsed), elapsed)
                if stage in ("conform_write", ELT):
                    checks[stage] = written(database)
                if os.path.exists(database):
                    os.remove(database)
    reference = seconds["json_loads"]
    rows = []
    previous = 0.0
    for stage in (*STAGES, ELT):
        rows.append(
            {
                "stage": stage,
                "seconds": round(seconds[stage], 4),
                "added_s": round(seconds[stage] - previous, 4) if stage in STAGES[1:] else None,
                "records_per_s": round(store.records / seconds[stage], 1),
                "ratio": round(reference / seconds[stage], 3),
            }
        )
        if stage in STAGES:
            previous = seconds[stage]
    return {"records": store.records, "mb": round(store.total_bytes / 1e6, 1), "rows": rows, "written": checks}


def run_floor(sizes: list[int], repeat: int = 3, cache_dir: Path | None = None) -> dict[str, Any]:
    """``measure`` for each size, each in a fresh process."""
    results = []
    for records in sizes:
        store = record_pages(records, cache_dir)
        command = [
            sys.executable,
            "-m",
            "benchmarks.floor",
            "--child",
            str(Path(store.path).with_suffix(".json")),
            "--repeat",
            str(repeat),
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"floor benchmark at {records} records failed:\n{done.stderr[-4000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"sizes": results, "repeat": repeat}


def floor_table(result: dict[str, Any]) -> str:
    from tabulate import tabulate

    sizes = result["sizes"]
    headers = ["stage", "what it adds"]
    for size in sizes:
        headers += [f"{size['records']:,}: s", "ratio"]
    body = []
    for index, stage in enumerate((*STAGES, ELT)):
        line = [stage, STAGE_NOTES[stage]]
        for size in sizes:
            row = size["rows"][index]
            line += [row["seconds"], row["ratio"]]
        body.append(line)
    return tabulate(body, headers=headers, tablefmt="github")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        store = PageStore(**json.loads(Path(args.child).read_text()))
        print(json.dumps(measure(store, args.repeat)))
        return 0
    result = run_floor(args.records, args.repeat)
    print(floor_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
