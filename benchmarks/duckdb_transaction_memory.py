"""What DuckDB holds in the writer's memory while one transaction replaces a window of rows.

For each row count, a fresh child interpreter creates a DuckDB file with a staging table of
rows shaped like ``raw/blikk/time_reports`` (a ~1 KB payload text and 28 short text columns),
committed in slices of 2,000 and checkpointed; reopens the file with the warehouse's
``memory_limit``; and, in one transaction, deletes the window from the target table and inserts
the staged rows. It reports the RSS added by that transaction (after commit, and at the peak).

Run: ``python -m benchmarks.duckdb_transaction_memory 20000 70000 140000 280000``.
The rows are built by DuckDB itself, so the numbers are DuckDB's, not pandas'.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TEXT_COLUMNS = 28
PAYLOAD_CHARS = 900
SLICE = 2_000


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    # VmHWM: ``getrusage``'s ru_maxrss survives an exec and may be the parent's.
    return _status_mb("VmHWM")


def child(rows: int, memory_limit: str) -> dict[str, Any]:
    import duckdb

    with tempfile.TemporaryDirectory() as workdir:
        path = str(Path(workdir) / "warehouse.duckdb")
        columns = ", ".join(f"c{i} VARCHAR" for i in range(TEXT_COLUMNS))
        values = ", ".join(f"'value-{i}-' || (i * {i + 7})::VARCHAR" for i in range(TEXT_COLUMNS))
        with duckdb.connect(path, config={"memory_limit": memory_limit}) as conn:
            conn.execute(f"CREATE TABLE target (record_key VARCHAR, work_date DATE, {columns}, payload VARCHAR)")
            conn.execute("CREATE TABLE staging AS SELECT * FROM target LIMIT 0")
            for start in range(0, rows, SLICE):
                conn.execute(
                    f"INSERT INTO staging SELECT i::VARCHAR, DATE '2025-01-01' + (i % 365)::INTEGER, {values}, "
                    f"repeat('x', {PAYLOAD_CHARS}) || i::VARCHAR FROM range({start}, {min(rows, start + SLICE)}) t(i)"
                )
            conn.execute("CHECKPOINT")
        with duckdb.connect(path, config={"memory_limit": memory_limit}) as conn:
            before = _rss_mb()
            peak_before = _peak_rss_mb()
            conn.execute("BEGIN")
            conn.execute("DELETE FROM target WHERE work_date BETWEEN DATE '2025-01-01' AND DATE '2025-12-31'")
            conn.execute("INSERT INTO target SELECT * FROM staging")
            conn.execute("COMMIT")
            after = _rss_mb()
            peak = _peak_rss_mb()
    return {
        "rows": rows,
        "memory_limit": memory_limit,
        "added_after_commit_mb": round(after - before, 1),
        "added_at_peak_mb": round(max(peak, peak_before) - before, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", type=int, default=[20_000, 70_000, 140_000, 280_000])
    parser.add_argument("--memory-limit", default="1GB", help="the warehouse's TIMESHEET_WAREHOUSE_MEMORY_LIMIT")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.rows[0], args.memory_limit)))
        return
    print("| rows | memory_limit | added after commit MB | added at peak MB |")
    print("|------|--------------|-----------------------|------------------|")
    for rows in args.rows:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.duckdb_transaction_memory",
                str(rows),
                "--memory-limit",
                args.memory_limit,
                "--child",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {rows:,} | {result['memory_limit']} | {result['added_after_commit_mb']} | {result['added_at_peak_mb']} |"
        )


if __name__ == "__main__":
    main()
