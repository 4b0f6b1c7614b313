"""Changes to weeks before a run's range, found from list records (the status scan), and the
reconciliation of Ajera's week totals with the day rows the warehouse holds."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.schedules import day_ranges
from timesheet_assets.vendors.ajera.assets import TOTALS_CHECK, ajera_timesheets
from timesheet_assets.vendors.ajera.sandbox import ajera_state, day_cells
from timesheet_assets.vendors.ajera.week import first_day

from .conftest import ANCHOR, resource_for, small_config

TIMESHEETS = ["raw", "ajera", "timesheets"]
DAYS = 49
SCAN_WINDOW = (ANCHOR - timedelta(days=DAYS - 1), ANCHOR - timedelta(days=7))  # before a 7-day run
RUN = (ANCHOR - timedelta(days=6), ANCHOR)


def _week(state, key: int) -> list[date]:
    start = state.dataset.week_first_day(state.dataset.timesheets[key])
    return [start + timedelta(days=i) for i in range(7)]


def _whole_weeks_in_scan(state) -> list[date]:
    """``D1`` of the sandbox weeks lying wholly inside the scan window, oldest first."""
    starts = sorted({state.dataset.week_first_day(ts) for ts in state.dataset.timesheets.values()})
    return [s for s in starts if s >= SCAN_WINDOW[0] and s + timedelta(days=6) <= SCAN_WINDOW[1]]


def _approvable(state, week: date) -> int | None:
    """A timesheet of ``week`` an approval changes (not yet approved by everyone, or rejected)."""
    for key, ts in sorted(state.dataset.timesheets.items()):
        flags = ts["list"]
        if state.dataset.week_first_day(ts) == week and (
            flags["Rejected"]
            or not all(
                flags[f]
                for f in ("Submitted", "Supervisor Approved", "Project Manager Approved", "Accounting Approved")
            )
        ):
            return key
    return None


def _has_free_employee(state, week: date) -> bool:
    """Whether somebody has no timesheet for ``week`` (so a late one is a new timesheet)."""
    busy = {
        ts["list"]["Employee Key"]
        for ts in state.dataset.timesheets.values()
        if state.dataset.week_first_day(ts) == week
    }
    return len(busy) < len(state.dataset.employees)


def _days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def test_status_scan_reports_the_days_of_changed_weeks_before_the_run(ajera_server, warehouse, instance, reading):
    config = small_config(time_records=220, employees=6, days=DAYS)
    server = ajera_server(config, timesheet_date=reading)
    state = ajera_state(server)
    source = server.sandbox.extra["mutations"]
    load = resource_for(server)
    materialize([ajera_timesheets], {"ajera": load}, warehouse, first=config.first_date, last=ANCHOR, instance=instance)

    weeks = _whole_weeks_in_scan(state)
    approve_week = next(w for w in reversed(weeks) if _approvable(state, w) is not None)
    edit_week = next(w for w in weeks if w != approve_week and _has_free_employee(state, w))
    delete_week, move_week = [w for w in weeks if w not in (approve_week, edit_week)][:2]
    # An edit, an approval, a deleted timesheet and a late timesheet, each in its own week.
    edited = source.entry_keys(edit_week + timedelta(days=1), edit_week + timedelta(days=3))[0]
    source.edit_hours(edited, 1.5)
    known = set(state.dataset.timesheets)
    late = source.add_late(edit_week + timedelta(days=2))
    assert int(late.split(":")[0]) not in known  # a new timesheet, not a line on an old one
    approved = _approvable(state, approve_week)
    source.approve(
        next(
            k
            for k in source.entry_keys(approve_week, approve_week + timedelta(days=6))
            if int(k.split(":")[0]) == approved
        )
    )
    gone = int(source.entry_keys(delete_week, delete_week + timedelta(days=6))[0].split(":")[0])
    # A deleted week is re-read on the days the warehouse holds rows for it.
    gone_days = {
        k.rsplit(":", 1)[1] for k in day_cells(state.dataset, config.first_date, ANCHOR) if k.startswith(f"{gone}:")
    }
    for key in [
        k for k in source.entry_keys(delete_week, delete_week + timedelta(days=6)) if int(k.split(":")[0]) == gone
    ]:
        source.delete(key)
    assert gone not in state.dataset.timesheets
    # Hours moved between two days of one week: its total and flags stay as they were.
    week_keys = set(source.entry_keys(move_week, move_week + timedelta(days=6)))

    def next_day(key: str) -> str:
        head, day = key.rsplit(":", 1)
        return f"{head}:{(date.fromisoformat(day) + timedelta(days=1)).isoformat()}"

    moved = next(  # onto an empty day of the same line, so the moved entry is a new key
        k
        for k in sorted(week_keys)
        if date.fromisoformat(k.rsplit(":", 1)[1]) < move_week + timedelta(days=6) and next_day(k) not in week_keys
    )
    moved_to = source.move(moved, date.fromisoformat(moved.rsplit(":", 1)[1]) + timedelta(days=1))
    assert moved_to.split(":")[0] == moved.split(":")[0]

    daily = resource_for(server, status_scan_days=DAYS)
    state.method_calls.clear()
    result = materialize([ajera_timesheets], {"ajera": daily}, warehouse, first=RUN[0], last=RUN[1], instance=instance)

    meta = materialization_metadata(result, TIMESHEETS)
    expected = sorted(
        set(_days_between(edit_week, edit_week + timedelta(days=6)))
        | set(_days_between(approve_week, approve_week + timedelta(days=6)))
        | gone_days
    )
    assert meta["days_to_reread"] == expected
    assert (meta["change_scan_weeks_changed"], meta["change_scan_weeks_new"], meta["change_scan_weeks_gone"]) == (
        2,
        1,
        1,
    )
    assert (meta["change_scan"], meta["change_scan_first"], meta["change_scan_last"]) == (
        "scanned",
        SCAN_WINDOW[0].isoformat(),
        SCAN_WINDOW[1].isoformat(),
    )
    # The scan costs list calls only: one ListTimesheets for the run and the scan together.
    assert state.calls("ListTimesheets") == meta["list_requests"] == 1
    assert state.calls("GetTimesheets") == meta["detail_requests"]

    # Re-reading the reported days (what the sensor runs) brings those weeks in; the week whose
    # hours only moved between its days is left to the weekly deep refresh.
    for start, end in day_ranges([date.fromisoformat(d) for d in expected], merge_gap=1):
        materialize([ajera_timesheets], {"ajera": load}, warehouse, first=start, last=end, instance=instance)
    raw = read_table(warehouse, "ajera.timesheets")
    raw["work_date"] = pd.to_datetime(raw["work_date"]).dt.date
    truth = day_cells(state.dataset, config.first_date, ANCHOR)
    for week in (edit_week, approve_week):
        days = set(pd.date_range(week, periods=7).date)
        held = raw[raw["work_date"].isin(days)]
        assert dict(zip(held["record_key"], held["regular_hours"] + held["overtime_hours"])) == pytest.approx(
            {k: v for k, v in truth.items() if date.fromisoformat(k.rsplit(":", 1)[1]) in days}
        )
    assert not any(k.startswith(f"{gone}:") for k in raw["record_key"])
    assert moved in set(raw["record_key"]) and moved_to not in set(raw["record_key"])
    approved_rows = raw[raw["timesheet_key"] == approved]
    assert approved_rows["accounting_approved"].all() and not approved_rows["rejected"].any()

    # The next daily run finds nothing new before its range.
    again = materialize([ajera_timesheets], {"ajera": daily}, warehouse, first=RUN[0], last=RUN[1], instance=instance)
    assert materialization_metadata(again, TIMESHEETS)["days_to_reread"] == []


def test_a_run_whose_range_covers_the_scan_window_scans_nothing(ajera_server, warehouse, instance):
    config = small_config(days=21)
    server = ajera_server(config)
    result = materialize(
        [ajera_timesheets],
        {"ajera": resource_for(server, status_scan_days=21)},
        warehouse,
        first=config.first_date,
        last=ANCHOR,
        instance=instance,
    )
    meta = materialization_metadata(result, TIMESHEETS)
    assert meta["change_scan"].startswith("turned off") and "days_to_reread" not in meta
    assert "change_scan_first" not in meta


def test_reconciliation_names_the_week_day_and_employee_the_warehouse_got_wrong(
    ajera_server, warehouse, instance, reading
):
    config = small_config(days=28)
    server = ajera_server(config, timesheet_date=reading)
    state = ajera_state(server)
    source = server.sandbox.extra["mutations"]
    resource = resource_for(server)
    first_load = materialize(
        [ajera_timesheets], {"ajera": resource}, warehouse, first=config.first_date, last=ANCHOR, instance=instance
    )
    [clean] = [c for c in first_load.get_asset_check_evaluations() if c.check_name == TOTALS_CHECK]
    assert clean.passed and clean.metadata["weeks_checked"].value > 0

    window = (ANCHOR - timedelta(days=9), ANCHOR)  # starts on a Thursday, mid-week for both readings
    stale_day = window[0] - timedelta(days=2)  # same week, outside the window: not re-read
    stale = source.entry_keys(stale_day, stale_day)[0]
    stale_key = int(stale.split(":")[0])
    assert (
        first_day(date.fromisoformat(state.dataset.timesheets[stale_key]["list"]["Timesheet Date"]), reading)
        < window[0]
    )
    source.edit_hours(stale, 2.0)
    # And a week whose list total disagrees with its own day cells (Ajera's numbers differ).
    inconsistent = next(
        k
        for k in sorted({int(x.split(":")[0]) for x in source.entry_keys(ANCHOR - timedelta(days=3), ANCHOR)})
        if k != stale_key
    )
    state.dataset.timesheets[inconsistent]["list"]["Timesheet Total"] += 1.0

    result = materialize(
        [ajera_timesheets], {"ajera": resource}, warehouse, first=window[0], last=window[1], instance=instance
    )

    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == TOTALS_CHECK]
    assert not check.passed
    meta = {k: v.value for k, v in check.metadata.items()}
    mismatches = {m["timesheet_key"]: m for m in meta["mismatches"]}
    assert set(mismatches) == {stale_key, inconsistent}
    assert mismatches[stale_key]["days"] == [stale_day.isoformat()]
    assert mismatches[stale_key]["timesheet_total"] == pytest.approx(mismatches[stale_key]["warehouse_hours"] + 2.0)
    assert mismatches[inconsistent]["days"] == []
    assert mismatches[inconsistent]["ajera_day_cells_hours"] == pytest.approx(
        mismatches[inconsistent]["warehouse_hours"]
    )
    names = {state.dataset.timesheets[k]["list"]["Employee"] for k in (stale_key, inconsistent)}
    assert all(name in meta["employees"] for name in names)
    assert meta["days"] == stale_day.isoformat()
    assert meta["weeks_mismatched"] == 2
    assert json.loads(json.dumps(meta["mismatches"])) == meta["mismatches"]  # plain JSON in the metadata
