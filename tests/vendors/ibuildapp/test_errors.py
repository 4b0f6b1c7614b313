"""Error envelopes, token expiry and re-login, configuration errors, secrets kept out of text."""

from __future__ import annotations

import math

import dagster as dg
import httpx
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize
from tests.vendors.ibuildapp.conftest import resource_for, small_config
from timesheet_assets.http import VendorAuthError, VendorHTTPError
from timesheet_assets.vendors.ibuildapp.assets import ASSETS, time_entries
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource, IBuildAppTokenRejected
from timesheet_assets.vendors.ibuildapp.sandbox import SANDBOX_APP_CODE, sandbox_env

TIME_ENTRIES = ["raw", "ibuildapp", "time_entries"]


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "the run was expected to fail"
    return "\n".join(str(e.step_failure_data.error) for e in failures)


def _run_window(server, warehouse, instance, **resource_options):
    config = small_config()
    return materialize(
        [time_entries],
        {"ibuildapp": resource_for(server, **resource_options)},
        warehouse,
        first=config.first_date,
        last=config.anchor_date,
        instance=instance,
        raise_on_error=False,
    )


def test_error_envelope_under_http_200_fails_with_vendor_message(start_sandbox, warehouse, instance):
    server = start_sandbox()
    server.sandbox.extra["scripted_errors"].append(
        {
            "path_contains": "ts/search",
            "http_status": 200,
            "message": "Database is read-only for maintenance.",
            "error_code": 3,
        }
    )
    result = _run_window(server, warehouse, instance)
    assert not result.success
    text = _failure_text(result)
    assert "iBuildApp POST /api/tsdemo/ts/search failed with HTTP 200" in text
    assert "Database is read-only for maintenance. (error_code 3)" in text
    # Not retried: the envelope is an answer, not a transient fault.
    assert server.sandbox.stats.count("/ts/search") == 1


def test_error_envelope_with_http_status_quotes_vendor_message(start_sandbox):
    server = start_sandbox()
    resource = resource_for(server, app_code="no-such-app")
    with pytest.raises(VendorHTTPError) as failure:
        resource.search_projects()
    resource.close()
    assert failure.value.status == 404
    assert "Application not found. (error_code 5)" in str(failure.value)


@pytest.mark.parametrize("auth_error_status", [401, 200], ids=["http-401", "envelope-under-200"])
def test_expired_token_triggers_exactly_one_relogin(start_sandbox, warehouse, instance, auth_error_status):
    config = small_config(time_records=150)
    server = start_sandbox(config)
    sandbox = server.sandbox
    sandbox.extra["auth_error_status"] = auth_error_status
    # Each token serves two calls: the third page meets an expired token.
    sandbox.knobs.update(token_expiry_after_calls=2)
    page = 50
    result = materialize(
        [time_entries],
        {"ibuildapp": resource_for(server, page_size=page)},
        warehouse,
        first=config.first_date,
        last=config.anchor_date,
        instance=instance,
    )
    pages = math.ceil(150 / page)
    assert sandbox.stats.count("/login") == 2
    assert sandbox.stats.count("/ts/search") == pages + 1  # the rejected call is repeated once
    statuses = [r.status for r in sandbox.stats.calls("/ts/search")]
    assert statuses.count(401) == (1 if auth_error_status == 401 else 0)
    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["reauthentications"] == 1
    assert metadata["logins"] == 2
    assert metadata["rows_in_run"] == 150


def test_token_rejected_after_relogin_fails(start_sandbox):
    server = start_sandbox()
    server.sandbox.knobs.update(token_expiry_after_calls=0)
    resource = resource_for(server)
    with pytest.raises(VendorAuthError) as failure:
        resource.search_projects()
    resource.close()
    assert "Auth token not specified or incorrect. (error_code 9)" in str(failure.value)
    assert server.sandbox.stats.count("/login") == 2
    assert server.sandbox.stats.count("/project/search") == 2


def _sandbox_token(server) -> str:
    response = httpx.post(
        f"{server.url}/api/{SANDBOX_APP_CODE}/login",
        json={"email": server.sandbox.extra["email"], "password": server.sandbox.extra["password"]},
    )
    return response.json()["token"]


def test_configured_token_is_used_without_login(start_sandbox):
    server = start_sandbox()
    token = _sandbox_token(server)
    server.sandbox.stats.reset()
    resource = resource_for(server, token=token, email=None, password=None)
    try:
        projects = resource.search_projects()
    finally:
        resource.close()
    assert len(projects.records) == 5
    assert server.sandbox.stats.count("/login") == 0
    assert server.sandbox.stats.calls("/project/search")[0].headers["authorization"] == f"Bearer {token}"


def test_rejected_token_without_credentials_names_the_variables(start_sandbox):
    server = start_sandbox()
    resource = resource_for(server, token="tok-revoked-4b9e21", email=None, password=None)
    with pytest.raises(IBuildAppTokenRejected) as failure:
        resource.search_projects()
    resource.close()
    message = str(failure.value)
    assert "IBUILDAPP_TOKEN" in message and "IBUILDAPP_EMAIL" in message and "IBUILDAPP_PASSWORD" in message
    assert "tok-revoked-4b9e21" not in message
    assert server.sandbox.stats.count("/login") == 0


def test_rejected_token_with_credentials_logs_in_once(start_sandbox):
    server = start_sandbox()
    resource = resource_for(server, token="tok-stale-77aa10")
    try:
        assert len(resource.search_projects().records) == 5
    finally:
        resource.close()
    assert server.sandbox.stats.count("/login") == 1
    assert server.sandbox.stats.count("/project/search") == 2


def test_transient_503_is_retried(start_sandbox):
    server = start_sandbox()
    server.sandbox.knobs.update(script=[503], path_contains="/project/search")
    resource = resource_for(server)
    try:
        assert len(resource.search_projects().records) == 5
        assert resource.metrics.snapshot().retries == 1
    finally:
        resource.close()
    assert server.sandbox.stats.count("/project/search") == 2


# -- configuration ---------------------------------------------------------------------------
IBUILDAPP_VARIABLES = (
    "IBUILDAPP_BASE_URL",
    "IBUILDAPP_APP_CODE",
    "IBUILDAPP_TOKEN",
    "IBUILDAPP_EMAIL",
    "IBUILDAPP_PASSWORD",
)


def _set_env(monkeypatch, values: dict[str, str]) -> None:
    for name in IBUILDAPP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def _materialize_from_env(warehouse, instance):
    config = small_config()
    return materialize(
        [time_entries],
        {"ibuildapp": IBuildAppResource.from_env()},
        warehouse,
        first=config.first_date,
        last=config.anchor_date,
        instance=instance,
        raise_on_error=False,
    )


@pytest.mark.parametrize("missing", ["IBUILDAPP_BASE_URL", "IBUILDAPP_APP_CODE"])
def test_missing_required_variable_is_named(start_sandbox, monkeypatch, warehouse, instance, missing):
    server = start_sandbox()
    env = sandbox_env(server.url)
    del env[missing]
    _set_env(monkeypatch, env)
    with pytest.raises(dg.DagsterInvalidConfigError) as failure:
        _materialize_from_env(warehouse, instance)
    assert f'environment variable "{missing}"' in str(failure.value)
    assert server.sandbox.stats.requests == 0


@pytest.mark.parametrize(
    "remove, named",
    [
        (("IBUILDAPP_EMAIL", "IBUILDAPP_PASSWORD"), ("IBUILDAPP_TOKEN", "IBUILDAPP_EMAIL", "IBUILDAPP_PASSWORD")),
        (("IBUILDAPP_PASSWORD",), ("IBUILDAPP_PASSWORD",)),
        (("IBUILDAPP_EMAIL",), ("IBUILDAPP_EMAIL",)),
    ],
    ids=["no-credentials", "no-password", "no-email"],
)
def test_missing_credentials_fail_at_launch_naming_the_variables(
    start_sandbox, monkeypatch, warehouse, instance, remove, named
):
    server = start_sandbox()
    env = sandbox_env(server.url)
    for name in remove:
        del env[name]
    _set_env(monkeypatch, env)
    result = _materialize_from_env(warehouse, instance)
    assert not result.success
    text = "\n".join(
        str(e.event_specific_data.error)
        for e in result.all_events
        if e.event_type_value in ("RESOURCE_INIT_FAILURE", "STEP_FAILURE", "PIPELINE_FAILURE")
        and getattr(e.event_specific_data, "error", None) is not None
    )
    for name in named:
        assert name in text
    assert server.sandbox.stats.requests == 0


def test_env_definitions_use_the_login_flow(start_sandbox, monkeypatch, warehouse, instance):
    server = start_sandbox()
    _set_env(monkeypatch, sandbox_env(server.url))
    result = _materialize_from_env(warehouse, instance)
    assert result.success
    assert server.sandbox.stats.count("/login") == 1


# -- secrets -----------------------------------------------------------------------------------
def test_secrets_never_reach_messages_logs_or_metadata(start_sandbox, warehouse, instance, caplog):
    email = "payroll.robot+7c41@ibuildapp-secret.test"
    password = "Pw-ibuildapp-Zq81-unique"
    server = start_sandbox()
    server.sandbox.extra.update(email=email, password=password)

    # Wrong password: the sandbox echoes the e-mail in its error message, as some services do.
    wrong = materialize(
        list(ASSETS),
        {"ibuildapp": resource_for(server, email=email, password=password + "-wrong")},
        warehouse,
        first=small_config().first_date,
        last=small_config().anchor_date,
        instance=instance,
        raise_on_error=False,
    )
    assert not wrong.success
    failure = _failure_text(wrong)
    assert "login failed" in failure or "Incorrect e-mail or password" in failure
    assert "Incorrect e-mail or password for ***." in failure

    ok = materialize(
        list(ASSETS),
        {"ibuildapp": resource_for(server, email=email, password=password)},
        warehouse,
        first=small_config().first_date,
        last=small_config().anchor_date,
        instance=instance,
    )
    assert ok.success
    issued_tokens = [r.headers["authorization"][7:] for r in server.sandbox.stats.calls("/ts/search")]
    assert issued_tokens
    secrets = {email, password, password + "-wrong", *issued_tokens}

    texts = [caplog.text, failure]
    for run in (wrong, ok):
        for record in instance.all_logs(run.run_id):
            texts.append(repr(record))
        for event in run.all_events:
            texts.append(repr(event))
    blob = "\n".join(texts)
    for secret in secrets:
        assert secret not in blob
