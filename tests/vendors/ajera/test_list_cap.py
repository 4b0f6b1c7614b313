"""``ListTimesheets`` answers of exactly ``list_cap`` records (500, the cap people using the real
API report) are cut off: the request is split into seven-day ranges, then by employee, until no
answer is full; every timesheet lands once."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from timesheet_assets.http import VendorRejected
from timesheet_assets.vendors.ajera.assets import build_timesheet_frame
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.ajera.sandbox import ajera_state, day_cells, sandbox_env
from timesheet_assets.vendors.ajera.week import touches

from .conftest import resource_for, small_config


def _weeks_touching(state, first: date, last: date) -> set[int]:
    return {
        key
        for key, ts in state.dataset.timesheets.items()
        if touches(date.fromisoformat(ts["list"]["Timesheet Date"]), first, last, state.dataset.reading)
    }


def test_a_full_answer_is_split_into_weeks_then_employees_at_the_real_cap(ajera_server, reading):
    # 2,400 timesheets over 3–4 weeks: 600 or more a week, so a week's answer is full too (500)
    # and is split by employee (ListEmployees, 2 pages of 500).
    config = small_config(time_records=2400, employees=5, days=21, projects=4)
    server = ajera_server(config, timesheet_date=reading, list_cap=500)
    state = ajera_state(server)
    first, last = config.first_date, config.anchor_date
    resource = resource_for(server, timesheet_batch_size=200, page_size=500)
    try:
        fetch = resource.fetch_timesheets(first, last)
    finally:
        resource.close()
    wanted = _weeks_touching(state, first, last)
    assert len(wanted) > 1000
    assert sorted(r["Timesheet Key"] for r in fetch.listed) == sorted(wanted)
    assert set(fetch.details) == wanted
    built, _ = build_timesheet_frame(fetch)
    assert set(built.frame["record_key"]) == set(day_cells(state.dataset, first, last))
    # One full answer for the whole range, then per week: full weeks split by employee.
    assert fetch.truncated_lists >= 2
    assert state.calls("ListEmployees") == 2  # read once: 600 or 800 employees in pages of 500
    assert fetch.list_calls == state.calls("ListTimesheets")


def test_a_range_under_the_cap_costs_one_call(ajera_server):
    config = small_config(time_records=300, days=21)
    server = ajera_server(config, list_cap=500)
    state = ajera_state(server)
    resource = resource_for(server)
    try:
        fetch = resource.fetch_timesheets(config.first_date, config.anchor_date)
    finally:
        resource.close()
    assert (fetch.list_calls, fetch.truncated_lists, state.calls("ListEmployees")) == (1, 0, 0)
    assert len(fetch.listed) == 300


ASKED: list[tuple[date, date, tuple[int, ...] | None, int]] = []


class Recording(AjeraResource):
    """The resource, noting each ``ListTimesheets`` request and how many records it answered."""

    def list_timesheets(self, earliest, latest, employees=None) -> list[Any]:
        records = super().list_timesheets(earliest, latest, employees=employees)
        ASKED.append((earliest, latest, tuple(employees) if employees is not None else None, len(records)))
        return records


def test_splitting_asks_for_seven_day_ranges_then_employee_groups(ajera_server):
    """With a small cap the splits are easy to see: a full answer over a long range is asked
    again week by week, a full week again by groups of employees that together are everyone."""
    config = small_config(time_records=60, employees=5, days=21)
    server = ajera_server(config, list_cap=12)
    state = ajera_state(server)
    ASKED.clear()
    resource = Recording.from_values(sandbox_env(server.url), requests_per_second=50.0, status_scan_days=0, list_cap=12)
    first, last = config.first_date, config.anchor_date
    try:
        fetch = resource.fetch_timesheets(first, last)
    finally:
        resource.close()
    assert sorted(r["Timesheet Key"] for r in fetch.listed) == sorted(_weeks_touching(state, first, last))
    (start, end, employees, served), *rest = ASKED
    assert employees is None and (end - start).days + 1 > 7 and served == 12
    weekly = [a for a in rest if a[2] is None]
    assert weekly and all((b - a).days + 1 <= 7 for a, b, _, _ in weekly)
    split = [a for a in rest if a[2] is not None]
    assert split, "a week with more timesheets than the cap is asked for by employee"
    everyone = sorted(e["EmployeeKey"] for e in state.dataset.employees)
    for week in {(a, b) for a, b, _, _ in split}:
        # The answers that were complete (not full) cover every employee exactly once.
        leaves = [e for a, b, e, n in split if (a, b) == week and n < 12]
        assert sorted(k for group in leaves for k in group) == everyone
    assert fetch.truncated_lists == sum(1 for *_, n in ASKED if n == 12)
    assert fetch.list_calls == len(ASKED) == state.calls("ListTimesheets")


class AlwaysFull(AjeraResource):
    """A server whose every answer holds exactly the cap, whatever is asked."""

    def list_timesheets(self, earliest, latest, employees=None) -> list[Any]:
        return [{"Timesheet Key": i, "Timesheet Date": earliest.isoformat()} for i in range(self.list_cap)]

    def list_employees(self) -> tuple[list[Any], int]:
        return [{"EmployeeKey": 20}, {"EmployeeKey": 21}], 1


def test_one_employee_with_a_full_week_fails_the_run_saying_so():
    resource = AlwaysFull(
        base_url="https://ajera.example.test/AjeraAPI.ashx", api_id="i", username="u", password="p", list_cap=3
    )
    with pytest.raises(
        VendorRejected,
        match=r"ListTimesheets: employee 2[01] has 3 timesheets dated .* the list cannot be split further",
    ):
        resource.fetch_timesheets(date(2025, 3, 3), date(2025, 3, 9))
