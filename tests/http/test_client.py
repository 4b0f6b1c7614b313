"""Retry, re-auth and error rules of the shared client, on an in-process transport and a fake
clock (so every wait is observed exactly and nothing really sleeps)."""

import json
import logging
from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from timesheet_assets.http import (
    AuthExpired,
    FakeClock,
    InsecureURLError,
    RateLimiter,
    RetryPolicy,
    SecretRedactor,
    VendorAuthError,
    VendorClient,
    VendorHTTPError,
    VendorOutageError,
    VendorRejected,
    VendorTransportError,
    decode_json,
    parse_retry_after,
)

SECRET = "s3cr3t-Zebra-7781"


class Script:
    """Answers requests from a list of responses/exceptions, recording what was sent."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return step(request)
        return step


def ok(body=None):
    return httpx.Response(200, json=body if body is not None else {"ok": True})


class TokenAuth:
    def __init__(self):
        self.token = "token-1"
        self.refreshes = 0

    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def refresh(self):
        self.refreshes += 1
        self.token = f"token-{self.refreshes + 1}"


def make_client(script, *, auth=None, max_attempts=4, base="https://api.example.com/v1/", clock=None):
    clock = clock or FakeClock()
    client = VendorClient(
        "Acme",
        base,
        limiter=RateLimiter(1000, burst=1000, clock=clock),
        retry=RetryPolicy(max_attempts=max_attempts, backoff_base_seconds=0.5, backoff_cap_seconds=4),
        transport=httpx.MockTransport(script),
        clock=clock,
        auth=auth,
        redactor=SecretRedactor([SECRET]),
        seed=1,
    )
    return client, clock


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_are_retried_then_succeed(status):
    script = Script(httpx.Response(status), httpx.Response(status), ok({"n": 1}))
    client, clock = make_client(script)
    assert client.get_json("items") == {"n": 1}
    assert len(script.requests) == 3
    snap = client.metrics.snapshot()
    assert snap.retries == 2 and snap.requests == 3
    assert (snap.rate_limited == 2) == (status == 429)
    # Exponential backoff with jitter: attempt 1 waits in [0.25, 0.5], attempt 2 in [0.5, 1].
    backoffs = [s for s in clock.sleeps if s > 0]
    assert 0.25 <= backoffs[0] <= 0.5 and 0.5 <= backoffs[1] <= 1.0


def test_backoff_is_capped():
    policy = RetryPolicy(backoff_base_seconds=1, backoff_cap_seconds=5)
    import random

    rng = random.Random(0)
    assert all(policy.backoff(n, rng) <= 5 for n in range(1, 30))


def test_retry_after_seconds_is_honoured_exactly():
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}), ok())
    client, clock = make_client(script)
    client.get_json("items")
    assert 7 in clock.sleeps


def test_retry_after_http_date_is_honoured():
    clock = FakeClock()
    when = clock.now() + timedelta(seconds=12)
    script = Script(httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)}), ok())
    client, _ = make_client(script, clock=clock)
    client.get_json("items")
    assert any(abs(s - 12) < 1.01 for s in clock.sleeps)


def test_body_wait_hint_is_honoured():
    script = Script(httpx.Response(429, json={"message": "slow down", "waitInSeconds": 3}), ok())
    client, clock = make_client(script)
    client.get_json("items")
    assert 3 in clock.sleeps


def test_429_pauses_the_whole_limiter():
    script = Script(httpx.Response(429, headers={"Retry-After": "5"}), ok())
    client, clock = make_client(script)
    client.get_json("items")
    assert client.limiter._paused_until >= 5


def test_parse_retry_after_forms():
    clock = FakeClock()
    assert parse_retry_after("3") == 3
    assert parse_retry_after("  ") is None
    assert parse_retry_after("garbage") is None
    date = format_datetime(clock.now() + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(date, clock.now()) == pytest.approx(30, abs=1)
    past = format_datetime(clock.now() - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, clock.now()) == 0


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_other_4xx_fail_at_once_with_vendor_message(status):
    script = Script(httpx.Response(status, json={"message": "Project 12 is not visible"}))
    client, _ = make_client(script)
    with pytest.raises(VendorHTTPError) as info:
        client.get_json("projects/12", params={"apikey": SECRET})
    assert len(script.requests) == 1
    text = str(info.value)
    assert f"HTTP {status}" in text and "Acme GET /v1/projects/12" in text
    assert "Project 12 is not visible" in text and "after 1 attempt" in text
    assert SECRET not in text


def test_500_is_not_retried_by_default():
    script = Script(httpx.Response(500, json={"message": "boom", "requestId": "r-1"}))
    client, _ = make_client(script)
    with pytest.raises(VendorHTTPError, match="HTTP 500 after 1 attempt: boom"):
        client.get_json("x")


def test_gives_up_after_max_attempts_naming_path_and_status_without_secrets():
    script = Script(httpx.Response(503, text=f"upstream down for {SECRET}"))
    client, _ = make_client(script, auth=TokenAuth(), max_attempts=4)
    with pytest.raises(VendorHTTPError) as info:
        client.get_json("reports/daily", params={"token": SECRET})
    assert len(script.requests) == 4
    text = str(info.value)
    assert "Acme GET /v1/reports/daily failed with HTTP 503 after 4 attempts" in text
    assert SECRET not in text and "token-1" not in text


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("read timed out"), httpx.ConnectError("refused"), httpx.RemoteProtocolError("peer closed")],
)
def test_transport_errors_are_retried(error):
    script = Script(error, ok({"fine": 1}))
    client, _ = make_client(script)
    assert client.get_json("x") == {"fine": 1}
    assert client.metrics.snapshot().transport_errors == 1


def test_transport_errors_give_up_clearly():
    script = Script(httpx.ReadTimeout("read timed out"))
    client, _ = make_client(script, max_attempts=3)
    with pytest.raises(
        VendorTransportError, match=r"Acme GET /v1/x failed with no response after 3 attempts: ReadTimeout"
    ):
        client.get_json("x")


def test_truncated_json_is_retried():
    script = Script(httpx.Response(200, content=b'{"items": [1, 2'), ok({"items": [1, 2, 3]}))
    client, _ = make_client(script)
    assert client.get_json("x") == {"items": [1, 2, 3]}


def test_401_reauthenticates_once_and_succeeds():
    auth = TokenAuth()
    script = Script(httpx.Response(401), ok({"me": 1}))
    client, _ = make_client(script, auth=auth)
    assert client.get_json("me") == {"me": 1}
    assert auth.refreshes == 1
    assert [r.headers["authorization"] for r in script.requests] == ["Bearer token-1", "Bearer token-2"]
    assert client.metrics.snapshot().reauthentications == 1


def test_401_twice_fails_as_auth_error_after_one_reauth():
    auth = TokenAuth()
    script = Script(httpx.Response(401, json={"message": "Invalid credentials"}))
    client, _ = make_client(script, auth=auth)
    with pytest.raises(VendorAuthError, match="HTTP 401 after 2 attempts: Invalid credentials"):
        client.get_json("me")
    assert auth.refreshes == 1 and len(script.requests) == 2


def test_auth_expired_in_body_reauthenticates_once():
    auth = TokenAuth()

    def parse(response):
        body = decode_json(response)
        if body.get("error") == "session":
            raise AuthExpired()
        return body

    script = Script(ok({"error": "session"}), ok({"rows": 1}))
    client, _ = make_client(script, auth=auth)
    assert client.request("POST", "rpc", parse=parse) == {"rows": 1}
    assert auth.refreshes == 1


def test_error_envelope_under_200_fails_with_vendor_message():
    def parse(response):
        body = decode_json(response)
        if body.get("Errors"):
            raise VendorRejected(body["Errors"][0]["ErrorMessage"])
        return body

    script = Script(ok({"Errors": [{"ErrorMessage": "Invalid argument FilterByStatus"}]}))
    client, _ = make_client(script)
    with pytest.raises(
        VendorHTTPError, match="Acme POST /v1/rpc failed with HTTP 200 after 1 attempt: Invalid argument FilterByStatus"
    ):
        client.request("POST", "rpc", parse=parse)
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "url", ["http://api.example.com/", "http://10.0.0.5/", "ftp://example.com/", "api.example.com"]
)
def test_plain_http_to_remote_hosts_is_refused(url):
    with pytest.raises(InsecureURLError, match="refused"):
        make_client(Script(ok()), base=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8900/", "http://localhost:1/", "http://[::1]:80/", "https://api.example.com/"]
)
def test_https_and_loopback_http_are_allowed(url):
    client, _ = make_client(Script(ok()), base=url)
    assert client.base_url.host


def test_tls_verification_cannot_be_switched_off():
    with pytest.raises(InsecureURLError, match="TLS verification"):
        VendorClient("Acme", "https://api.example.com/", limiter=RateLimiter(1), verify=False)


def test_credentials_never_go_to_another_host():
    auth = TokenAuth()
    script = Script(ok())
    client, _ = make_client(script, auth=auth)
    with pytest.raises(InsecureURLError, match="refusing to send credentials"):
        client.get_json("https://files.elsewhere.example/report.json")
    client.get_json("https://files.elsewhere.example/report.json", authenticate=False)
    assert "authorization" not in script.requests[-1].headers


def test_redirects_are_not_followed():
    script = Script(httpx.Response(302, headers={"Location": "https://evil.example/steal"}))
    client, _ = make_client(script, auth=TokenAuth())
    with pytest.raises(VendorHTTPError, match="HTTP 302"):
        client.get_json("x")
    assert len(script.requests) == 1


def test_no_secret_in_any_log_line(caplog):
    auth = TokenAuth()
    auth.token = SECRET
    script = Script(
        httpx.Response(503),
        httpx.Response(401),
        ok(),
        httpx.Response(400, json={"message": f"bad key {SECRET}"}),
    )
    client, _ = make_client(script, auth=auth)
    caplog.set_level(logging.DEBUG)
    client.get_json("a", params={"key": SECRET})
    auth.token = SECRET
    with pytest.raises(VendorHTTPError) as info:
        client.get_json("b", params={"key": SECRET})
    assert caplog.records, "the client should log its retries"
    for record in caplog.records:
        assert SECRET not in record.getMessage()
    assert SECRET not in str(info.value)
    assert "***" in str(info.value)


def test_body_signing_hook_resigns_every_attempt_after_reauth():
    class BodySession(TokenAuth):
        def headers(self):
            return {}

        def sign_body(self, body):
            return {**body, "SessionToken": self.token}

    def parse(response):
        body = decode_json(response)
        if body.get("expired"):
            raise AuthExpired("session expired")
        return body

    auth = BodySession()
    script = Script(ok({"expired": True}), ok({"rows": 3}))
    client, _ = make_client(script, auth=auth)
    assert client.request("POST", "rpc", json_body={"Method": "List"}, parse=parse) == {"rows": 3}
    sent = [json.loads(r.content) for r in script.requests]
    assert [b["SessionToken"] for b in sent] == ["token-1", "token-2"]
    assert all(b["Method"] == "List" for b in sent)


def test_waits_asked_for_by_429_count_as_rate_limit_waits():
    script = Script(httpx.Response(429, headers={"Retry-After": "4"}), httpx.Response(503), ok())
    client, _ = make_client(script)
    client.get_json("x")
    snap = client.metrics.snapshot()
    assert snap.seconds_waited_rate_limit >= 4
    assert 0 < snap.seconds_waited_backoff < 4


# -- server-requested waits: honoured up to the cap, an outage beyond it -------------------
CAP = 120.0


def capped_client(script, *, cap=CAP, max_attempts=4):
    clock = FakeClock()
    client = VendorClient(
        "Acme",
        "https://api.example.com/v1/",
        limiter=RateLimiter(1000, burst=1000, clock=clock),
        retry=RetryPolicy(
            max_attempts=max_attempts, backoff_base_seconds=0.5, backoff_cap_seconds=4, max_server_wait_seconds=cap
        ),
        transport=httpx.MockTransport(script),
        clock=clock,
        redactor=SecretRedactor([SECRET]),
        seed=1,
    )
    return client, clock


def waited(clock) -> list[float]:
    return [s for s in clock.sleeps if s > 0]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_retry_after_on_5xx_is_waited_exactly_when_within_the_cap(status):
    script = Script(httpx.Response(status, headers={"Retry-After": "90"}), ok({"n": 1}))
    client, clock = capped_client(script)
    assert client.get_json("x") == {"n": 1}
    assert waited(clock) == [90]
    assert client.metrics.snapshot().seconds_waited_backoff == 90


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_wait_exactly_at_the_cap_is_still_waited_out(status):
    script = Script(httpx.Response(status, headers={"Retry-After": str(int(CAP))}), ok())
    client, clock = capped_client(script)
    client.get_json("x")
    assert waited(clock) == [CAP]
    assert len(script.requests) == 2


def _hint(form: str, seconds: float, clock: FakeClock) -> dict:
    if form == "seconds":
        return {"headers": {"Retry-After": str(int(seconds))}}
    if form == "http_date":
        return {"headers": {"Retry-After": format_datetime(clock.now() + timedelta(seconds=seconds), usegmt=True)}}
    return {"json": {"message": "slow down", "waitInSeconds": seconds}}


@pytest.mark.parametrize("form", ["seconds", "http_date", "body_hint"])
@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_wait_beyond_the_cap_is_an_outage_at_once_without_sleeping_or_retrying(status, form):
    """The cap bounds every server-requested wait; asked for longer, the client neither
    sleeps that long inside the step nor comes back early into more refusals: it raises the
    outage the step retry policy handles, after one request."""
    probe = FakeClock()
    script = Script(httpx.Response(status, **_hint(form, 3600, probe)), ok())
    client, clock = capped_client(script)

    with pytest.raises(VendorOutageError) as info:
        client.get_json("reports/daily", params={"key": SECRET})

    assert len(script.requests) == 1
    assert waited(clock) == []
    assert client.limiter._paused_until <= clock.monotonic()  # nobody else was held either
    error = info.value
    assert error.status == status and error.attempts == 1
    assert error.retry_after_seconds == pytest.approx(3600, abs=1)
    text = str(error)
    assert f"Acme GET /v1/reports/daily failed with HTTP {status} after 1 attempt" in text
    assert "asked to wait 3600 s before retrying, longer than the 120 s" in text
    assert "treated as an outage" in text and SECRET not in text
    snap = client.metrics.snapshot()
    assert snap.retries == 0 and snap.seconds_waited_rate_limit == 0 and snap.seconds_waited_backoff == 0


def test_a_429_just_over_a_custom_cap_is_an_outage_and_just_under_is_waited():
    over = Script(httpx.Response(429, headers={"Retry-After": "11"}), ok())
    client, clock = capped_client(over, cap=10)
    with pytest.raises(VendorOutageError, match="asked to wait 11 s before retrying, longer than the 10 s"):
        client.get_json("x")
    assert waited(clock) == [] and len(over.requests) == 1

    under = Script(httpx.Response(429, headers={"Retry-After": "10"}), ok({"n": 2}))
    client, clock = capped_client(under, cap=10)
    assert client.get_json("x") == {"n": 2}
    assert waited(clock) == [10]
    assert client.metrics.snapshot().seconds_waited_rate_limit == 10


def test_an_outage_from_a_long_wait_keeps_the_vendors_own_message():
    script = Script(httpx.Response(503, headers={"Retry-After": "7200"}, json={"message": "Down for maintenance"}))
    client, _ = capped_client(script)
    with pytest.raises(VendorOutageError, match=r"treated as an outage \(Down for maintenance\)"):
        client.get_json("x")
