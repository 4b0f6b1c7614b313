"""Rows staged a chunk at a time and swapped into the asset's table by one write: the same
table a frame write gives, on both backends, and nothing of a failed run left behind."""

from datetime import date

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import (
    column_types,
    materialization_metadata,
    materialize,
    query,
    read_table,
    staging_tables,
)
from timesheet_assets.ingest import DATE_WINDOW_BACKFILL, daily_partitions, partition_window
from timesheet_assets.ingest.staged import staging_table
from timesheet_assets.storage import PRIMARY_KEY, SEQUENCE_COLUMN, StagedRows, StagingTable, WarehouseIOManager
from timesheet_assets.storage.staging import staging_table_name

STATE: dict = {}
KEY = ["raw", "probe", "staged"]


def _chunks(days: list[date]) -> list[pd.DataFrame]:
    """Three chunks: hours all null in the first (no type yet), numbers in the second, and a
    column the first two lacked in the third."""
    version = STATE.get("version", 1)
    rows = [
        {"record_key": f"{day}:{n}", "work_date": day, "hours": None if i == 0 else float(version + n)}
        for i, day in enumerate(days)
        for n in range(2)
    ]
    frame = pd.DataFrame(rows)
    split = [
        frame[frame.work_date == days[0]],
        frame[frame.work_date.isin(days[1:-1])],
        frame[frame.work_date == days[-1]],
    ]
    split[2] = split[2].assign(note="late")
    return [part.reset_index(drop=True) for part in split]


@dg.asset(
    key=KEY,
    partitions_def=daily_partitions("2026-01-01"),
    backfill_policy=DATE_WINDOW_BACKFILL,
    metadata={"partition_expr": "work_date", PRIMARY_KEY: "record_key"},
    required_resource_keys={"io_manager"},
)
def probe_staged(context: dg.AssetExecutionContext):
    first, last = partition_window(context)
    staging = staging_table(context)
    assert staging is not None
    STATE["staging"] = staging.relation
    days = list(pd.date_range(first, last).date)
    for number, chunk in enumerate(_chunks(days)):
        if STATE.get("fail_after_chunk") == number:
            staging.discard()
            raise RuntimeError("the vendor went away mid-read")
        chunk[SEQUENCE_COLUMN] = range(len(chunk))
        staging.append(chunk)
    return dg.Output(StagedRows(staging))


@pytest.fixture(autouse=True)
def clean_state():
    STATE.clear()
    yield
    STATE.clear()


def _run(warehouse, first, last, **kwargs):
    return materialize([probe_staged], {}, warehouse, first=first, last=last, **kwargs)


def test_staged_chunks_replace_the_window_like_one_frame(warehouse, instance):
    _run(warehouse, date(2026, 3, 1), date(2026, 3, 4), instance=instance)
    STATE["version"] = 10
    result = _run(warehouse, date(2026, 3, 2), date(2026, 3, 4), instance=instance)

    table = read_table(warehouse, "probe.staged").sort_values("record_key").reset_index(drop=True)
    assert list(table.record_key) == [f"2026-03-0{d}:{n}" for d in (1, 2, 3, 4) for n in (0, 1)]
    # Day 1 is outside the second run: kept from the first. Days 2..4 replaced: the first
    # chunk (day 2) staged its hours as nulls, the middle chunk numbers, the last a new column.
    assert table.hours.isna().tolist() == [True, True, True, True, False, False, False, False]
    assert table.hours.dropna().tolist() == [10.0, 11.0, 10.0, 11.0]
    assert table.note.fillna("").tolist() == [""] * 6 + ["late", "late"]
    assert SEQUENCE_COLUMN not in table.columns
    types = column_types(warehouse, "probe.staged")
    assert types["hours"].upper() in ("DOUBLE", "DOUBLE PRECISION")
    assert staging_tables(warehouse) == []
    meta = materialization_metadata(result, KEY)
    assert meta["table_rows_after_write"] == 8


def test_a_key_staged_on_a_new_day_leaves_its_old_day(warehouse, instance):
    _run(warehouse, date(2026, 3, 1), date(2026, 3, 3), instance=instance)
    # Day 1's record "2026-03-01:0" is now served on day 5 (its work date moved).
    original = _chunks

    def moved(days):
        chunks = original(days)
        chunks[2] = pd.concat(
            [chunks[2], pd.DataFrame({"record_key": ["2026-03-01:0"], "work_date": [days[-1]], "hours": [7.0]})],
            ignore_index=True,
        )
        return chunks

    globals()["_chunks"] = moved
    try:
        _run(warehouse, date(2026, 3, 4), date(2026, 3, 5), instance=instance)
    finally:
        globals()["_chunks"] = original
    rows = query(warehouse, "SELECT CAST(work_date AS VARCHAR) FROM probe.staged WHERE record_key = '2026-03-01:0'")
    assert [str(day) for (day,) in rows] == ["2026-03-05"]


@pytest.mark.parametrize("fail_after_chunk", [0, 2])
def test_rows_staged_by_a_read_that_fails_never_reach_the_table(warehouse, instance, fail_after_chunk):
    _run(warehouse, date(2026, 3, 1), date(2026, 3, 3), instance=instance)
    before = read_table(warehouse, "probe.staged").sort_values("record_key").reset_index(drop=True)
    STATE.update(version=5, fail_after_chunk=fail_after_chunk)
    result = _run(warehouse, date(2026, 3, 1), date(2026, 3, 3), instance=instance, raise_on_error=False)
    assert not result.success
    after = read_table(warehouse, "probe.staged").sort_values("record_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)
    assert staging_tables(warehouse) == []


def test_a_retried_step_starts_from_an_empty_staging_table(warehouse):
    # A first attempt staged rows and died before the write (its worker killed: nothing
    # dropped them); the retry, in the same run, has the same staging table name and must
    # not write the first attempt's rows again.
    backend = WarehouseIOManager(database=warehouse).backend()
    name = staging_table_name(dg.AssetKey(KEY), "run-0001")
    first_attempt = StagingTable(backend, name)
    first_attempt.append(pd.DataFrame({"record_key": ["old-1", "old-2"], SEQUENCE_COLUMN: [0, 1]}))
    retry = StagingTable(backend, name)
    retry.append(pd.DataFrame({"record_key": ["new-1"], SEQUENCE_COLUMN: [0]}))
    retry.append(pd.DataFrame({"record_key": ["new-2"], SEQUENCE_COLUMN: [1]}))
    assert sorted(retry.fetch("SELECT record_key FROM {table}")) == [("new-1",), ("new-2",)]
    retry.drop()
    assert staging_tables(warehouse) == []


def test_keep_only_and_fill_missing_change_only_the_rows_they_name(warehouse):
    backend = WarehouseIOManager(database=warehouse).backend()
    staging = StagingTable(backend, staging_table_name(dg.AssetKey(KEY), "run-0002"))
    staging.append(
        pd.DataFrame(
            {
                "record_key": ["a", "b", "c", "d"],
                "user_id": ["1", "2", "1", "3"],
                "name": pd.Series([None, None, "kept", None], dtype="string"),
                SEQUENCE_COLUMN: [0, 1, 2, 3],
            }
        )
    )
    assert staging.keep_only(SEQUENCE_COLUMN, [0, 2, 3]) == 1
    names = pd.DataFrame({"user_id": ["1", "2"], "name": ["Ana", "Bo"]}, dtype="string")
    assert staging.fill_missing("user_id", "name", names) == 1
    rows = sorted(staging.fetch("SELECT record_key, name FROM {table}"))
    assert rows == [("a", "Ana"), ("c", "kept"), ("d", None)]
    staging.drop()
