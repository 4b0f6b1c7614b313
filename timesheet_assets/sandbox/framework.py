"""Building blocks for strict vendor fakes: one ASGI middleware that records requests,
enforces the vendor's documented limits, injects faults, and serves ``/_sandbox/*`` control
endpoints; vendors supply routes and how their errors look."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from .faults import HTTP_DATE, RESET, TIMEOUT, TRUNCATE, FaultKnobs
from .gate import ArrivalGate
from .mutations import apply as apply_mutation
from .stats import RecordedRequest, SandboxStats
from .tokens import TokenStore

CONTROL_PREFIX = "/_sandbox"
# How far past a closed window's edge a queued request is placed (1 µs: above float noise).
WINDOW_EPSILON = 1e-6

# kind is one of: "rate_limited", "timed_out", "refused", "fault"
ErrorFactory = Callable[[str, int, float | None, str | None], Response]


def default_error(kind: str, status: int, wait: float | None, retry_after: str | None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    body: dict[str, Any] = {"message": f"sandbox {kind}", "status": status}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class RateRule:
    """A documented limit: at most ``max_requests`` in any ``window_seconds``, counted at
    arrival over a sliding window that includes both ends (the documents' "more than four
    requests during a given second" holds for every second, not for clock-aligned ones, and
    two requests exactly a window apart are in one window). ``reject``: over the limit → the
    vendor's 429. ``queue``: held until a slot frees, answered with the vendor's timeout when
    the wait would pass ``queue_timeout_seconds`` (Aimsio)."""

    max_requests: int
    window_seconds: float = 1.0
    mode: str = "reject"
    queue_timeout_seconds: float = 5.0
    max_in_flight: int | None = None
    rate_limited_status: int = 429
    timeout_status: int = 504
    refused_status: int = 429
    key: Callable[[Request], str] | None = None  # e.g. per bearer token (Blikk)
    exempt: Callable[[str], bool] = lambda path: False


def earliest_fit(window: deque, rule: RateRule, arrived: float) -> float | None:
    """``None`` when a request arriving at ``arrived`` is within ``rule`` given the earlier
    admissions in ``window`` (times, oldest first; entries too old to matter are dropped),
    else the earliest time it would fit: just after enough entries age out of the window.

    The window is closed — an entry exactly ``window_seconds`` old still counts — and
    requests a queue placed in the future count too: they will be there.
    """
    while window and window[0] < arrived - rule.window_seconds:
        window.popleft()
    if len(window) < rule.max_requests:
        return None
    return window[-rule.max_requests] + rule.window_seconds + WINDOW_EPSILON


class _Abort(Exception):
    """Raised to drop a connection mid-body."""


@dataclass
class Sandbox:
    """State of one vendor sandbox (shared by its routes and the middleware)."""

    name: str
    knobs: FaultKnobs = field(default_factory=FaultKnobs)
    rate_rule: RateRule | None = None
    error: ErrorFactory = default_error
    stats: SandboxStats = field(default_factory=SandboxStats)
    extra: dict[str, Any] = field(default_factory=dict)
    # Tests only: holds chosen requests at the door until they may arrive together (gate.py).
    gate: ArrivalGate | None = None
    # The rate limit's clock (arrival stamps, queue slots); tests may freeze it to place
    # arrivals in one window whatever the machine's speed.
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.tokens = TokenStore(self.knobs)
        self._windows: dict[str, deque] = defaultdict(deque)
        self._window_lock = asyncio.Lock()

    def retry_after_value(self, wait: float) -> str | None:
        mode = self.knobs.retry_after
        if mode is None:
            return None
        if mode == HTTP_DATE:
            # HTTP-dates have whole seconds: round up, so the date is never earlier than the
            # wait the sandbox means (truncating would let an honest client come back early).
            when = datetime.now(UTC) + timedelta(seconds=max(1.0, wait))
            when = when.replace(microsecond=0) + timedelta(seconds=1 if when.microsecond else 0)
            return format_datetime(when, usegmt=True)
        return mode


def build_app(sandbox: Sandbox, routes: Sequence[BaseRoute]) -> Starlette:
    app = Starlette(routes=list(routes))
    app.state.sandbox = sandbox
    app.add_middleware(SandboxMiddleware, sandbox=sandbox)
    return app


def route_path(scope) -> str:
    root = scope.get("root_path", "")
    path = scope.get("path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class SandboxMiddleware:
    def __init__(self, app, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path.startswith(CONTROL_PREFIX):
            await self._control(scope, receive, send, path)
            return
        sb = self.sandbox
        if sb.gate is not None:
            await sb.gate.enter(Request(scope))
        # Stamped before anything else the sandbox does with the request: the limit is
        # counted on arrival times, as the vendor's front door would.
        arrived = sb.clock()
        stats = sb.stats
        request = Request(scope)
        record = RecordedRequest(
            method=scope["method"],
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            arrived_at=arrived,
        )
        with stats.lock:
            stats.requests += 1
            stats.by_path[path] += 1
            stats.log.append(record)

        async def send_recorded(message):
            if message["type"] == "http.response.start":
                record.status = message["status"]
                with stats.lock:
                    stats.by_status[message["status"]] += 1
            await send(message)

        rule = sb.rate_rule
        if rule is not None and rule.exempt(path):
            rule = None  # this path is not rate limited
        if rule is not None and rule.max_in_flight is not None and stats.in_flight >= rule.max_in_flight:
            with stats.lock:
                stats.refused_in_flight += 1
            await sb.error("refused", rule.refused_status, None, None)(scope, receive, send_recorded)
            return
        with stats.lock:
            stats.in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            if rule is not None:
                response = await self._admit(rule, request, arrived)
                if response is not None:
                    await response(scope, receive, send_recorded)
                    return
            if sb.knobs.latency_seconds:
                await asyncio.sleep(sb.knobs.latency_seconds)
            fault = sb.knobs.draw(path)
            if fault is not None:
                with stats.lock:
                    stats.faults_injected[str(fault)] += 1
            if isinstance(fault, int):
                wait = sb.knobs.wait_hint_seconds if fault == 429 else None
                retry_after = sb.retry_after_value(wait or 1.0) if fault in (429, 503) else None
                await sb.error("fault", fault, wait, retry_after)(scope, receive, send_recorded)
                return
            if fault == TIMEOUT:
                await asyncio.sleep(sb.knobs.timeout_seconds)
            if fault in (RESET, TRUNCATE):
                await self._mangled(scope, receive, send_recorded, fault)
                return
            await self.app(scope, receive, send_recorded)
        finally:
            with stats.lock:
                stats.in_flight -= 1

    async def _admit(self, rule: RateRule, request: Request, arrived: float) -> Response | None:
        """Apply the sliding-window limit to a request that arrived at ``arrived``
        (``Sandbox.clock``); ``None`` admits the request."""
        sb = self.sandbox
        key = rule.key(request) if rule.key else "*"
        async with sb._window_lock:
            now = sb.clock()
            window = sb._windows[key]
            slot = earliest_fit(window, rule, arrived)
            if slot is None:
                window.append(arrived)
                return None
            with sb.stats.lock:
                sb.stats.rate_exceeded += 1
            wait = slot - now
            if rule.mode == "queue" and wait <= rule.queue_timeout_seconds:
                window.append(slot)
                with sb.stats.lock:
                    sb.stats.queued += 1
            elif rule.mode == "queue":
                with sb.stats.lock:
                    sb.stats.timed_out += 1
                return sb.error("timed_out", rule.timeout_status, None, None)
            else:
                retry_after = sb.retry_after_value(wait)
                return sb.error("rate_limited", rule.rate_limited_status, max(wait, 0.0), retry_after)
        await asyncio.sleep(wait)
        return None

    async def _mangled(self, scope, receive, send, fault: str) -> None:
        captured: dict[str, Any] = {"body": b""}

        async def capture(message):
            if message["type"] == "http.response.start":
                captured["start"] = message
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.app(scope, receive, capture)
        start = captured["start"]
        body: bytes = captured["body"]
        cut = body[: max(1, len(body) // 2)]
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        if fault == TRUNCATE:
            headers.append((b"content-length", str(len(cut)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": cut})
            return
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": cut, "more_body": True})
        raise _Abort("sandbox fault: connection reset mid-body")

    async def _control(self, scope, receive, send, path: str) -> None:
        sb = self.sandbox
        request = Request(scope, receive)
        action = path[len(CONTROL_PREFIX) :].strip("/")
        if action == "stats":
            response: Response = JSONResponse(sb.stats.summary())
        elif action == "faults" and request.method == "POST":
            try:
                sb.knobs.update(**json.loads(await request.body() or b"{}"))
                response = JSONResponse({"ok": True})
            except (ValueError, TypeError) as exc:
                response = JSONResponse({"error": str(exc)}, status_code=400)
        elif action == "mutate" and request.method == "POST":
            mutations = sb.extra.get("mutations")
            if mutations is None:
                response = JSONResponse({"error": f"{sb.name} sandbox offers no mutations"}, status_code=404)
            else:
                try:
                    response = JSONResponse(apply_mutation(mutations, json.loads(await request.body() or b"{}")))
                except (ValueError, TypeError, KeyError, StopIteration) as exc:
                    response = JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
        elif action == "reset" and request.method == "POST":
            sb.stats.reset()
            sb.knobs.clear()
            response = JSONResponse({"ok": True})
        else:
            response = JSONResponse({"error": "unknown sandbox control"}, status_code=404)
        await response(scope, receive, send)
