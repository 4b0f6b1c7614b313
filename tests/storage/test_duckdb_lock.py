"""DuckDB lets one process open the file at a time, readers included. A write that finds the
file held says so in the run's log at once (who holds it, what to do), and one still locked
out at the end of its wait fails clearly, without a step retry that would call the vendor
again."""

import subprocess
import sys
import textwrap
import threading
import time
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import failure_text, materialize, read_table, step_retries
from timesheet_assets.ingest import DATE_WINDOW_BACKFILL, daily_partitions, partition_window


@dg.asset(
    key=["raw", "probe", "lines"],
    partitions_def=daily_partitions("2026-01-01"),
    backfill_policy=DATE_WINDOW_BACKFILL,
    metadata={"partition_expr": "work_date"},
    retry_policy=dg.RetryPolicy(max_retries=2, delay=0),
)
def probe_lines(context: dg.AssetExecutionContext) -> pd.DataFrame:
    first, last = partition_window(context)
    return pd.DataFrame({"record_key": [str(first)], "work_date": [first], "hours": [1.0]})


@pytest.fixture
def analyst(duckdb_warehouse):
    """Another process with a read-only connection open on the warehouse (as an analyst's
    notebook would), until the test releases it."""
    import duckdb

    with duckdb.connect(duckdb_warehouse) as conn:
        conn.execute("CREATE SCHEMA probe")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys
            c = duckdb.connect({duckdb_warehouse!r}, read_only=True)
            print("holding", flush=True)
            sys.stdin.readline()
            c.close()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "holding"
    yield holder
    if holder.poll() is None:
        holder.stdin.write("release\n")
        holder.stdin.flush()
    holder.wait(timeout=30)


def _lock_notices(instance: dg.DagsterInstance) -> list[str]:
    return [
        record.user_message
        for run in instance.get_runs()
        for record in instance.all_logs(run.run_id)
        if "is locked by another process" in (record.user_message or "")
    ]


def test_a_waiting_writer_says_so_in_the_run_log_while_it_waits(duckdb_warehouse, sqlite_instance, analyst):
    # The test reads the run's log while the run writes it, from another thread: an in-memory
    # instance shares one SQLite cache between them and can answer "table is locked" under
    # load; an instance on files is read as the webserver reads a running run's log.
    instance = sqlite_instance
    outcome: dict = {}
    writer = threading.Thread(
        target=lambda: outcome.setdefault(
            "result",
            materialize(
                [probe_lines],
                {},
                duckdb_warehouse,
                first=date(2026, 1, 1),
                last=date(2026, 1, 1),
                instance=instance,
            ),
        ),
        daemon=True,
    )
    writer.start()
    deadline = time.monotonic() + 60
    while not _lock_notices(instance) and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.2)
    notices = _lock_notices(instance)
    assert notices, "the run's log never said the writer was waiting for the file"
    assert writer.is_alive()  # said while waiting, the analyst still holding the file
    assert f"PID {analyst.pid}" in notices[0]
    assert "close that connection" in notices[0] and "docs/operations.md" in notices[0]

    analyst.stdin.write("release\n")
    analyst.stdin.flush()
    writer.join(120)
    assert outcome["result"].success
    assert read_table(duckdb_warehouse, "probe.lines")["record_key"].tolist() == ["2026-01-01"]


def test_a_writer_locked_out_for_its_whole_wait_fails_clearly_without_a_retry(
    duckdb_warehouse, instance, analyst, monkeypatch
):
    monkeypatch.setenv("TIMESHEET_WAREHOUSE_LOCK_WAIT_SECONDS", "1")
    result = materialize(
        [probe_lines],
        {},
        duckdb_warehouse,
        first=date(2026, 1, 1),
        last=date(2026, 1, 1),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    text = failure_text(result)
    assert "stayed locked by another process" in text and f"PID {analyst.pid}" in text
    assert "nothing was written" in text
    assert step_retries(result) == 0
