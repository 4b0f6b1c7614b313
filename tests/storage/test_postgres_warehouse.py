"""What a PostgreSQL warehouse adds: loads go through COPY, and readers are never blocked by a
run's write nor see half of one."""

import threading
from datetime import date

import psycopg2
import pytest

from tests.support.dagster_helpers import materialize
from tests.support.probe_assets import lines, probe_cards_asset, probe_lines_asset
from timesheet_assets.settings import warehouse_password
from timesheet_assets.storage import parse_target

STATE: dict = {}


@pytest.fixture(autouse=True)
def clean_state():
    STATE.clear()
    yield
    STATE.clear()


probe_lines = probe_lines_asset(
    lambda days: lines(
        days,
        STATE.get("per_day", 3),
        hours=float(STATE.get("version", 1)),
        payload='{"note": "a, \\"quoted\\" value"}',
    )
)
probe_cards = probe_cards_asset(STATE)


def connect(warehouse: str):
    conn = psycopg2.connect(**parse_target(warehouse, warehouse_password()).connect_kwargs())
    with conn.cursor() as cursor:
        # A reader that would wait on a lock fails instead of hanging the test.
        cursor.execute("SET statement_timeout = '20s'")
    conn.commit()
    return conn


def statements(warehouse: str) -> list[tuple[str, int, int]]:
    conn = connect(warehouse)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT query, calls, rows FROM pg_stat_statements WHERE dbid = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            return cursor.fetchall()
    finally:
        conn.close()


def test_bulk_loads_go_through_copy_not_row_by_row_inserts(postgres_warehouse, instance):
    conn = connect(postgres_warehouse)
    with conn.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        cursor.execute("SELECT pg_stat_statements_reset()")
    conn.commit()
    conn.close()

    STATE["per_day"] = 2000
    materialize([probe_lines], {}, postgres_warehouse, first=date(2026, 1, 1), last=date(2026, 1, 2), instance=instance)
    STATE["cards"] = [(f"k{i}", float(i)) for i in range(3000)]
    materialize([probe_cards], {}, postgres_warehouse, instance=instance)

    ran = statements(postgres_warehouse)
    copies = [(q, calls, rows) for q, calls, rows in ran if q.upper().startswith("COPY") and "FROM STDIN" in q.upper()]
    assert sum(rows for _, _, rows in copies) == 4000 + 3000
    assert sum(calls for _, calls, _ in copies) == 2  # one COPY per write (per 100,000-row slice)
    inserts = [(q, calls, rows) for q, calls, rows in ran if q.lstrip().upper().startswith("INSERT")]
    # The upsert moves its staged rows with one INSERT ... SELECT; nothing inserts row by row.
    assert [(calls, rows) for _, calls, rows in inserts] == [(1, 3000)]
    assert all("VALUES" not in q.upper() for q, _, _ in inserts)


def _pause_inside_writes(monkeypatch):
    """Each write stops after all its statements, before its commit, until released."""
    from timesheet_assets.storage import warehouse as module

    inside, release = threading.Event(), threading.Event()
    original = module.ByNamePandasTypeHandler.handle_output

    def paused(self, context, table_slice, obj, connection):
        metadata = original(self, context, table_slice, obj, connection)
        inside.set()
        assert release.wait(120), "the test never released the write"
        return metadata

    monkeypatch.setattr(module.ByNamePandasTypeHandler, "handle_output", paused)
    return inside, release


def _in_thread(fn):
    outcome: dict = {}

    def run():
        outcome["result"] = fn()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


WRITES = {
    "window replace": lambda wh, inst: materialize(
        [probe_lines], {}, wh, first=date(2026, 1, 1), last=date(2026, 1, 3), instance=inst
    ),
    "upsert": lambda wh, inst: materialize([probe_cards], {}, wh, instance=inst),
    "whole-table replace": lambda wh, inst: materialize([probe_cards], {}, wh, instance=inst),
}
READS = {
    "window replace": "SELECT count(*), sum(hours) FROM probe.lines",
    "upsert": "SELECT count(*), sum(hours) FROM probe.cards",
    "whole-table replace": "SELECT count(*), sum(hours) FROM probe.cards",
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_read_transaction_open_across_a_write_keeps_reading(postgres_warehouse, instance, monkeypatch, write):
    STATE["cards"] = [("a", 1.0), ("b", 2.0)]
    WRITES[write](postgres_warehouse, instance)  # the first version
    before = (9, 9.0) if write == "window replace" else (2, 3.0)

    reader = connect(postgres_warehouse)
    reader.set_session(isolation_level="REPEATABLE READ")
    cursor = reader.cursor()
    cursor.execute(READS[write])
    assert cursor.fetchone() == before  # the reader's transaction is open from here on

    STATE.update(version=2, cards=[("b", 5.0), ("c", 3.0)], mode="replace" if "table" in write else "upsert")
    inside, release = _pause_inside_writes(monkeypatch)
    thread, outcome = _in_thread(lambda: WRITES[write](postgres_warehouse, instance))
    assert inside.wait(120), "the write did not get past its statements while a reader was open"

    # Mid-write (the writer's statements done, not committed): a fresh reader is not blocked
    # and sees the old rows only.
    other = connect(postgres_warehouse)
    with other.cursor() as fresh:
        fresh.execute(READS[write])
        assert fresh.fetchone() == before
    other.close()

    release.set()
    thread.join(120)
    assert not thread.is_alive() and outcome["result"].success
    cursor.execute(READS[write])
    assert cursor.fetchone() == before  # still its own snapshot, read without waiting
    reader.commit()
    cursor.execute(READS[write])
    after = {"window replace": (9, 18.0), "upsert": (3, 9.0), "whole-table replace": (2, 8.0)}[write]
    assert cursor.fetchone() == after
    reader.close()


def test_two_writes_of_the_same_table_take_turns_and_never_double_rows(postgres_warehouse, instance, monkeypatch):
    """Under MVCC two window replaces interleaved could each miss the other's new rows. The
    second writer waits for the first to commit (PostgreSQL shows it waiting on the table's
    advisory lock), then replaces the window again: the window holds one version, once."""
    import time

    def window_write():
        return materialize(
            [probe_lines], {}, postgres_warehouse, first=date(2026, 1, 1), last=date(2026, 1, 3), instance=instance
        )

    with monkeypatch.context() as patch:  # only the first writer is paused
        inside, release = _pause_inside_writes(patch)
        STATE["version"] = 1
        first, first_outcome = _in_thread(window_write)
        assert inside.wait(120)
    STATE["version"] = 2
    second, second_outcome = _in_thread(window_write)

    def waiting_on_advisory_lock() -> bool:
        conn = connect(postgres_warehouse)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                return cursor.fetchone()[0] > 0
        finally:
            conn.close()

    deadline = time.monotonic() + 120
    while not waiting_on_advisory_lock():
        assert time.monotonic() < deadline and second.is_alive(), "the second writer did not wait for the first"
        time.sleep(0.05)
    release.set()
    for thread in (first, second):
        thread.join(120)
    assert first_outcome["result"].success and second_outcome["result"].success
    conn = connect(postgres_warehouse)
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT record_key), min(hours), max(hours) FROM probe.lines")
        assert cursor.fetchone() == (9, 9, 2.0, 2.0)
    conn.close()
