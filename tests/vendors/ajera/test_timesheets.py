"""raw/ajera/timesheets through Dagster against the sandbox: backfills, windows, reruns, quarantine."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pandas as pd
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.conformed.assets import PROJECTS_KEY as CONFORMED_PROJECTS
from timesheet_assets.conformed.assets import TIMESHEETS_KEY as CONFORMED_TIMESHEETS
from timesheet_assets.conformed.assets import build_conformed_projects, build_conformed_timesheets
from timesheet_assets.ingest import QUARANTINE_CHECK
from timesheet_assets.vendors.ajera import PLUGIN
from timesheet_assets.vendors.ajera.assets import (
    PROJECTS_KEY,
    TIMESHEETS_KEY,
    TOTALS_CHECK,
    ajera_projects,
    ajera_timesheets,
)
from timesheet_assets.vendors.ajera.conform import conform_timesheets
from timesheet_assets.vendors.ajera.sandbox import (
    ajera_state,
    corrupt_timesheet,
    day_cells,
    expected_timesheets,
    timesheet_date_for,
    touch_timesheets,
)
from timesheet_assets.vendors.ajera.week import first_day

from .conftest import ANCHOR, resource_for, small_config

TABLE = "ajera.timesheets"


def read_raw(warehouse: str) -> pd.DataFrame:
    raw = read_table(warehouse, TABLE)
    for column in ("work_date", "timesheet_date"):
        raw[column] = pd.to_datetime(raw[column]).dt.date  # DuckDB hands DATE back as datetime64
    return raw


def valid_rows(warehouse: str) -> pd.DataFrame:
    raw = read_raw(warehouse)
    return raw[raw["quarantine_reason"].isna()]


def test_twelve_week_backfill_lands_each_day_row_once_with_minimal_calls(ajera_server, warehouse, instance, reading):
    config = small_config(time_records=312, employees=26, days=84, projects=10)
    server = ajera_server(config, timesheet_date=reading)
    state = ajera_state(server)
    batch = 50
    first, last = config.first_date, config.anchor_date
    assert (last - first).days + 1 == 84
    resource = resource_for(server, timesheet_batch_size=batch)
    assets = [
        ajera_timesheets,
        ajera_projects,
        build_conformed_timesheets([PLUGIN]),
        build_conformed_projects([PLUGIN]),
    ]
    # conformed/timesheets checks project ids against conformed/projects: load projects first.
    materialize(assets, {"ajera": resource}, warehouse, instance=instance, selection=[PROJECTS_KEY, CONFORMED_PROJECTS])
    state.method_calls.clear()
    server.sandbox.stats.reset()

    result = materialize(
        assets,
        {"ajera": resource},
        warehouse,
        first=first,
        last=last,
        instance=instance,
        selection=[TIMESHEETS_KEY, CONFORMED_TIMESHEETS],
    )

    timesheets = len(state.dataset.timesheets)
    assert timesheets >= 300
    # Exactly: one ListTimesheets, ceil(timesheets / batch) GetTimesheets, one session made and ended.
    list_calls, session_calls = 1, 2
    assert server.sandbox.stats.count() == list_calls + math.ceil(timesheets / batch) + session_calls
    assert dict(state.method_calls) == {
        "CreateAPISession": 1,
        "ListTimesheets": 1,
        "GetTimesheets": math.ceil(timesheets / batch),
        "EndAPISession": 1,
    }

    raw = read_raw(warehouse)
    cells = day_cells(state.dataset, first, last)
    assert raw["quarantine_reason"].isna().all()
    assert raw["record_key"].is_unique
    assert set(raw["record_key"]) == set(cells)
    assert raw["work_date"].between(first, last).all()

    conformed = read_table(warehouse, "conformed.timesheets")
    assert set(conformed["source_system"]) == {"ajera"}
    assert conformed["entry_id"].is_unique
    assert conformed["total_hours"].sum() == pytest.approx(sum(cells.values()))
    assert dict(zip(conformed["entry_id"], conformed["total_hours"])) == pytest.approx(cells)
    assert expected_timesheets(config, first, last, reading) == {
        "lines": len(cells),
        "total_hours": pytest.approx(sum(cells.values())),
    }
    assert set(conformed["status"]) == {"draft", "submitted", "approved", "rejected", "paid"}
    assert all(check.passed for check in result.get_asset_check_evaluations())
    assert {c.check_name for c in result.get_asset_check_evaluations()} >= {
        TOTALS_CHECK,
        QUARANTINE_CHECK,
        "project_id_in_projects",
    }

    meta = materialization_metadata(result, ["raw", "ajera", "timesheets"])
    assert meta["rows_in_run"] == len(cells)
    assert meta["records_served"] == timesheets
    assert meta["quarantined"] == 0
    assert meta["requests"] == server.sandbox.stats.count() - 1  # EndAPISession runs at teardown
    assert (meta["list_requests"], meta["detail_requests"]) == (1, math.ceil(timesheets / batch))
    assert meta["timesheet_date_reading"] == reading


def test_window_starting_mid_week_keeps_the_days_of_the_earlier_week(ajera_server, warehouse, instance, reading):
    config = small_config()
    server = ajera_server(config, timesheet_date=reading)
    state = ajera_state(server)
    first = ANCHOR - timedelta(days=10)  # a Wednesday: its week began before it under either reading
    last = first + timedelta(days=5)
    assert first.weekday() == 2
    materialize(
        [ajera_timesheets], {"ajera": resource_for(server)}, warehouse, first=first, last=last, instance=instance
    )
    raw = valid_rows(warehouse)
    cells = day_cells(state.dataset, first, last)
    assert set(raw["record_key"]) == set(cells)
    week_starts = {first_day(d, reading) for d in raw["timesheet_date"].unique()}
    assert any(d < first for d in week_starts), "the week that began before the window must contribute its later days"
    assert any(d + timedelta(days=6) > last for d in week_starts), "the week that ends after it, its first days"
    assert raw["work_date"].min() >= first and raw["work_date"].max() <= last
    # Each row's day is its week's first day plus its day number minus one.
    assert all(
        first_day(row.timesheet_date, reading) + timedelta(days=int(row.day_number) - 1) == row.work_date
        for row in raw.itertuples()
    )


def test_rerun_replaces_its_window_and_leaves_other_days(ajera_server, warehouse, instance):
    config = small_config()
    server = ajera_server(config)
    state = ajera_state(server)
    resource = resource_for(server)
    older = (config.first_date, config.first_date + timedelta(days=6))
    recent = (older[1] + timedelta(days=1), config.anchor_date)
    for first, last in (older, recent):
        materialize([ajera_timesheets], {"ajera": resource}, warehouse, first=first, last=last, instance=instance)
    before = valid_rows(warehouse)

    touched = touch_timesheets(state, fraction=0.25)
    assert touched
    materialize([ajera_timesheets], {"ajera": resource}, warehouse, first=recent[0], last=recent[1], instance=instance)
    after = valid_rows(warehouse)

    assert after["record_key"].is_unique
    assert set(after["record_key"]) == set(day_cells(state.dataset, config.first_date, config.anchor_date))
    new_hours = day_cells(state.dataset, *recent)
    got = after[after["work_date"] >= recent[0]]
    assert dict(zip(got["record_key"], got["regular_hours"] + got["overtime_hours"])) == pytest.approx(new_hours)
    # The older window was not part of the rerun and is exactly as before.
    old_before = before[before["work_date"] <= older[1]].sort_values("record_key")
    old_after = after[after["work_date"] <= older[1]].sort_values("record_key")
    assert list(old_before["record_key"]) == list(old_after["record_key"])
    assert list(old_before["ingested_at"]) == list(old_after["ingested_at"])


def test_invalid_or_missing_timesheets_are_quarantined_whole(ajera_server, warehouse, instance):
    config = small_config()
    server = ajera_server(config)
    state = ajera_state(server)
    first, last = config.anchor_date - timedelta(days=6), config.anchor_date
    week = timesheet_date_for(last, state.dataset.reading)  # the week holding the window
    in_window = sorted(
        k for k, ts in state.dataset.timesheets.items() if ts["list"]["Timesheet Date"] == week.isoformat()
    )
    corrupt_key, hidden_key = in_window[0], in_window[1]
    expected = {
        k: v
        for k, v in day_cells(state.dataset, first, last).items()
        if not k.startswith((f"{corrupt_key}:", f"{hidden_key}:"))
    }
    corrupt_timesheet(state, corrupt_key)
    state.hidden_details.add(hidden_key)
    corrupt_lines = len(state.dataset.timesheets[corrupt_key]["detail"]["Project"]["Detail"]) + len(
        state.dataset.timesheets[corrupt_key]["detail"]["Overhead"]["Detail"]
    )

    result = materialize(
        [ajera_timesheets], {"ajera": resource_for(server)}, warehouse, first=first, last=last, instance=instance
    )

    raw = read_raw(warehouse)
    bad = raw[raw["quarantine_reason"].notna()]
    assert set(bad["timesheet_key"]) == {corrupt_key, hidden_key}
    corrupt_rows = bad[bad["timesheet_key"] == corrupt_key]
    assert len(corrupt_rows) == corrupt_lines  # every line of the week, not just the broken one
    assert corrupt_rows["quarantine_reason"].str.contains("D4 Regular").all()
    assert corrupt_rows["quarantine_reason"].str.contains("valid number").all()
    [hidden_reason] = bad.loc[bad["timesheet_key"] == hidden_key, "quarantine_reason"]
    assert hidden_reason == "listed by ListTimesheets but not returned by GetTimesheets"
    assert bad["work_date"].between(first, last).all()
    assert bad["payload"].str.len().gt(10).all()

    good = raw[raw["quarantine_reason"].isna()]
    assert set(good["record_key"]) == set(expected)
    conformed = conform_timesheets(raw)
    assert set(conformed["entry_id"]) == set(expected)
    meta = materialization_metadata(result, ["raw", "ajera", "timesheets"])
    assert meta["quarantined_in_run"] == 2
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks[QUARANTINE_CHECK].passed
    assert checks[QUARANTINE_CHECK].metadata["quarantined"].value == 2


def test_a_key_lives_on_one_day_and_keyless_weeks_keep_their_key_across_runs(
    ajera_server, warehouse, instance, monkeypatch
):
    """The raw table declares its primary key, so a key written on another day moves there; a
    listed week without a key is named by a digest of what was served (the shared
    ``unkeyed_key``), the same in every run, so it never lands twice."""
    from timesheet_assets.ingest.records import unkeyed_key
    from timesheet_assets.storage import PRIMARY_KEY
    from timesheet_assets.vendors.ajera import sandbox as ajera_sandbox

    assert ajera_timesheets.specs_by_key[TIMESHEETS_KEY].metadata[PRIMARY_KEY] == "record_key"
    allowed, list_timesheets, paged = ajera_sandbox.METHODS["ListTimesheets"]
    ghost = {"Employee": "Nobody", "Timesheet Total": 3}

    def with_a_keyless_week(st, call):
        return {"Timesheets": [*list_timesheets(st, call)["Timesheets"], dict(ghost)]}

    monkeypatch.setitem(ajera_sandbox.METHODS, "ListTimesheets", (allowed, with_a_keyless_week, paged))
    config = small_config()
    server = ajera_server(config)
    resource = resource_for(server)
    older = (config.first_date, config.first_date + timedelta(days=6))
    newer = (older[1] + timedelta(days=1), config.anchor_date)
    materialize([ajera_timesheets], {"ajera": resource}, warehouse, first=older[0], last=older[1], instance=instance)
    result = materialize(
        [ajera_timesheets], {"ajera": resource}, warehouse, first=newer[0], last=newer[1], instance=instance
    )

    raw = read_raw(warehouse)
    expected_key = unkeyed_key(json.dumps({"Timesheet": ghost, "Detail": None}, separators=(",", ":")))
    keyless = raw[raw["record_key"].str.startswith("unkeyed:")]
    assert list(keyless["record_key"]) == [expected_key]  # once, on the day of the latest run
    assert list(keyless["work_date"]) == [newer[0]]
    assert raw["record_key"].is_unique
    assert materialization_metadata(result, ["raw", "ajera", "timesheets"])["rows_moved_from_other_days"] == 1
