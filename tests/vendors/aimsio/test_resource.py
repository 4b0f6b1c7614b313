"""AimsioResource over HTTP: URLs, auth failures, tolerance, retries and secret hygiene."""

from __future__ import annotations

import logging

import dagster as dg
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from timesheet_assets.http import (
    InsecureURLError,
    VendorAuthError,
    VendorHTTPError,
    VendorOutageError,
    VendorTransportError,
)
from timesheet_assets.ingest import permanent_errors_fail_fast
from timesheet_assets.vendors.aimsio.resource import PORTAL_URL, AimsioResource, basic_token
from timesheet_assets.vendors.aimsio.sandbox import SANDBOX_USERNAME

from .support import (
    API,
    TIMECARDS_KEY,
    config,
    detail_calls,
    list_calls,
    resource_for,
    run_raw,
    start,
    unthrottled,
)

DISTINCTIVE_PASSWORD = "Aimsio-Pw-7f3e9c1d-ZQX"


def test_base_url_defaults_to_the_portal_and_the_api_path_is_added_once():
    resource = AimsioResource(username="u", password="p")
    assert resource.base_url == PORTAL_URL
    assert resource.endpoint_path("CurrentTimeCard") == "/rest/api/standard/v1/CurrentTimeCard"
    with_path = AimsioResource(base_url="https://sandbox.aimsio.com/rest/api/standard/v1/", username="u", password="p")
    assert with_path.endpoint_path("JobOrder", "a/b") == "/JobOrder/a%2Fb"
    assert str(with_path.client.url_for(with_path.endpoint_path("JobOrder"))) == (
        "https://sandbox.aimsio.com/rest/api/standard/v1/JobOrder"
    )
    with_path.close()
    with pytest.raises(InsecureURLError, match="only https"):
        AimsioResource(base_url="http://portal.aimsio.com/", username="u", password="p").client


def test_rejected_credentials_fail_after_one_retry_with_a_clear_message(serve_app):
    server, _ = start(serve_app, config(3))
    resource = resource_for(server, password=DISTINCTIVE_PASSWORD)
    with pytest.raises(VendorAuthError) as raised:
        resource.fetch_timecards()
    text = str(raised.value)
    assert text.startswith("Aimsio GET /rest/api/standard/v1/CurrentTimeCard failed with HTTP 401 after 2 attempts")
    assert "check AIMSIO_USERNAME / AIMSIO_PASSWORD" in text
    assert DISTINCTIVE_PASSWORD not in text
    assert basic_token(SANDBOX_USERNAME, DISTINCTIVE_PASSWORD) not in text
    assert server.sandbox.stats.requests == 2


def test_a_user_without_api_permission_fails_at_once(serve_app):
    server, store = start(serve_app, config(3))
    store.users["no-api@example.test"] = (DISTINCTIVE_PASSWORD, False)
    resource = resource_for(server, username="no-api@example.test", password=DISTINCTIVE_PASSWORD)
    with pytest.raises(VendorAuthError, match="HTTP 403 after 1 attempt: User is not permitted"):
        resource.fetch_timecards()
    assert server.sandbox.stats.requests == 1


def _tolerant_app() -> Starlette:
    """An independent reading of the document: the ``{"value": [...]}`` wrapper of its
    NonRecurringBillableItem example, ``id`` instead of ``guid``, numbers as numbers."""

    async def listing(request):
        return JSONResponse(
            {"value": [{"dtype": "TimeCard", "id": 41, "updatedAt": 1700000000000.0}, {"dtype": "TimeCard", "id": 42}]}
        )

    async def detail(request):
        body = {
            "timeCardGuid": f"card-{request.path_params['ident']}",
            "timeCardRecordDate": 1745231400000,
            "timeCardEmployeeGuid": "e-1",
            "timeCardEmployeeRegularHours": 8,
            "timeCardEmployeeOverTimeHours": 1.5,
            "timeCardIsBillable": True,
            "brandNewField": "kept",
        }
        return JSONResponse(body)

    async def broken(request):
        return JSONResponse({"error": "maintenance"})

    return Starlette(
        routes=[
            Route(f"{API}/CurrentTimeCard", listing),
            Route(f"{API}/CurrentTimeCard/{{ident}}", detail),
            Route(f"{API}/JobOrder", broken),
        ]
    )


def test_list_wrappers_ids_and_numeric_types_are_tolerated(serve_app):
    server = serve_app(_tolerant_app())
    resource = AimsioResource(base_url=server.url, username="u", password="secret-pw")
    fetched = resource.fetch_timecards(known={"41": 1700000000000, "42": None})
    # 41 is stored with the listed updatedAt (a float, read as the same ms); 42 has no
    # updatedAt, so it cannot be skipped.
    assert [s.identifier for s in fetched.changed] == ["42"]
    assert fetched.details[0]["timeCardGuid"] == "card-42"
    assert fetched.listed_versions == {"41": 1700000000000, "42": None}
    with pytest.raises(VendorHTTPError, match=r"HTTP 200 after 1 attempt: expected a JSON array"):
        resource.fetch_job_orders()


def test_limiter_timeouts_and_refusals_are_retried(serve_app):
    server, _ = start(serve_app, config(6))
    server.sandbox.knobs.update(script=[504, 429], path_contains="/CurrentTimeCard/")
    resource = resource_for(server, backoff_cap_seconds=0.2)
    fetched = resource.fetch_timecards()
    assert len(fetched.details) == 6 and all(isinstance(d, dict) for d in fetched.details)
    assert list_calls(server) == 1 and len(detail_calls(server)) == 6 + 2
    assert resource.metrics.snapshot().retries == 2


def test_the_first_failed_detail_stops_the_remaining_calls(serve_app):
    server, _ = start(serve_app, config(40))
    server.sandbox.knobs.update(script=[None, None, 400], path_contains="/CurrentTimeCard/")
    resource = resource_for(server)
    with pytest.raises(VendorHTTPError, match="failed with HTTP 400 after 1 attempt"):
        resource.fetch_timecards()
    # Calls already holding an in-flight slot may finish; the rest are never sent.
    assert len(detail_calls(server)) <= 3 + resource.effective_in_flight
    assert resource.client.limiter.in_flight == 0


def test_secrets_never_reach_logs_metadata_or_errors(serve_app, warehouse, instance, caplog):
    caplog.set_level(logging.DEBUG)
    server, store = start(serve_app, config(4))
    store.users["secret-user@example.test"] = (DISTINCTIVE_PASSWORD, True)
    token = basic_token("secret-user@example.test", DISTINCTIVE_PASSWORD)
    good = unthrottled(server, username="secret-user@example.test", password=DISTINCTIVE_PASSWORD)
    server.sandbox.knobs.update(script=[503], path_contains="/CurrentTimeCard/")  # a logged retry
    ok = run_raw(server, warehouse, instance, resource=good)
    assert ok.success
    store.users["secret-user@example.test"] = ("rotated-elsewhere", True)
    failed = run_raw(server, warehouse, instance, resource=good, raise_on_error=False)
    assert not failed.success
    failure = failed.failure_data_for_node("raw__aimsio__timecards")
    assert "HTTP 401" in str(failure.error.message)
    texts = [caplog.text]
    for run in (ok, failed):
        for record in instance.all_logs(run.run_id):
            texts.append(repr(record))
    materialization = instance.get_latest_materialization_event(dg.AssetKey(TIMECARDS_KEY))
    texts.append(repr(materialization))
    joined = "\n".join(texts)
    assert "retrying" in joined  # the retry was logged...
    assert DISTINCTIVE_PASSWORD not in joined  # ...without the secret
    assert token not in joined


def test_only_outages_are_worth_a_step_retry():
    """The assets wrap their calls in the shared ``permanent_errors_fail_fast``: outages reach
    the step retry policy unchanged, permanent errors become a Failure without retries."""

    def outcome(cls, status):
        error = cls("Aimsio", "GET", "/x", status, 6, "m")
        try:
            with permanent_errors_fail_fast():
                raise error
        except dg.Failure as failure:
            return failure
        except VendorHTTPError as passed_through:
            assert passed_through is error
            return None

    assert outcome(VendorAuthError, 401).allow_retries is False
    assert outcome(VendorHTTPError, 404).allow_retries is False
    assert outcome(VendorOutageError, 429) is None
    assert outcome(VendorOutageError, 504) is None
    assert outcome(VendorOutageError, 500) is None  # a vendor that calls 500 transient
    # The status alone does not decide: a 503 the client did not retry (an envelope, a
    # vendor-side rejection) is permanent.
    assert outcome(VendorHTTPError, 503).allow_retries is False
    assert outcome(VendorTransportError, None) is None
    assert "failed with HTTP 401 after 6 attempts: m" in outcome(VendorAuthError, 401).description
