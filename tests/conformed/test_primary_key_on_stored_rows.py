"""The primary-key check of a window's write covers the whole table, but the warehouse counts the
stored rows on other days and finds their repeated keys itself, so a daily write reads no whole
table: a key repeated on other days still blocks the write, and one the window brings (and so
moves to its day) is not counted against it — on both warehouse backends."""

from datetime import date, timedelta
from types import SimpleNamespace

import dagster as dg
import pandas as pd
import pytest

from tests.conformed.three_weeks import ANCHOR, FIRST, LAST, TIMESHEETS
from tests.support.dagster_helpers import export_sandbox_env, materialize_definitions, query
from tests.support.postgres import WAREHOUSE_BACKENDS, make_warehouse
from timesheet_assets.conformed import assets as conformed_assets
from timesheet_assets.conformed.checks import primary_key_unique
from timesheet_assets.definitions import build_definitions
from timesheet_assets.settings import VENDOR_NAMES
from timesheet_assets.storage import WarehouseIOManager
from timesheet_assets.storage.io_manager import WarehouseDbIOManager

# The daily window of the second run; the first run's other days are "other days" to it.
WINDOW_FIRST = ANCHOR - timedelta(days=6)


@pytest.fixture
def loaded(three_week_sandboxes, tmp_path, monkeypatch, request):
    """A warehouse of the requested backend holding the first run's 21 days, its conformed
    table rebuilt without the database's primary-key constraint (as a table made by hand or by
    an older release may be), so repeated keys can be stored."""
    export_sandbox_env(three_week_sandboxes, monkeypatch)
    warehouse = make_warehouse(request.param, tmp_path, monkeypatch)
    with dg.DagsterInstance.ephemeral() as instance:
        assert materialize_definitions(build_definitions(VENDOR_NAMES), warehouse, instance, FIRST, LAST).success
    query(warehouse, "CREATE TABLE conformed.unconstrained AS SELECT * FROM conformed.timesheets")
    query(warehouse, "DROP TABLE conformed.timesheets")
    query(warehouse, "ALTER TABLE conformed.unconstrained RENAME TO timesheets")
    return warehouse


def _copy_to_day(warehouse: str, key: tuple[str, str], day: date) -> None:
    """Store the row of ``key`` again on ``day`` (every other column as it is)."""
    (stored_on,) = _stored(warehouse, key)
    columns = [
        name
        for (name,) in query(
            warehouse,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'conformed' "
            "AND table_name = 'timesheets' ORDER BY ordinal_position",
        )
    ]
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join("CAST(? AS DATE)" if c == "work_date" else f'"{c}"' for c in columns)
    query(
        warehouse,
        f"INSERT INTO conformed.timesheets ({names}) SELECT {values} FROM conformed.timesheets "
        "WHERE source_system = ? AND entry_id = ? AND work_date = ?",
        [day, *key, stored_on],
    )


def _key_on_another_day(warehouse: str) -> tuple[str, str]:
    ((source, entry),) = query(
        warehouse,
        "SELECT source_system, min(entry_id) FROM conformed.timesheets WHERE work_date < ? "
        "AND source_system = 'blikk' GROUP BY source_system",
        [WINDOW_FIRST],
    )
    return source, entry


def _stored(warehouse: str, key: tuple[str, str]) -> list[date]:
    rows = query(
        warehouse,
        "SELECT work_date FROM conformed.timesheets WHERE source_system = ? AND entry_id = ? ORDER BY work_date",
        list(key),
    )
    return [row[0] if isinstance(row[0], date) else row[0].date() for row in rows]


def _conform_window(warehouse: str):
    with dg.DagsterInstance.ephemeral() as instance:
        return materialize_definitions(
            build_definitions(VENDOR_NAMES), warehouse, instance, WINDOW_FIRST, LAST, [TIMESHEETS]
        )


def _primary_key_check(result) -> tuple[bool, dict]:
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == TIMESHEETS and e.check_name == "primary_key_unique"
    ]
    return evaluation.passed, {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


def _outside_window(warehouse: str) -> int:
    ((count,),) = query(
        warehouse,
        "SELECT count(*) FROM conformed.timesheets WHERE work_date < ? OR work_date > ?",
        [WINDOW_FIRST, LAST],
    )
    return int(count)


@pytest.mark.parametrize("loaded", WAREHOUSE_BACKENDS, indirect=True)
def test_a_key_repeated_on_other_days_blocks_the_write(loaded):
    warehouse = loaded
    key = _key_on_another_day(warehouse)
    _copy_to_day(warehouse, key, FIRST + timedelta(days=1))
    before = query(warehouse, "SELECT count(*), sum(total_hours) FROM conformed.timesheets")
    other_days = _outside_window(warehouse)

    result = _conform_window(warehouse)

    assert not result.success
    passed, metadata = _primary_key_check(result)
    assert not passed and metadata["duplicate_rows"] == 2
    assert metadata["stored_rows_on_other_days"] == other_days
    assert key[1] in metadata["examples"]
    assert query(warehouse, "SELECT count(*), sum(total_hours) FROM conformed.timesheets") == before


@pytest.mark.parametrize("backend", WAREHOUSE_BACKENDS)
def test_the_stored_repeats_a_write_keeps_are_those_of_keys_it_does_not_bring(backend, tmp_path, monkeypatch):
    warehouse = make_warehouse(backend, tmp_path, monkeypatch)
    query(warehouse, "CREATE SCHEMA conformed")
    query(warehouse, "CREATE TABLE conformed.timesheets (source_system VARCHAR, entry_id VARCHAR, work_date DATE)")
    stored = [
        ("blikk", "moved", date(2026, 3, 1)),  # repeated on other days; the window brings it
        ("blikk", "moved", date(2026, 3, 2)),
        ("blikk", "twice", date(2026, 3, 1)),  # repeated on other days; the window does not bring it
        ("blikk", "twice", date(2026, 3, 3)),
        ("blikk", "once", date(2026, 3, 4)),
        ("blikk", "twice", date(2026, 3, 15)),  # in the window: replaced by the write
        ("ajera", "twice", date(2026, 3, 16)),
    ]
    for row in stored:
        query(warehouse, "INSERT INTO conformed.timesheets VALUES (?, ?, ?)", list(row))
    io_manager = WarehouseIOManager(database=warehouse).create_io_manager(None)
    context = SimpleNamespace(resources=SimpleNamespace(io_manager=io_manager))
    incoming = pd.DataFrame({"source_system": ["blikk", "ajera"], "entry_id": ["moved", "twice"]})

    kept, on_other_days = conformed_assets._kept_repeats(context, incoming, date(2026, 3, 10), date(2026, 3, 20))

    assert on_other_days == 5
    assert sorted(map(tuple, kept[["source_system", "entry_id"]].to_numpy())) == [("blikk", "twice")] * 2
    unique = primary_key_unique(incoming, ("source_system", "entry_id"), kept, on_other_days)
    assert not unique.passed and unique.metadata["duplicate_rows"] == 2


def test_a_table_never_written_has_no_stored_rows(tmp_path):
    io_manager = WarehouseIOManager(database=str(tmp_path / "w.duckdb")).create_io_manager(None)

    stored, repeated = io_manager.repeated_keys_outside(TIMESHEETS, ["source_system", "entry_id"], FIRST, LAST)

    assert stored == 0 and repeated.empty and list(repeated.columns) == ["source_system", "entry_id"]


@pytest.mark.parametrize("loaded", WAREHOUSE_BACKENDS, indirect=True)
def test_a_daily_write_reads_no_whole_table_and_gives_an_unconstrained_table_its_key(loaded, monkeypatch):
    def whole_table(self, asset_key, columns=None):
        raise AssertionError(f"{asset_key.to_user_string()} read whole")

    monkeypatch.setattr(WarehouseDbIOManager, "read_table", whole_table)

    result = _conform_window(loaded)

    assert result.success
    passed, metadata = _primary_key_check(result)
    assert passed and metadata["stored_rows_on_other_days"] == _outside_window(loaded) > 0
    assert query(
        loaded,
        "SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = 'conformed' "
        "AND table_name = 'timesheets' AND constraint_type = 'PRIMARY KEY'",
    ) == [(1,)]
