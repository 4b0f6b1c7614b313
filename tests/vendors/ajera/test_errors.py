"""Ajera failures: error envelopes under HTTP 200, HTTP errors, transient faults, secrets."""

from __future__ import annotations

import logging
from datetime import timedelta

import dagster as dg
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.http import VendorHTTPError
from timesheet_assets.vendors.ajera.assets import ajera_projects, ajera_timesheets
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.ajera.sandbox import API_ID, PASSWORD, USERNAME, ajera_state, day_cells, sandbox_env

from .conftest import resource_for, small_config


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data.error.message


def run_text(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    """Everything the run wrote to the Dagster event log, as text."""
    return "\n".join(str(entry) for entry in instance.all_logs(result.run_id))


def test_errors_entry_under_http_200_fails_the_run_with_the_vendor_message(ajera_server, warehouse, instance):
    server = ajera_server()
    state = ajera_state(server)
    result = materialize(
        [ajera_projects],
        {"ajera": resource_for(server, page_size=5000)},
        warehouse,
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    message = failure_message(result)
    assert "Ajera POST /AjeraAPI.ashx failed with HTTP 200 after 1 attempt" in message
    assert "ListProjects: ResponseCode 400" in message
    assert "PageSize must be between 1 and 1000" in message
    # Refusals are not retried, neither by the client nor by the step retry policy.
    assert state.calls("ListProjects") == 1
    assert len(result.get_step_failure_events()) == 1
    assert state.calls("EndAPISession") == 1


def test_http_error_status_quotes_the_envelope_message(ajera_server):
    server = ajera_server()
    server.sandbox.knobs.update(script=[500])
    resource = resource_for(server)
    try:
        with pytest.raises(VendorHTTPError) as failure:
            resource.call("ListProjects", {})
    finally:
        resource.close()
    # The first request is the session the call needs; the message names that method.
    assert str(failure.value) == (
        "Ajera POST /AjeraAPI.ashx failed with HTTP 500 after 1 attempt: CreateAPISession: sandbox fault"
    )


def test_transient_faults_are_retried_and_the_window_is_complete(ajera_server, warehouse, instance):
    config = small_config()
    server = ajera_server(config)
    state = ajera_state(server)
    server.sandbox.knobs.update(script=[503, "truncate", 429, "reset"], retry_after="0")
    first, last = config.anchor_date - timedelta(days=6), config.anchor_date
    result = materialize(
        [ajera_timesheets], {"ajera": resource_for(server)}, warehouse, first=first, last=last, instance=instance
    )
    meta = materialization_metadata(result, ["raw", "ajera", "timesheets"])
    assert meta["retries"] == 4
    assert (meta["server_errors"], meta["rate_limited"]) == (1, 1)
    raw = read_table(warehouse, "ajera.timesheets")
    assert set(raw["record_key"]) == set(day_cells(state.dataset, first, last))


SECRET_PASSWORD = "pw-Zebra-77c1-secret"
SECRET_API_ID = "id-Okapi-9d2e-secret"


@pytest.mark.parametrize(
    "overrides, vendor_message",
    [
        ({"AJERA_PASSWORD": SECRET_PASSWORD}, "Invalid username or password."),
        ({"AJERA_API_ID": SECRET_API_ID}, "The API id in the URL is missing or not valid."),
    ],
)
def test_secrets_never_reach_errors_logs_or_metadata(
    ajera_server, warehouse, instance, monkeypatch, caplog, overrides, vendor_message
):
    server = ajera_server()
    env = {**sandbox_env(server.url), **overrides}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    resource = AjeraResource(
        base_url=dg.EnvVar("AJERA_BASE_URL"),
        api_id=dg.EnvVar("AJERA_API_ID"),
        username=dg.EnvVar("AJERA_USERNAME"),
        password=dg.EnvVar("AJERA_PASSWORD"),
    )
    caplog.set_level(logging.DEBUG)
    result = materialize([ajera_projects], {"ajera": resource}, warehouse, instance=instance, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert vendor_message in message
    texts = [message, run_text(instance, result), caplog.text]
    for secret in (SECRET_PASSWORD, SECRET_API_ID, PASSWORD, API_ID):
        assert all(secret not in text for text in texts), secret


def test_successful_run_logs_no_api_id_or_credentials(ajera_server, warehouse, instance, caplog):
    server = ajera_server()
    resource = resource_for(server)
    caplog.set_level(logging.DEBUG)
    result = materialize([ajera_projects], {"ajera": resource}, warehouse, instance=instance)
    assert result.success
    assert "AjeraAPI.ashx" in caplog.text  # httpx did log the requests...
    assert API_ID not in caplog.text  # ...without the API id in the query string
    texts = [caplog.text, run_text(instance, result)]
    for secret in (API_ID, PASSWORD, USERNAME):
        assert all(secret not in text for text in texts), secret
    assert ajera_state(server).calls("EndAPISession") == 1
