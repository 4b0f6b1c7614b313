"""``IBuildAppMutations``: what users change after a load, done as the API's write calls do it
(``ts/update``, ``ts/approve``, ``ts/delete``, ``ts/create``), and what the warehouse must then
hold; plus a key living on one day when an entry's start moves."""

from __future__ import annotations

import time
from datetime import date, timedelta

import httpx
import pandas as pd

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from tests.vendors.ibuildapp.conftest import resource_for, small_config
from timesheet_assets.sandbox.mutations import EXPECTED_COLUMNS, SourceMutations
from timesheet_assets.vendors.ibuildapp.assets import load_time_entries, time_entries
from timesheet_assets.vendors.ibuildapp.conform import conform_timesheets
from timesheet_assets.vendors.ibuildapp.sandbox import IBuildAppMutations, entry_work_date, state_of

CONFIG = small_config(time_records=90, days=8)
FIRST, LAST = CONFIG.first_date, CONFIG.anchor_date
TIME_ENTRIES = ["raw", "ibuildapp", "time_entries"]


def _expected(source: SourceMutations, first: date, last: date) -> pd.DataFrame:
    return source.expected_lines(first, last).sort_values("entry_id").reset_index(drop=True)


def _conformed(server, first: date, last: date) -> pd.DataFrame:
    resource = resource_for(server)
    try:
        raw, _ = load_time_entries(resource, first, last)
    finally:
        resource.close()
    conformed = conform_timesheets(raw.frame)
    conformed["total_hours"] = conformed["total_hours"].round(6)
    return conformed[list(EXPECTED_COLUMNS)].sort_values("entry_id").reset_index(drop=True)


def test_each_change_is_what_the_write_calls_do_and_what_a_load_then_holds(start_sandbox):
    server = start_sandbox(CONFIG)
    state = state_of(server.app)
    source = server.sandbox.extra["mutations"]
    assert isinstance(source, SourceMutations) and isinstance(source, IBuildAppMutations)
    keys = source.entry_keys(LAST - timedelta(days=3), LAST - timedelta(days=1))
    edited, moved, approved, deleted = keys[0], keys[1], keys[2], keys[3]
    before = {k: dict(state.entries[int(k)]) for k in (edited, moved)}
    started = int(time.time())

    source.edit_hours(edited, 1.5)
    entry = state.entries[int(edited)]
    assert entry["duration"] == before[edited]["duration"] + 5400
    assert entry["end_time"] == before[edited]["end_time"] + 5400
    assert entry["start_time"] == before[edited]["start_time"]

    target = FIRST + timedelta(days=1)
    assert source.move(moved, target) == moved  # an entry keeps its id
    entry = state.entries[int(moved)]
    assert entry_work_date(entry) == target
    assert (entry["start_time"] - before[moved]["start_time"]) % 86400 == 0  # same time of day
    assert entry["end_time"] - entry["start_time"] == before[moved]["end_time"] - before[moved]["start_time"]

    state.entries[int(approved)]["status"] = "in-progress"
    source.approve(approved)
    assert state.entries[int(approved)]["status"] == "approved"
    assert state.entries[int(approved)]["approve_date"] >= started

    source.delete(deleted)
    assert int(deleted) not in state.entries

    late = source.add_late(LAST - timedelta(days=2))
    assert state.entries[int(late)]["status"] == "in-progress" and state.entries[int(late)]["end_time"]

    # Each change stamps updated (user/history shows it); untouched entries keep older stamps.
    for key in (edited, moved, approved, late):
        assert state.entry_stamps(state.entries[int(key)])["updated"] >= started
    untouched = next(e for e in state.entries.values() if str(e["id"]) not in {edited, moved, approved, late})
    assert state.entry_stamps(untouched)["updated"] < started

    expected = _expected(source, FIRST, LAST)
    assert expected.set_index("entry_id").loc[late, "status"] == "submitted"
    assert expected.set_index("entry_id").loc[approved, "status"] == "approved"
    assert deleted not in set(expected["entry_id"])
    pd.testing.assert_frame_equal(_conformed(server, FIRST, LAST), expected, check_dtype=False)


def test_changes_over_http(start_sandbox):
    server = start_sandbox(CONFIG)
    source = server.sandbox.extra["mutations"]
    key = source.entry_keys(LAST, LAST)[0]
    answer = httpx.post(f"{server.url}/_sandbox/mutate", json={"op": "move", "key": key, "day": FIRST.isoformat()})
    assert answer.status_code == 200 and answer.json() == {"key": key}
    assert key in source.entry_keys(FIRST, FIRST)
    late = httpx.post(f"{server.url}/_sandbox/mutate", json={"op": "add_late", "day": LAST.isoformat()}).json()["key"]
    assert late in source.entry_keys(LAST, LAST)


def test_an_entry_whose_start_moved_lives_on_its_new_day_only(start_sandbox, warehouse, instance):
    """Re-reading only the new day moves the entry there: the write removes its key from the
    old day in the same transaction (``primary_key`` on the raw table)."""
    server = start_sandbox(CONFIG)
    source = server.sandbox.extra["mutations"]
    resource = resource_for(server)
    materialize([time_entries], {"ibuildapp": resource}, warehouse, first=FIRST, last=LAST, instance=instance)
    key = source.entry_keys(FIRST, FIRST)[0]
    source.move(key, LAST)

    result = materialize(
        [time_entries], {"ibuildapp": resource_for(server)}, warehouse, first=LAST, last=LAST, instance=instance
    )
    raw = read_table(warehouse, "ibuildapp.time_entries")
    assert raw["record_key"].is_unique
    assert raw.loc[raw["record_key"] == key, "work_date"].dt.date.tolist() == [LAST]
    assert materialization_metadata(result, TIME_ENTRIES)["rows_moved_from_other_days"] == 1
    assert len(raw) == CONFIG.time_records
