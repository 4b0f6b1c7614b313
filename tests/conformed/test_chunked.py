"""A long range is conformed a piece of days at a time and staged in the warehouse: the table,
the checks and the metadata are those of the range conformed as one frame — on both warehouse
backends — and a key found twice across pieces still blocks the write."""

import dagster as dg
import pandas as pd
import pytest

from tests.conformed.three_weeks import FIRST, LAST, TIMESHEETS
from tests.support.dagster_helpers import export_sandbox_env, materialize_definitions, query, read_table, staging_tables
from tests.support.postgres import WAREHOUSE_BACKENDS, make_warehouse
from timesheet_assets.conformed import assets as conformed_assets
from timesheet_assets.definitions import build_definitions
from timesheet_assets.settings import VENDOR_NAMES


@pytest.fixture
def vendor_env(three_week_sandboxes, monkeypatch):
    export_sandbox_env(three_week_sandboxes, monkeypatch)
    yield three_week_sandboxes


def _run(warehouse, instance, selection=None):
    return materialize_definitions(build_definitions(VENDOR_NAMES), warehouse, instance, FIRST, LAST, selection)


def _timesheets(warehouse: str) -> pd.DataFrame:
    # When the raw rows were fetched differs between two loads: not what is compared here.
    table = read_table(warehouse, "conformed.timesheets").drop(columns=["ingested_at"])
    return table.sort_values(["source_system", "entry_id"]).reset_index(drop=True)


def _checks(result) -> dict[str, tuple[bool, dict]]:
    return {
        e.check_name: (e.passed, {k: getattr(v, "value", v) for k, v in e.metadata.items() if k != "examples"})
        for e in result.get_asset_check_evaluations()
        if e.asset_key == TIMESHEETS
    }


def _per_day(result) -> dict[str, dict]:
    return {
        m.partition: {k: getattr(v, "value", v) for k, v in m.metadata.items() if k in ("rows", "rows_by_vendor")}
        for m in result.asset_materializations_for_node("conformed__timesheets")
    }


@pytest.mark.parametrize("backend", WAREHOUSE_BACKENDS)
def test_pieces_of_days_conform_to_what_one_frame_gives(vendor_env, tmp_path, monkeypatch, backend):
    results, tables = {}, {}
    for mode, days in (("pieces", 7), ("one frame", 1000)):
        monkeypatch.setattr(conformed_assets, "CONFORM_CHUNK_DAYS", days)
        (tmp_path / str(days)).mkdir()
        warehouse = make_warehouse(backend, tmp_path / str(days), monkeypatch)
        with dg.DagsterInstance.ephemeral() as instance:
            results[mode] = _run(warehouse, instance)
        assert results[mode].success
        tables[mode] = _timesheets(warehouse)
        assert staging_tables(warehouse) == []

    # 21 days in pieces of 7: three pieces, each staged, every vendor in each.
    assert len(tables["pieces"]) > 100 and tables["pieces"]["source_system"].nunique() == 4
    pd.testing.assert_frame_equal(tables["pieces"], tables["one frame"])
    assert _checks(results["pieces"]) == _checks(results["one frame"])
    assert all(passed for passed, _ in _checks(results["pieces"]).values())
    assert _per_day(results["pieces"]) == _per_day(results["one frame"])


def test_a_key_twice_in_different_pieces_blocks_the_write(vendor_env, warehouse, instance, monkeypatch):
    monkeypatch.setattr(conformed_assets, "CONFORM_CHUNK_DAYS", 7)
    assert _run(warehouse, instance).success
    before = _timesheets(warehouse)
    # A Blikk report stored twice, a fortnight apart (in two pieces of the range): a raw table
    # keeps what it is given, and the conformed key must then be found twice.
    (key,) = query(warehouse, "SELECT min(record_key) FROM blikk.time_reports WHERE work_date <= ?", [FIRST])[0]
    query(
        warehouse,
        "INSERT INTO blikk.time_reports SELECT * REPLACE (CAST(work_date + INTERVAL 14 DAY AS DATE) AS work_date) "
        "FROM blikk.time_reports WHERE record_key = ?",
        [key],
    )

    result = _run(warehouse, instance, selection=[TIMESHEETS])

    assert not result.success
    unique = _checks(result)["primary_key_unique"]
    assert unique[0] is False and unique[1]["duplicate_rows"] == 2
    pd.testing.assert_frame_equal(_timesheets(warehouse), before)
    assert staging_tables(warehouse) == []
