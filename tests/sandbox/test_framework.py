"""The sandbox framework over real HTTP: documented limits enforced, faults injected, and the
shared client coping with both."""

import asyncio
import threading
import time
from collections import deque

import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.routing import Route

from timesheet_assets.http import RateLimiter, RetryPolicy, VendorClient, VendorTransportError
from timesheet_assets.sandbox.faults import FaultKnobs
from timesheet_assets.sandbox.framework import RateRule, Sandbox, build_app, earliest_fit
from timesheet_assets.sandbox.stats import busiest_window, tightest_span


async def items(request):
    return JSONResponse({"items": list(range(40))})


async def slow(request):
    await asyncio.sleep(0.3)
    return JSONResponse({"ok": True})


def app_with(rule=None, knobs=None):
    sandbox = Sandbox("toy", rate_rule=rule, knobs=knobs or FaultKnobs())
    return build_app(sandbox, [Route("/items", items), Route("/slow", slow)]), sandbox


def _in_threads(work, count: int) -> None:
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def client_for(url, rate=100.0, in_flight=None, attempts=6):
    return VendorClient(
        "Toy",
        url,
        limiter=RateLimiter(rate, max_in_flight=in_flight),
        retry=RetryPolicy(max_attempts=attempts, backoff_base_seconds=0.05, backoff_cap_seconds=0.2),
    )


def test_reject_rule_answers_429_with_retry_after_when_over_the_window(serve_app):
    app, sandbox = app_with(RateRule(max_requests=4))
    server = serve_app(app)
    with httpx.Client() as raw:
        statuses = [raw.get(f"{server.url}/items").status_code for _ in range(6)]
        limited = raw.get(f"{server.url}/items")
    assert statuses[:4] == [200] * 4 and 429 in statuses[4:]
    assert limited.status_code == 429 and float(limited.headers["retry-after"]) >= 0
    assert sandbox.stats.rate_exceeded >= 2


def test_paced_client_never_trips_the_window(serve_app):
    app, sandbox = app_with(RateRule(max_requests=4))
    server = serve_app(app)
    client = client_for(server.url, rate=3.5)  # margin for scheduling jitter on a busy machine
    for _ in range(10):
        client.get_json("items")
    assert sandbox.stats.violations == 0 and client.metrics.snapshot().rate_limited == 0


def test_fast_client_is_throttled_and_still_gets_every_answer(serve_app):
    app, sandbox = app_with(RateRule(max_requests=4))
    server = serve_app(app)
    client = client_for(server.url, rate=50)
    results = [client.get_json("items") for _ in range(8)]
    assert all(len(r["items"]) == 40 for r in results)
    assert client.metrics.snapshot().rate_limited >= 1


def test_queue_rule_delays_and_times_out_beyond_the_queue_limit(serve_app):
    app, sandbox = app_with(RateRule(max_requests=5, mode="queue", queue_timeout_seconds=1.5))
    server = serve_app(app)
    statuses = []
    lock = threading.Lock()

    def hit():
        with httpx.Client(timeout=10) as raw:
            status = raw.get(f"{server.url}/items").status_code
        with lock:
            statuses.append(status)

    _in_threads(hit, 20)
    assert statuses.count(200) >= 5
    assert 504 in statuses
    assert sandbox.stats.queued >= 1 and sandbox.stats.timed_out >= 1


def test_in_flight_cap_refuses_extra_parallel_calls(serve_app):
    app, sandbox = app_with(RateRule(max_requests=100, max_in_flight=2))
    server = serve_app(app)
    statuses = []

    def hit():
        with httpx.Client(timeout=10) as raw:
            statuses.append(raw.get(f"{server.url}/slow").status_code)

    _in_threads(hit, 5)
    assert statuses.count(200) >= 2 and 429 in statuses
    assert sandbox.stats.refused_in_flight >= 1 and sandbox.stats.peak_in_flight <= 2


@pytest.mark.parametrize("fault", [503, 502, 504, 429, "reset", "truncate"])
def test_each_fault_is_survived_by_the_client(serve_app, fault):
    app, sandbox = app_with(knobs=FaultKnobs(script=[fault, fault]))
    server = serve_app(app)
    client = client_for(server.url)
    assert len(client.get_json("items")["items"]) == 40
    assert sandbox.stats.faults_injected[str(fault)] == 2
    assert client.metrics.snapshot().retries == 2


def test_timeout_fault_is_retried_after_the_read_timeout(serve_app):
    app, sandbox = app_with(knobs=FaultKnobs(script=["timeout"], timeout_seconds=2))
    server = serve_app(app)
    client = VendorClient(
        "Toy",
        server.url,
        limiter=RateLimiter(100),
        timeout=0.3,
        retry=RetryPolicy(backoff_base_seconds=0.05),
    )
    assert len(client.get_json("items")["items"]) == 40
    assert client.metrics.snapshot().transport_errors == 1


def test_persistent_resets_fail_with_a_clear_message(serve_app):
    app, _ = app_with(knobs=FaultKnobs(reset_rate=1.0))
    server = serve_app(app)
    client = client_for(server.url, attempts=3)
    with pytest.raises(VendorTransportError, match=r"Toy GET /items failed with no response after 3 attempts"):
        client.get_json("items")


def test_http_date_retry_after_on_injected_429(serve_app):
    app, _ = app_with(knobs=FaultKnobs(script=[429], retry_after="http-date"))
    server = serve_app(app)
    with httpx.Client() as raw:
        response = raw.get(f"{server.url}/items")
    assert response.status_code == 429 and response.headers["retry-after"].endswith("GMT")


def test_control_endpoints_set_faults_and_report_stats(serve_app):
    app, sandbox = app_with()
    server = serve_app(app)
    with httpx.Client() as raw:
        assert raw.post(f"{server.url}/_sandbox/faults", json={"script": [503]}).status_code == 200
        assert raw.get(f"{server.url}/items").status_code == 503
        assert raw.get(f"{server.url}/items").status_code == 200
        stats = raw.get(f"{server.url}/_sandbox/stats").json()
        assert stats["requests"] == 2 and stats["by_status"] == {"503": 1, "200": 1}
        assert raw.post(f"{server.url}/_sandbox/faults", json={"no_such_knob": 1}).status_code == 400
        raw.post(f"{server.url}/_sandbox/reset")
    assert sandbox.stats.requests == 0


def test_token_store_expires_by_use_and_by_time():
    knobs = FaultKnobs(token_expiry_after_calls=2)
    now = [1000.0]
    sandbox = Sandbox("toy", knobs=knobs)
    sandbox.tokens._clock = lambda: now[0]
    issued = sandbox.tokens.issue("app", lifetime_seconds=60)
    assert sandbox.tokens.validate(issued.token) and sandbox.tokens.validate(issued.token)
    assert sandbox.tokens.validate(issued.token) is None
    knobs.update(token_expiry_after_calls=None)
    other = sandbox.tokens.issue("app", lifetime_seconds=60)
    now[0] += 61
    assert sandbox.tokens.validate(other.token) is None
    assert sandbox.tokens.validate("made-up") is None


def test_window_is_closed_and_slides_with_every_arrival():
    rule = RateRule(max_requests=4, window_seconds=1.0)
    window: deque = deque()
    for t in (0.0, 0.25, 0.5, 0.75):
        assert earliest_fit(window, rule, t) is None
        window.append(t)
    # Exactly one window after the first: still inside "a given second" with it.
    slot = earliest_fit(window, rule, 1.0)
    assert slot is not None and 1.0 < slot < 1.0 + 1e-3
    assert earliest_fit(window, rule, 1.0 + 2e-6) is None
    window.append(1.0 + 2e-6)
    # Not aligned to clock seconds: 0.25 .. 1.25 holds 0.25, 0.5, 0.75, 1.000002 already.
    assert earliest_fit(window, rule, 1.2) is not None


def test_busiest_window_and_tightest_span_count_closed_windows():
    arrivals = [0.0, 0.26, 0.52, 0.78, 1.0, 1.5]
    assert busiest_window(arrivals, 1.0) == 5  # 0.0 .. 1.0 with both ends
    assert busiest_window([0.0, 0.26, 0.52, 0.78, 1.01], 1.0) == 4
    assert tightest_span(arrivals, 5) == pytest.approx(1.0)
    assert tightest_span(arrivals, 7) is None
    assert busiest_window([], 1.0) == 0


def test_requests_are_logged_with_their_arrival_times(serve_app):
    app, sandbox = app_with(RateRule(max_requests=4))
    server = serve_app(app)
    client = client_for(server.url, rate=3.5)
    for _ in range(6):
        client.get_json("items")
    arrivals = sandbox.stats.arrivals("/items")
    assert len(arrivals) == 6 and arrivals == sorted(arrivals)
    assert busiest_window(arrivals, 1.0) <= 4 and sandbox.stats.violations == 0


class _HeldBeforeSending(httpx.HTTPTransport):
    """The real transport, with the third request's thread held up after the limiter released
    it and before it writes (as the OS or the GIL may do to a thread)."""

    def __init__(self, hold_seconds: float) -> None:
        super().__init__()
        self.hold_seconds = hold_seconds
        self.calls = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.calls += 1
            held = self.calls == 3
        if held:
            time.sleep(self.hold_seconds)
        return super().handle_request(request)


def test_a_request_held_up_before_it_is_sent_does_not_crowd_the_vendors_window(serve_app):
    # Four per second, sliding; paced at 3.5/s from four threads. Were the requests released
    # after the held one paced from its release, it would arrive 0.4 s late among them: five
    # arrivals within 0.86 s.
    app, sandbox = app_with(RateRule(max_requests=4))
    server = serve_app(app)
    transport = _HeldBeforeSending(hold_seconds=0.4)
    client = VendorClient(
        "Toy",
        server.url,
        limiter=RateLimiter(3.5, max_in_flight=4),
        retry=RetryPolicy(max_attempts=1),
        transport=transport,
    )
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                client.get_json("items")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    _in_threads(work, 4)
    assert not errors
    assert transport.calls == 12
    assert client.limiter.late_departures >= 1  # the hold really happened after the release
    assert sandbox.stats.violations == 0 and sandbox.stats.rate_exceeded == 0
    assert client.metrics.snapshot().rate_limited == 0
