"""A step that fails for good reads, in the run's event log, as the vendor call that broke:
vendor, method, endpoint path, status and attempts lead the message, and the step's request
metrics are on the failure (Blikk's sandbox over HTTP, through Dagster)."""

from datetime import date

import dagster as dg
import pytest

from tests.support.dagster_helpers import materialize
from tests.support.step_retries import use_quick_step_retries
from timesheet_assets.ingest.policies import HTTP_RETRY_POLICY
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.vendors.blikk.resource import BlikkResource
from timesheet_assets.vendors.blikk.sandbox import create_app, sandbox_env
from timesheet_assets.vendors.registry import load_plugin

DAY = date(2025, 3, 31)
REPORTS_PATH = "/v1/Core/TimeReports"


@pytest.fixture
def blikk(serve_app):
    server = serve_app(create_app(SandboxConfig(anchor_date=DAY, days=3, time_records=30)))
    server.sandbox.rate_rule = None  # faults, not load, are under test
    return server


def run_time_reports(server, warehouse, monkeypatch, **resource):
    plugin = load_plugin("blikk")
    assets = [a for a in plugin.definitions().assets if plugin.timesheets[0] in a.keys]
    use_quick_step_retries(monkeypatch, assets)
    blikk = BlikkResource.from_values(
        sandbox_env(server.url), requests_per_second=50.0, backoff_cap_seconds=0.02, **resource
    )
    return materialize(assets, {"blikk": blikk}, warehouse, first=DAY, last=DAY, raise_on_error=False)


def step_failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    return failures[0]


def test_an_outage_outlasting_the_step_retries_leads_with_the_vendor_call(blikk, warehouse, monkeypatch):
    blikk.sandbox.knobs.update(status_rates={503: 1.0}, path_contains=REPORTS_PATH)
    result = run_time_reports(blikk, warehouse, monkeypatch, max_attempts=2)
    assert not result.success
    failure = step_failure(result).step_failure_data
    headline = failure.error.message
    assert "Exceeded max_retries" not in headline
    assert f"Blikk GET {REPORTS_PATH} failed with HTTP 503 after 2 attempts" in headline.splitlines()[0]
    assert "step attempt 2 of 2" in headline
    metadata = {k: getattr(v, "value", v) for k, v in failure.user_failure_data.metadata.items()}
    assert metadata["vendor"] == "Blikk"
    assert metadata["endpoint"] == f"GET {REPORTS_PATH}"
    assert metadata["status"] == 503 and metadata["request_attempts"] == 2
    # The last attempt's requests only (the token is reused): the two tries of the list page.
    assert len(blikk.sandbox.stats.calls(REPORTS_PATH)) == 4
    assert metadata["requests"] == 2
    assert metadata["server_errors"] == 2 and metadata["retries"] == 1
    assert metadata["seconds_waited_backoff"] > 0
    assert len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 1


def test_a_permanent_error_fails_at_once_with_the_call_and_its_requests(blikk, warehouse, monkeypatch):
    env = sandbox_env(blikk.url)
    secret = env["BLIKK_APP_SECRET"]
    monkeypatch.setitem(env, "BLIKK_APP_SECRET", "wrong-" + secret)
    plugin = load_plugin("blikk")
    assets = [a for a in plugin.definitions().assets if plugin.timesheets[0] in a.keys]
    use_quick_step_retries(monkeypatch, assets)
    blikk_resource = BlikkResource.from_values(env, requests_per_second=50.0, backoff_cap_seconds=0.02)
    result = materialize(assets, {"blikk": blikk_resource}, warehouse, first=DAY, last=DAY, raise_on_error=False)
    failure = step_failure(result).step_failure_data
    assert failure.error.message.splitlines()[0].startswith("dagster._core.definitions.events.Failure: Blikk POST")
    assert "failed with HTTP 401" in failure.error.message
    metadata = {k: getattr(v, "value", v) for k, v in failure.user_failure_data.metadata.items()}
    assert metadata["status"] == 401 and metadata["requests"] >= 1
    assert metadata["step_attempt"] == "1 of 2"
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert secret not in str(metadata) and secret not in failure.error.to_string()


def test_the_step_retry_waits_the_docs_state_are_the_policys():
    """docs/operations.md states the waits between step attempts; they are what Dagster's
    exponential backoff computes from the policy: delay x (2^n - 1)."""
    from pathlib import Path

    waits = [HTTP_RETRY_POLICY.calculate_delay(n) for n in range(1, HTTP_RETRY_POLICY.max_retries + 1)]
    assert waits == [30, 90]
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert "30 s, then 90 s" in docs
