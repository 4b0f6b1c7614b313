"""Ajera sessions: created lazily, reused, re-created once when the API rejects them, ended."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.http import VendorAuthError
from timesheet_assets.vendors.ajera.assets import ajera_timesheets
from timesheet_assets.vendors.ajera.sandbox import API_ID, ENDPOINT, ajera_state, day_cells

from .conftest import resource_for, small_config


def test_session_expiring_mid_run_is_recreated_once_and_ended_at_teardown(ajera_server, warehouse, instance):
    config = small_config(time_records=40)
    server = ajera_server(config)
    state = ajera_state(server)
    # The session dies after three calls; the run needs five (1 ListTimesheets + 4 GetTimesheets).
    server.sandbox.knobs.update(token_expiry_after_calls=3)
    first, last = config.first_date, config.anchor_date
    result = materialize(
        # One call at a time so the call counts below are exact.
        [ajera_timesheets],
        {"ajera": resource_for(server, timesheet_batch_size=10, max_in_flight=1)},
        warehouse,
        first=first,
        last=last,
        instance=instance,
    )
    assert state.calls("CreateAPISession") == 2
    assert state.calls("GetTimesheets") == 5  # four batches, one of them repeated with the new session
    assert state.calls("EndAPISession") == 1  # at teardown, with the second session (its third use)
    meta = materialization_metadata(result, ["raw", "ajera", "timesheets"])
    assert meta["reauthentications"] == 1
    raw = read_table(warehouse, "ajera.timesheets")
    assert set(raw["record_key"]) == set(day_cells(state.dataset, first, last))
    # Every call carried a session token the sandbox had issued, and no call went unanswered.
    assert server.sandbox.stats.by_status == {200: 9}


def test_session_rejected_again_after_recreation_fails_without_looping(ajera_server):
    server = ajera_server()
    state = ajera_state(server)
    server.sandbox.knobs.update(token_expiry_after_calls=0)  # every session is dead on arrival
    resource = resource_for(server)
    with pytest.raises(VendorAuthError) as failure:
        resource.list_timesheets(small_config().first_date, small_config().anchor_date)
    resource.close()
    assert "after 2 attempts: ListTimesheets: ResponseCode 401: Invalid or expired session token." in str(failure.value)
    assert state.calls("CreateAPISession") == 2
    assert state.calls("ListTimesheets") == 2


def test_session_is_reused_until_its_expiration_then_renewed(ajera_server):
    # The three calls before the pause have 3 s to finish before the renewal margin begins:
    # ample on a loaded machine.
    server = ajera_server(session_lifetime_seconds=6)
    state = ajera_state(server)
    resource = resource_for(server, session_renew_margin_seconds=3)
    config = small_config()
    try:
        for _ in range(3):
            resource.list_timesheets(config.first_date, config.first_date)
        assert state.calls("CreateAPISession") == 1
        time.sleep(3.3)  # inside the renewal margin before SessionExpiration
        resource.list_timesheets(config.first_date, config.first_date)
        assert state.calls("CreateAPISession") == 2
        assert resource.metrics.snapshot().reauthentications == 0  # renewed before the API refused it
    finally:
        resource.close()


def test_end_api_session_ends_the_token(ajera_server):
    server = ajera_server()
    state = ajera_state(server)
    resource = resource_for(server)
    config = small_config()
    resource.list_timesheets(config.first_date, config.first_date + timedelta(days=1))
    token = resource.session.active_token
    assert token
    resource.close()
    assert state.calls("EndAPISession") == 1
    answer = httpx.post(
        f"{server.url}{ENDPOINT}?{API_ID}",
        json={"Method": "ListTimesheets", "SessionToken": token, "MethodArguments": {}},
    ).json()
    assert answer["ResponseCode"] == 401
    assert answer["Errors"][0]["ErrorMessage"] == "Invalid or expired session token."


def test_parallel_calls_refused_together_share_one_new_session(ajera_server):
    config = small_config(time_records=40)
    server = ajera_server(config)
    state = ajera_state(server)
    server.sandbox.knobs.update(token_expiry_after_calls=3, latency_seconds=0.05)
    resource = resource_for(server, timesheet_batch_size=10, max_in_flight=2, requests_per_second=200.0)
    try:
        fetch = resource.fetch_timesheets(config.first_date, config.anchor_date)
    finally:
        resource.close()
    assert state.calls("CreateAPISession") == 2
    assert server.sandbox.stats.peak_in_flight == 2
    assert set(fetch.details) == set(state.dataset.timesheets)
    assert 1 <= resource.metrics.snapshot().reauthentications <= 2
