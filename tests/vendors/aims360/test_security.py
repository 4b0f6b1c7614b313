"""Where the bearer token goes (and where it never goes), publishlink scopes as the sandbox
enforces them, token refresh, and secrets kept out of every message."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize
from timesheet_assets.http import VendorAuthError
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.aims360 import sandbox as aims_sandbox
from timesheet_assets.vendors.aims360.resource import (
    AccessTokenRejected,
    Aims360ConfigError,
    Aims360Resource,
    PublishlinkHostRefused,
    ViewSpec,
    forget_cached_tokens,
)
from timesheet_assets.vendors.aims360.sandbox import JobLifecycle

from .conftest import OP, calls, make_resource

ORDERS = ViewSpec("Orders", "Open Orders")


def completed_job(resource: Aims360Resource, **create):
    job = resource.create_export_job(ORDERS, **create)
    return resource.wait_for_job(job.job_id, timeout_seconds=10, first_poll_seconds=0.01)


def publishlink_requests(server, host: str | None = None):
    return [
        r
        for r in server.sandbox.stats.calls()
        if "/publishlink/" in r.path and (host is None or r.headers.get("host", "").startswith(host))
    ]


def test_public_scope_sensor_flow_sends_no_authorization_to_the_publishlink(aims, harness, instance, warehouse):
    aims.state.upper_case_scopes = True  # the API's spelling varies: "PUBLIC"
    public = make_resource(aims.url, publishlink_scope="Public")
    h = harness(res=public)
    request = next(r for _ in range(6) for r in h.tick().run_requests)
    assert request.run_config["ops"][OP]["config"]["scope"] == "PUBLIC"

    result = materialize(h.assets(), {"aims360": public}, warehouse, instance=instance, run_config=request.run_config)

    assert materialization_metadata(result, ["raw", "aims360", "orders_open_orders"])["rows"] > 0
    (download,) = publishlink_requests(aims)
    assert "authorization" not in download.headers
    others = [r for r in aims.sandbox.stats.calls() if "/publishlink/" not in r.path and "/Token" not in r.path]
    assert others and all(r.headers["authorization"].startswith("Bearer ") for r in others)


@pytest.mark.parametrize("scope", ["Private", "PeopleInOrganization"])
def test_token_scopes_send_the_bearer_token_to_the_api_host(aims, scope):
    aims.state.upper_case_scopes = True
    res = make_resource(aims.url, publishlink_scope=scope)
    job = completed_job(res)
    assert job.publish_link_access_scope == scope.upper()
    export = res.download_publishlink(job.publish_link, job.publish_link_access_scope, job_id=job.job_id)
    assert len(export.records) > 0
    (download,) = publishlink_requests(aims)
    assert download.headers["authorization"].startswith("Bearer ")


@pytest.fixture
def foreign(aims):
    """The same sandbox also listening on another loopback address: a host that is not the
    configured API host. Publishlinks are issued on it."""
    server = SandboxServer(aims.app, host="127.0.0.2").start()
    aims.state.link_base_url = server.url
    yield server
    server.stop()


def test_private_publishlink_on_a_foreign_host_is_refused_before_any_request(aims, foreign):
    res = make_resource(aims.url)
    job = completed_job(res)
    assert job.publish_link.startswith("http://127.0.0.2:")
    with pytest.raises(PublishlinkHostRefused) as error:
        res.download_publishlink(job.publish_link, "Private", job_id=job.job_id)
    assert str(error.value) == (
        f"AIMS360 publishlink of job {job.job_id} is on host 127.0.0.2, which is not the configured "
        "API host 127.0.0.1; its scope (Private) needs the bearer token, which is only sent to the "
        "API host. Add the host to AIMS360_PUBLISHLINK_HOSTS if it is a genuine AIMS360 host."
    )
    assert publishlink_requests(aims) == []
    assert [r for r in aims.sandbox.stats.calls() if r.headers.get("host", "").startswith("127.0.0.2")] == []


def test_sensor_run_with_a_private_foreign_publishlink_fails_without_sending_the_token(
    aims, foreign, harness, instance, warehouse
):
    h = harness()
    request = next(r for _ in range(6) for r in h.tick().run_requests)
    link = request.run_config["ops"][OP]["config"]["publish_link"]
    assert link.startswith("http://127.0.0.2:")

    result = materialize(
        h.assets(),
        {"aims360": make_resource(aims.url)},
        warehouse,
        instance=instance,
        run_config=request.run_config,
        raise_on_error=False,
    )

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "is on host 127.0.0.2, which is not the configured API host" in failure.step_failure_data.error.message
    assert failure.step_failure_data.user_failure_data.description.startswith("AIMS360 publishlink of job")
    assert [r for r in aims.sandbox.stats.calls() if r.headers.get("host", "").startswith("127.0.0.2")] == []


def test_public_publishlink_on_a_foreign_host_is_fetched_without_the_token(aims, foreign):
    res = make_resource(aims.url, publishlink_scope="Public")
    job = completed_job(res)
    export = res.download_publishlink(job.publish_link, job.publish_link_access_scope, job_id=job.job_id)
    assert len(export.records) == len(aims.state.view_rows("Orders/Open Orders"))
    on_foreign = [r for r in aims.sandbox.stats.calls() if r.headers.get("host", "").startswith("127.0.0.2")]
    assert len(on_foreign) == 1
    assert "authorization" not in on_foreign[0].headers


def test_an_explicitly_allowed_publishlink_host_receives_the_token(aims, foreign):
    res = make_resource(aims.url, publishlink_hosts=["127.0.0.2"])
    job = completed_job(res)
    export = res.download_publishlink(job.publish_link, "Private", job_id=job.job_id)
    assert len(export.records) > 0
    (download,) = publishlink_requests(aims, "127.0.0.2")
    assert download.headers["authorization"].startswith("Bearer ")


def test_sandbox_enforces_the_three_scopes(aims):
    creator = make_resource(aims.url)
    colleague = make_resource(aims.url, username=aims_sandbox.COLLEAGUE, password=aims_sandbox.COLLEAGUE_PASSWORD)
    outsider = make_resource(
        aims.url,
        client_id=aims_sandbox.OTHER_CLIENT_ID,
        client_secret=aims_sandbox.OTHER_CLIENT_SECRET,
        username=aims_sandbox.OUTSIDER,
        password=aims_sandbox.OUTSIDER_PASSWORD,
    )
    outcomes = {}
    for scope in ("Private", "PeopleInOrganization", "Public"):
        job = completed_job(creator, scope=scope)
        for name, res in (("creator", creator), ("colleague", colleague), ("outsider", outsider)):
            try:
                res.download_publishlink(job.publish_link, scope, job_id=job.job_id)
                outcomes[scope, name] = "ok"
            except VendorAuthError as exc:
                assert exc.status == 403
                outcomes[scope, name] = exc.vendor_message
        anonymous = httpx.get(job.publish_link)
        outcomes[scope, "no token"] = "ok" if anonymous.status_code == 200 else anonymous.json()["message"]
    assert outcomes == {
        ("Private", "creator"): "ok",
        ("Private", "colleague"): "Access Denied",
        ("Private", "outsider"): "Access Denied",
        ("Private", "no token"): "Access Denied",
        ("PeopleInOrganization", "creator"): "ok",
        ("PeopleInOrganization", "colleague"): "ok",
        ("PeopleInOrganization", "outsider"): "Access Denied",
        ("PeopleInOrganization", "no token"): "Access Denied",
        ("Public", "creator"): "ok",
        ("Public", "colleague"): "ok",
        ("Public", "outsider"): "ok",
        ("Public", "no token"): "ok",
    }


def test_expired_token_is_refreshed_once(aims, resource):
    resource.create_export_job(ORDERS)
    aims.sandbox.tokens.expire_all()
    before = resource.metrics.snapshot()
    resource.create_export_job(ORDERS)
    assert (resource.metrics.snapshot() - before).reauthentications == 1
    assert calls(aims, "/authentication/v1/authentication/Token", "POST") == 2
    statuses = [r.status for r in aims.sandbox.stats.calls("/exportdata")]
    assert statuses == [200, 401, 200]


def test_ready_access_token_is_used_without_the_token_endpoint(aims):
    token = aims.sandbox.tokens.issue(aims_sandbox.USERNAME).token
    res = Aims360Resource(base_url=aims.url, access_token=f"Bearer {token}", requests_per_second=100)
    job = completed_job(res)
    assert res.download_publishlink(job.publish_link, "Private", job_id=job.job_id).records
    assert calls(aims, "/Token") == 0

    aims.sandbox.tokens.expire_all()
    with pytest.raises(AccessTokenRejected) as error:
        res.create_export_job(ORDERS)
    assert str(error.value) == (
        "AIMS360 rejected AIMS360_ACCESS_TOKEN (HTTP 401); generate a new access token in the ERP "
        "or configure AIMS360_CLIENT_ID, AIMS360_CLIENT_SECRET, AIMS360_USERNAME, AIMS360_PASSWORD"
    )
    assert calls(aims, "/Token") == 0


def test_missing_or_partial_credentials_name_the_variables():
    with pytest.raises(Aims360ConfigError) as error:
        Aims360Resource(base_url="http://127.0.0.1:9").client
    assert str(error.value) == (
        "AIMS360 credentials are not configured: set AIMS360_ACCESS_TOKEN, or all of "
        "AIMS360_CLIENT_ID, AIMS360_CLIENT_SECRET, AIMS360_USERNAME, AIMS360_PASSWORD"
    )
    with pytest.raises(Aims360ConfigError, match="AIMS360_CLIENT_SECRET, AIMS360_PASSWORD not set"):
        Aims360Resource(base_url="http://127.0.0.1:9", client_id="abcd", username="u").client


def test_secrets_and_tokens_never_reach_logs_metadata_or_errors(aims, harness, instance, warehouse, caplog):
    caplog.set_level(logging.DEBUG)
    forget_cached_tokens()
    aims.state.queue_lifecycles(JobLifecycle(queued_polls=0, progress=(), outcome="Failed"))
    res = make_resource(aims.url)
    h = harness(res=res)
    texts: list[str] = []
    request = None
    for _ in range(8):
        data = h.tick()
        texts += [data.skip_message or "", data.cursor or ""]
        if data.run_requests:
            request = data.run_requests[0]
            break
    assert request is not None
    result = materialize(h.assets(), {"aims360": res}, warehouse, instance=instance, run_config=request.run_config)
    texts += [str(v) for v in materialization_metadata(result, ["raw", "aims360", "orders_open_orders"]).values()]
    texts += [e.message or "" for e in instance.all_logs(result.run_id)]

    wrong = make_resource(aims.url, password="wrong-password-Zq8v1x", client_secret="wrong-secret-Hk2m9p")
    with pytest.raises(Exception) as error:
        wrong.create_export_job(ORDERS)
    texts.append(str(error.value))
    assert "The user name or password is incorrect" in str(error.value) or "client credentials" in str(error.value)
    texts += [r.getMessage() for r in caplog.records]

    issued = list(aims.sandbox.tokens._tokens)
    assert issued
    secrets = [
        aims_sandbox.CLIENT_SECRET,
        aims_sandbox.PASSWORD,
        "wrong-password-Zq8v1x",
        "wrong-secret-Hk2m9p",
        *issued,
    ]
    leaks = [(s, t[:120]) for t in texts for s in secrets if s in t]
    assert leaks == []
