"""Readings of the document this client depends on, against sandbox variants that make the other
choice: who the login is (``user_id`` "Optional for admin"), what ``end_datetime`` bounds, and
which timezone a work date is taken in."""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import dagster as dg
import pytest

from tests.support.dagster_helpers import failure_text, materialization_metadata, materialize, read_table, step_retries
from tests.vendors.ibuildapp.conftest import resource_for, small_config
from timesheet_assets.vendors.ibuildapp.assets import TIMEZONE_WARNING, time_entries
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource
from timesheet_assets.vendors.ibuildapp.sandbox import non_admin_account, sandbox_env, state_of

CONFIG = small_config(time_records=80, days=6)
FIRST, LAST = CONFIG.first_date, CONFIG.anchor_date
TIME_ENTRIES = ["raw", "ibuildapp", "time_entries"]


def load(server, warehouse, instance=None, first=FIRST, last=LAST, **options: Any) -> dg.ExecuteInProcessResult:
    return materialize(
        [time_entries],
        {"ibuildapp": resource_for(server, **options)},
        warehouse,
        first=first,
        last=last,
        instance=instance,
        raise_on_error=False,
    )


# -- the login must see every user ------------------------------------------------------------------
def test_plain_user_login_fails_the_run_and_keeps_the_warehouse(start_sandbox, warehouse, instance, monkeypatch):
    from tests.support.step_retries import use_quick_step_retries
    from timesheet_assets.vendors.ibuildapp.assets import ASSETS

    use_quick_step_retries(monkeypatch, ASSETS)
    server = start_sandbox(CONFIG)
    state = state_of(server.app)
    assert load(server, warehouse, instance).success
    before = read_table(warehouse, "ibuildapp.time_entries")
    assert before["user_id"].nunique() > 1

    # The same credentials now log in as employee 3, a plain user (roles: ROLE_USER).
    server.sandbox.extra["account"] = non_admin_account(state, 3)
    server.sandbox.stats.reset()
    result = load(server, warehouse, instance)

    assert not result.success
    text = failure_text(result)
    assert "user 3" in text and "is not an administrator (roles: ROLE_USER)" in text
    assert "Optional for admin" in text and "admin_roles" in text
    assert step_retries(result) == 0  # a configuration problem: retrying cannot help
    assert server.sandbox.stats.count("/ts/search") == 0  # stopped before reading anything
    after = read_table(warehouse, "ibuildapp.time_entries")
    assert after.equals(before)  # nothing replaced, ingested_at included


def test_the_plain_user_variant_really_serves_one_person(start_sandbox):
    """What the check prevents: the same search, logged in as a plain user, answers with that
    user's entries only (the sandbox variant behaves as the document describes)."""
    server = start_sandbox(CONFIG)
    state = state_of(server.app)
    server.sandbox.extra["account"] = non_admin_account(state, 3)
    resource = resource_for(server, admin_roles=[])  # the check turned off
    try:
        entries = resource.search_time_entries(FIRST, LAST).records
    finally:
        resource.close()
    mine = [e for e in state.entries.values() if e["user_id"] == 3]
    assert mine and len(entries) == len(mine) < len(state.entries)
    assert {e["user_id"] for e in entries} == {3}


@pytest.mark.parametrize(
    "roles, admin_roles",
    [
        (["ROLE_USER", "ROLE_ADMIN"], None),
        (["ROLE_SUPER_ADMIN"], None),
        (["role_admin"], None),
        (["ROLE_USER", "ROLE_OWNER"], ["ROLE_OWNER"]),
    ],
    ids=["role-admin", "super-admin", "lower-case", "configured-role"],
)
def test_administrator_roles_pass(start_sandbox, warehouse, roles, admin_roles):
    server = start_sandbox(CONFIG)
    server.sandbox.extra["account"] = {**server.sandbox.extra["account"], "roles": roles}
    server.sandbox.extra["admin_roles"] = [role for role in roles if role.upper() != "ROLE_USER"]
    options = {} if admin_roles is None else {"admin_roles": admin_roles}
    result = load(server, warehouse, **options)
    assert result.success
    assert len(read_table(warehouse, "ibuildapp.time_entries")) == CONFIG.time_records
    assert materialization_metadata(result, TIME_ENTRIES)["account_roles"] == ", ".join(roles)


def test_an_account_answered_without_roles_cannot_be_shown_to_be_an_administrator(start_sandbox, warehouse):
    server = start_sandbox(CONFIG)
    account = dict(server.sandbox.extra["account"])
    del account["roles"]
    server.sandbox.extra["account"] = account
    result = load(server, warehouse)
    assert not result.success
    assert "answered POST user without 'roles'" in failure_text(result)
    assert server.sandbox.stats.count("/ts/search") == 0


def test_the_check_costs_one_call(start_sandbox, warehouse):
    server = start_sandbox(CONFIG)
    assert load(server, warehouse).success
    calls = server.sandbox.stats.calls("/user")
    assert len(calls) == 1 and calls[0].status == 200


# -- what end_datetime bounds ------------------------------------------------------------------------
NIGHT = date(2025, 3, 20)


def _night_shift_sandbox(start_sandbox, reading: str):
    server = start_sandbox(small_config(time_records=0, days=5))
    server.sandbox.extra["window_reading"] = reading
    state = state_of(server.app)
    evening = int(datetime(2025, 3, 20, 22, tzinfo=UTC).timestamp())
    shifts = {
        801: (evening, evening + 8 * 3600),  # 22:00 → 06:00 the next day
        802: (evening - 9 * 3600, evening - 3600),  # a day shift
        803: (evening + 3 * 3600, evening + 5 * 3600),  # starts 01:00 the next day
    }
    for eid, (start, end) in shifts.items():
        state.entries[eid] = {
            "id": eid,
            "user_id": 1,
            "task_id": 1,
            "start_time": start,
            "end_time": end,
            "duration": end - start,
            "status": "approved",
            "payment_status": "pending",
        }
    return server


@pytest.mark.parametrize("reading", ["start", "entry"], ids=["end-bounds-start", "end-bounds-entry-end"])
def test_a_night_shift_lands_on_its_start_day_under_either_reading(start_sandbox, warehouse, reading):
    server = _night_shift_sandbox(start_sandbox, reading)
    result = load(server, warehouse, first=NIGHT, last=NIGHT)
    assert result.success
    raw = read_table(warehouse, "ibuildapp.time_entries")
    assert sorted(raw["record_key"]) == ["801", "802"]
    assert set(raw["work_date"].dt.date) == {NIGHT}
    # 803 starts the next day: served thanks to the margin, left to its own partition.
    assert materialization_metadata(result, TIME_ENTRIES)["outside_window_skipped"] == 1


def test_without_the_margin_the_end_reading_loses_the_night_shift(start_sandbox, warehouse):
    """The variant bites: a window ending at midnight, read by an API whose end_datetime bounds
    the entry's end, never serves the shift that runs past midnight."""
    server = _night_shift_sandbox(start_sandbox, "entry")
    assert load(server, warehouse, first=NIGHT, last=NIGHT, window_end_margin_hours=0).success
    assert sorted(read_table(warehouse, "ibuildapp.time_entries")["record_key"]) == ["802"]


def test_the_window_asks_a_day_beyond_the_last_midnight(start_sandbox):
    server = start_sandbox(small_config(time_records=0))
    resource = resource_for(server, timezone="America/Los_Angeles")
    try:
        bounds = resource.search_window(NIGHT, NIGHT)
    finally:
        resource.close()
    midnight = datetime(2025, 3, 20, tzinfo=timezone(timedelta(hours=-7)))
    assert bounds == {
        "start_datetime": int(midnight.timestamp()),
        "end_datetime": int((midnight + timedelta(days=2)).timestamp()),
    }


# -- the timezone -------------------------------------------------------------------------------------
def _env_resource(server, **extra: str) -> IBuildAppResource:
    env = {k: v for k, v in sandbox_env(server.url).items() if k != "IBUILDAPP_TIMEZONE"}
    return IBuildAppResource.from_values({**env, **extra}, requests_per_second=25.0)


def _run_warnings(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id) if entry.level == logging.WARNING]


def test_a_load_without_the_timezone_variable_warns_in_the_run_log_and_metadata(start_sandbox, warehouse, instance):
    server = start_sandbox(CONFIG)
    resource = _env_resource(server)
    assert resource.timezone is None and resource.zone_name == "UTC"
    result = materialize([time_entries], {"ibuildapp": resource}, warehouse, first=FIRST, last=LAST, instance=instance)
    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["timezone"] == "UTC"
    assert metadata["timezone_source"] == "default (IBUILDAPP_TIMEZONE not set)"
    assert metadata["timezone_warning"] == TIMEZONE_WARNING
    assert "California" in TIMEZONE_WARNING
    assert [m for m in _run_warnings(instance, result) if TIMEZONE_WARNING in m]


def test_a_load_with_the_timezone_variable_does_not_warn(start_sandbox, warehouse, instance):
    server = start_sandbox(CONFIG)
    resource = _env_resource(server, IBUILDAPP_TIMEZONE="America/Los_Angeles")
    result = materialize([time_entries], {"ibuildapp": resource}, warehouse, first=FIRST, last=LAST, instance=instance)
    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["timezone"] == "America/Los_Angeles" and metadata["timezone_source"] == "IBUILDAPP_TIMEZONE"
    assert "timezone_warning" not in metadata
    assert not [m for m in _run_warnings(instance, result) if "IBUILDAPP_TIMEZONE" in m]


def test_the_timezone_variable_is_read_when_the_run_starts(start_sandbox, warehouse, monkeypatch):
    server = start_sandbox(CONFIG)
    for name, value in sandbox_env(server.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IBUILDAPP_TIMEZONE", "America/New_York")
    resource = IBuildAppResource.from_env()
    assert isinstance(resource.timezone, dg.EnvVar)
    result = materialize([time_entries], {"ibuildapp": resource}, warehouse, first=FIRST, last=LAST)
    assert materialization_metadata(result, TIME_ENTRIES)["timezone"] == "America/New_York"

    monkeypatch.setenv("IBUILDAPP_TIMEZONE", "Mars/Olympus")
    with pytest.raises(Exception) as failure:
        materialize([time_entries], {"ibuildapp": IBuildAppResource.from_env()}, warehouse, first=FIRST, last=LAST)
    assert "unknown timezone 'Mars/Olympus'" in "".join(traceback.format_exception(failure.value))
