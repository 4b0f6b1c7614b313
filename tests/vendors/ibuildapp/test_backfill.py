"""A 30-day single-run backfill over real HTTP: each entry once, the exact number of calls,
reruns replace their days, a lookback re-read picks up late approvals."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from tests.vendors.ibuildapp.conftest import ANCHOR, resource_for, small_config
from timesheet_assets.vendors.ibuildapp.assets import ASSETS, time_entries
from timesheet_assets.vendors.ibuildapp.conform import conform_projects, conform_timesheets
from timesheet_assets.vendors.ibuildapp.sandbox import (
    entry_work_date,
    expected_projects,
    expected_timesheets,
    state_of,
)

ENTRIES = 1600
PAGE = 200
PROJECTS = 12
TIME_ENTRIES = ["raw", "ibuildapp", "time_entries"]


@pytest.fixture(scope="module")
def backfill_config():
    return small_config(time_records=ENTRIES, projects=PROJECTS, employees=20, days=30)


def test_thirty_day_backfill_lands_each_entry_once_with_minimal_calls(
    start_sandbox, backfill_config, warehouse, instance
):
    server = start_sandbox(backfill_config)
    stats = server.sandbox.stats
    first, last = backfill_config.first_date, backfill_config.anchor_date
    assert (last - first).days == 29

    result = materialize(
        list(ASSETS),
        {"ibuildapp": resource_for(server, page_size=PAGE)},
        warehouse,
        first=first,
        last=last,
        instance=instance,
    )

    entry_pages = math.ceil(ENTRIES / PAGE)
    project_pages = math.ceil(PROJECTS / PAGE)
    assert ENTRIES >= 1500 and entry_pages > 1
    assert stats.count("/login") == 1
    assert stats.count("/ts/search") == entry_pages
    assert stats.count("/project/search") == project_pages
    # One POST user: the login is checked to be an administrator. A first run has no change
    # scan watermark yet, so it asks user/history nothing.
    assert stats.count("/user") == 1 and stats.count("/user/history") == 0
    assert stats.requests == 2 + entry_pages + project_pages
    assert stats.by_status == {200: stats.requests}

    raw = read_table(warehouse, "ibuildapp.time_entries")
    served_ids = {str(e["id"]) for e in state_of(server.app).entries.values()}
    assert len(raw) == ENTRIES
    assert raw["record_key"].is_unique
    assert set(raw["record_key"]) == served_ids
    assert raw["quarantine_reason"].isna().all()
    work_dates = raw["work_date"].dt.date
    assert work_dates.min() >= first and work_dates.max() <= last
    assert work_dates.nunique() == 30
    # Names come from the side tables of the same calls, not from extra lookups.
    assert raw["employee_name"].notna().all() and raw["task_name"].notna().all()
    assert raw["project_name"].notna().all()
    assert_side_tables_match_entries(warehouse, server)

    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["rows_in_run"] == ENTRIES
    assert metadata["list_requests"] == entry_pages
    assert metadata["requests"] == entry_pages + 1  # and the account check
    assert metadata["quarantined"] == 0
    assert metadata["outside_window_skipped"] == 0

    conformed = conform_timesheets(raw)
    expected = expected_timesheets(backfill_config, first, last)
    assert len(conformed) == expected["lines"] == ENTRIES
    assert conformed["total_hours"].sum() == pytest.approx(expected["total_hours"])
    assert conformed["entry_id"].is_unique
    projects = conform_projects(read_table(warehouse, "ibuildapp.projects"))
    assert len(projects) == expected_projects(backfill_config)
    assert projects["customer_name"].notna().all()

    # A rerun of the same range replaces it: same rows, not twice as many.
    stats.reset()
    materialize(
        [time_entries],
        {"ibuildapp": resource_for(server, page_size=PAGE)},
        warehouse,
        first=first,
        last=last,
        instance=instance,
    )
    assert stats.count("/ts/search") == entry_pages and stats.count("/login") == 1
    again = read_table(warehouse, "ibuildapp.time_entries")
    assert len(again) == ENTRIES and again["record_key"].is_unique


def assert_side_tables_match_entries(warehouse, server) -> None:
    """``raw/ibuildapp/time_entry_side_tables`` holds, for each day, exactly the user, task and
    project objects that day's entries joined, once each, as the sandbox serves them."""
    state = state_of(server.app)
    raw = read_table(warehouse, "ibuildapp.time_entries")
    sides = read_table(warehouse, "ibuildapp.time_entry_side_tables")
    days = raw["work_date"].dt.date
    expected = set()
    for column, table in (("user_id", "users"), ("task_id", "tasks"), ("project_id", "projects")):
        expected |= {(day, table, ref) for day, ref in zip(days, raw[column]) if isinstance(ref, str)}
    got = list(zip(sides["work_date"].dt.date, sides["side_table"], sides["object_id"]))
    assert len(got) == len(set(got)) and set(got) == expected
    served = {"users": state.users, "tasks": state.tasks, "projects": state.projects}
    for table, object_id, payload in zip(sides["side_table"], sides["object_id"], sides["payload"]):
        assert json.loads(payload) == json.loads(json.dumps(served[table][int(object_id)]))
    assert (sides["record_key"] == sides["side_table"] + ":" + sides["object_id"]).all()


def test_lookback_rerun_of_one_day_replaces_only_that_day(start_sandbox, warehouse, instance):
    config = small_config(time_records=200, days=10)
    server = start_sandbox(config)
    state = state_of(server.app)
    first, last = config.first_date, config.anchor_date
    materialize(
        [time_entries], {"ibuildapp": resource_for(server)}, warehouse, first=first, last=last, instance=instance
    )

    day = last - timedelta(days=2)
    on_day = [e for e in state.entries.values() if entry_work_date(e) == day]
    pending = [e for e in on_day if e["status"] == "in-progress"]
    assert pending, "the seeded day needs an unapproved entry"
    late = pending[0]
    late["status"] = "approved"  # approved after the day was first loaded
    deleted = next(e for e in on_day if e is not late)
    del state.entries[deleted["id"]]

    materialize([time_entries], {"ibuildapp": resource_for(server)}, warehouse, first=day, last=day, instance=instance)

    raw = read_table(warehouse, "ibuildapp.time_entries")
    assert len(raw) == 200 - 1
    assert raw["record_key"].is_unique
    assert str(deleted["id"]) not in set(raw["record_key"])
    row = raw[raw["record_key"] == str(late["id"])].iloc[0]
    assert row["status"] == "approved"
    assert conform_timesheets(raw.loc[raw["record_key"] == str(late["id"])])["status"].tolist() == ["approved"]
    per_day = raw["work_date"].dt.date.value_counts()
    assert per_day[day] == len(on_day) - 1
    assert_side_tables_match_entries(warehouse, server)
    assert per_day.sum() - per_day[day] == sum(1 for e in state.entries.values() if entry_work_date(e) != day)


def test_silently_capped_pages_still_yield_every_entry(start_sandbox):
    config = small_config(time_records=130)
    server = start_sandbox(config, max_page_size=40)
    resource = resource_for(server, page_size=100)
    try:
        result = resource.search_time_entries(config.first_date, config.anchor_date)
    finally:
        resource.close()
    assert len(result.records) == 130
    assert len({r["id"] for r in result.records}) == 130
    assert result.pages == math.ceil(130 / 40)
    assert server.sandbox.stats.count("/ts/search") == math.ceil(130 / 40)


def test_empty_window_costs_one_call(start_sandbox):
    server = start_sandbox(small_config())
    resource = resource_for(server)
    try:
        result = resource.search_time_entries(ANCHOR + timedelta(days=5), ANCHOR + timedelta(days=6))
    finally:
        resource.close()
    assert result.records == [] and result.pages == 1 and result.reported_count == 0
    assert server.sandbox.stats.count("/ts/search") == 1


def test_window_edges_use_start_day_and_drop_neighbours(start_sandbox, warehouse, instance):
    """Entries at the first and last second of the window land; one starting on the next
    midnight (returned by an inclusive end bound) is left to the next day's partition."""
    config = small_config(time_records=0, days=5)
    server = start_sandbox(config)
    state = state_of(server.app)
    day = date(2025, 3, 20)
    midnight = int(datetime(2025, 3, 20, tzinfo=UTC).timestamp())
    for eid, start in ((901, midnight), (902, midnight + 86399), (903, midnight + 86400), (904, midnight - 1)):
        state.entries[eid] = {
            "id": eid,
            "user_id": 1,
            "task_id": 1,
            "start_time": start,
            "end_time": start + 3600,
            "duration": 3600,
            "status": "approved",
            "payment_status": "pending",
        }
    result = materialize(
        [time_entries], {"ibuildapp": resource_for(server)}, warehouse, first=day, last=day, instance=instance
    )
    raw = read_table(warehouse, "ibuildapp.time_entries")
    assert sorted(raw["record_key"]) == ["901", "902"]
    assert set(raw["work_date"].dt.date) == {day}
    assert materialization_metadata(result, TIME_ENTRIES)["outside_window_skipped"] == 1


def test_timezone_setting_moves_the_work_day(start_sandbox):
    config = small_config(time_records=0)
    server = start_sandbox(config)
    state = state_of(server.app)
    # 2025-03-21 02:30 UTC is the evening of 2025-03-20 in New York.
    start = 1742524200
    state.entries[1] = {
        "id": 1,
        "user_id": 1,
        "task_id": 1,
        "start_time": start,
        "duration": 1800,
        "status": "approved",
    }
    utc = resource_for(server)
    new_york = resource_for(server, timezone="America/New_York")
    try:
        assert [r["id"] for r in utc.search_time_entries(date(2025, 3, 21), date(2025, 3, 21)).records] == [1]
        assert new_york.search_time_entries(date(2025, 3, 21), date(2025, 3, 21)).records == []
        assert [r["id"] for r in new_york.search_time_entries(date(2025, 3, 20), date(2025, 3, 20)).records] == [1]
    finally:
        utc.close()
        new_york.close()


def test_time_entries_alone_can_be_selected_without_the_side_tables(start_sandbox, warehouse, instance):
    """The step can be subset: selecting only the entries (as a user may in the UI) writes
    them and their check, and leaves the side-table asset untouched."""
    import duckdb

    config = small_config(time_records=60, days=5)
    server = start_sandbox(config)
    result = materialize(
        [time_entries],
        {"ibuildapp": resource_for(server)},
        warehouse,
        first=config.first_date,
        last=config.anchor_date,
        instance=instance,
        selection=[dg.AssetKey(TIME_ENTRIES)],
    )
    materialized = {
        m.asset_key.to_user_string()
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]
    }
    assert materialized == {"raw/ibuildapp/time_entries"}
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True, True]
    assert len(read_table(warehouse, "ibuildapp.time_entries")) == 60
    with duckdb.connect(warehouse, read_only=True) as conn:
        tables = {t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "time_entry_side_tables" not in tables
