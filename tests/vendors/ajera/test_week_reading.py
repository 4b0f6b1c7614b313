"""Which day ``TimesheetDate`` names (``AJERA_TIMESHEET_DATE``): both readings end to end.

The sandbox serves either reading (every ``TimesheetDate`` a Sunday, as in the document's
examples); the client reads it as configured. Listing asks for the weeks of both readings, so no
week is missed at either edge of any window, and only the configured reading places the days.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.vendors.ajera.assets import ajera_timesheets, build_timesheet_frame
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.ajera.sandbox import ajera_state, day_cells, sandbox_env
from timesheet_assets.vendors.ajera.week import WEEK_ENDING, WEEK_STARTING

from .conftest import ANCHOR, resource_for, small_config


def test_every_one_day_window_lands_exactly_its_cells(ajera_server, reading):
    """Seven one-day windows across a week and the two days around it: the week that ends after
    the window (week ending) and the week that started before it (week starting) are both found."""
    server = ajera_server(small_config(), timesheet_date=reading)
    state = ajera_state(server)
    resource = resource_for(server)
    try:
        for offset in range(9):
            day = ANCHOR - timedelta(days=offset)
            fetch = resource.fetch_timesheets(day, day)
            built, _ = build_timesheet_frame(fetch)
            assert set(built.frame["record_key"]) == set(day_cells(state.dataset, day, day)), day
            assert built.quarantined == 0
    finally:
        resource.close()


def test_a_reading_that_does_not_match_the_tenant_shifts_every_day_by_six(ajera_server):
    """What the setting decides: a tenant's weeks read the other way land every hour six days
    late, so ``AJERA_TIMESHEET_DATE`` must match the tenant (docs/vendors/ajera.md says how to
    check one timesheet against the Ajera screen)."""
    server = ajera_server(small_config(), timesheet_date=WEEK_ENDING)
    state = ajera_state(server)
    first, last = ANCHOR - timedelta(days=13), ANCHOR
    wrong = resource_for(server, timesheet_date=WEEK_STARTING)
    try:
        built, _ = build_timesheet_frame(wrong.fetch_timesheets(first, last))
    finally:
        wrong.close()

    def six_days_late(key: str) -> str:
        head, day = key.rsplit(":", 1)
        return f"{head}:{(date.fromisoformat(day) + timedelta(days=6)).isoformat()}"

    truth = day_cells(state.dataset, first - timedelta(days=6), last - timedelta(days=6))
    assert truth
    assert set(built.frame["record_key"]) == {six_days_late(k) for k in truth}


def test_the_setting_comes_from_the_environment_and_refuses_other_values(monkeypatch):
    env = {**sandbox_env("http://127.0.0.1:9"), "AJERA_TIMESHEET_DATE": "week_starting"}
    settings = AjeraResource.env_settings(env)
    assert settings["timesheet_date"] == dg.EnvVar("AJERA_TIMESHEET_DATE")
    assert AjeraResource.from_values(env).timesheet_date == WEEK_STARTING
    assert AjeraResource.from_values({**env, "AJERA_TIMESHEET_DATE": " Week_Ending "}).timesheet_date == WEEK_ENDING
    assert "timesheet_date" not in AjeraResource.env_settings(sandbox_env("http://127.0.0.1:9"))
    with pytest.raises(Exception, match="AJERA_TIMESHEET_DATE must be one of week_ending, week_starting, got 'sunday'"):
        AjeraResource.from_values({**env, "AJERA_TIMESHEET_DATE": "sunday"})


def test_both_readings_land_the_same_hours_through_dagster(ajera_server, warehouse, instance, reading):
    config = small_config()
    server = ajera_server(config, timesheet_date=reading)
    state = ajera_state(server)
    first, last = config.first_date, config.anchor_date
    result = materialize(
        [ajera_timesheets], {"ajera": resource_for(server)}, warehouse, first=first, last=last, instance=instance
    )
    raw = read_table(warehouse, "ajera.timesheets")
    cells = day_cells(state.dataset, first, last)
    assert dict(zip(raw["record_key"], raw["regular_hours"] + raw["overtime_hours"])) == pytest.approx(cells)
    meta = materialization_metadata(result, ["raw", "ajera", "timesheets"])
    assert meta["timesheet_date_reading"] == reading
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["timesheet_totals_reconcile"] is True


def test_the_code_location_loads_with_the_setting_and_checks_it_when_a_run_starts(monkeypatch):
    from timesheet_assets.vendors.ajera.definitions import ajera_resource

    for name, value in sandbox_env("http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AJERA_TIMESHEET_DATE", " Week_Starting ")
    with dg.build_resources({"ajera": ajera_resource()}) as built:
        assert built.ajera.timesheet_date == WEEK_STARTING
    monkeypatch.setenv("AJERA_TIMESHEET_DATE", "sunday")
    resource = ajera_resource()  # loads: the variable is read when a run starts
    with pytest.raises(Exception) as raised, dg.build_resources({"ajera": resource}):
        pass
    assert "AJERA_TIMESHEET_DATE must be one of week_ending, week_starting, got 'sunday'" in "".join(
        repr(e) for e in (raised.value, raised.value.__cause__)
    )
