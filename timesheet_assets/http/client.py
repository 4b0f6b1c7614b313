"""The one HTTP client every vendor uses: limiter, retries, re-authentication, metrics.

Vendors configure it (rate, auth hook, how to read their error bodies); they never
re-implement any of it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx
import pydantic_core

from .clock import SYSTEM_CLOCK, Clock
from .errors import (
    AuthExpired,
    InsecureURLError,
    VendorAuthError,
    VendorHTTPError,
    VendorOutageError,
    VendorRejected,
    VendorTransportError,
)
from .limiter import RateLimiter
from .metrics import RequestMetrics
from .retry import RETRYABLE_TRANSPORT_ERRORS, RetryPolicy, server_wait_hint
from .security import SecretRedactor, ensure_safe_url, same_origin

T = TypeVar("T")

LOGGER = logging.getLogger("timesheet_assets.http")


class _DropHttpxRequestLines(logging.Filter):
    """httpx logs every request with its full URL, query string included — where some vendors
    carry credentials (Ajera's API id). Our own per-request line shows the path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("HTTP Request:")


logging.getLogger("httpx").addFilter(_DropHttpxRequestLines())

_ERROR_MESSAGE_KEYS = ("message", "Message", "error_description", "error", "detail", "title")


class AuthHook(Protocol):
    """How a vendor authenticates. ``headers`` may fetch a token lazily (through the same
    client, with ``authenticate=False``); ``refresh`` drops it and gets a new one. A hook may
    also define ``sign_body(json_body) -> json_body``, called before every attempt, for
    vendors that carry the session in the request body."""

    def headers(self) -> Mapping[str, str]: ...

    def refresh(self) -> None: ...


class MalformedBody(ValueError):
    """A 2xx body that could not be decoded (truncated or not JSON)."""


def default_error_message(response: httpx.Response) -> str | None:
    """Best-effort human message from a vendor error body."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip() if response.content else ""
        return text[:300] or None
    if isinstance(body, dict):
        for key in _ERROR_MESSAGE_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        errors = body.get("errors") or body.get("Errors")
        if errors:
            return json.dumps(errors)[:300]
    return json.dumps(body)[:300]


def decode_json(response: httpx.Response) -> Any:
    """The body as Python values. pydantic-core's parser (about a third faster than the
    standard library's on vendor pages) reads it; whatever it refuses goes to ``json.loads``,
    which decides (it also reads UTF-16/32 and BOMs, lone surrogate escapes, and gives the
    error message), so what is accepted and the values read are those of ``json.loads``."""
    content = response.content
    try:
        return pydantic_core.from_json(content)
    except ValueError:
        pass
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"response body is not valid JSON ({exc})") from exc


class VendorClient:
    """A rate-limited, retrying ``httpx.Client`` bound to one vendor's base URL."""

    def __init__(
        self,
        vendor: str,
        base_url: str,
        *,
        limiter: RateLimiter,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = 30.0,
        auth: AuthHook | None = None,
        metrics: RequestMetrics | None = None,
        clock: Clock = SYSTEM_CLOCK,
        redactor: SecretRedactor | None = None,
        error_message: Callable[[httpx.Response], str | None] = default_error_message,
        allowed_token_hosts: tuple[str, ...] = (),
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        verify: str | bool = True,
        seed: int | None = None,
        logger: Any = None,
        between_requests: Callable[[], None] | None = None,
    ) -> None:
        if verify is False:
            raise InsecureURLError("TLS verification cannot be turned off; pass a CA bundle path")
        self.vendor = vendor
        self.base_url = ensure_safe_url(base_url, setting=f"{vendor} base URL")
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.auth = auth
        self.metrics = metrics or RequestMetrics()
        self.clock = clock
        self.redact = redactor or SecretRedactor()
        self.error_message = error_message
        self.allowed_token_hosts = tuple(h.lower() for h in allowed_token_hosts)
        self.log = logger or LOGGER
        # Called before every attempt; raising stops the request before it is sent (a run
        # that ended stops its steps here, see timesheet_assets.runs).
        self.between_requests = between_requests
        self._rng = random.Random(seed)
        in_flight = limiter.max_in_flight or 10
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers=dict(headers or {}),
            follow_redirects=False,
            verify=verify,
            limits=httpx.Limits(max_connections=in_flight + 2, max_keepalive_connections=in_flight),
        )

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace hook, in the sending thread: the moment the request's headers are
        written is when it leaves for the vendor, and the limiter paces the next one from it."""
        if event.endswith("send_request_headers.complete"):
            self.limiter.departed()

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VendorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- URL handling ----------------------------------------------------------------------
    def url_for(self, path_or_url: str) -> httpx.URL:
        if "://" in path_or_url:
            return ensure_safe_url(path_or_url, setting=f"{self.vendor} link")
        base = str(self.base_url)
        if not base.endswith("/") and path_or_url and not path_or_url.startswith(("?", "/")):
            base += "/"
        if path_or_url.startswith("/") and base.endswith("/"):
            path_or_url = path_or_url[1:]
        return httpx.URL(base + path_or_url)

    def may_send_credentials_to(self, url: httpx.URL) -> bool:
        return same_origin(url, self.base_url) or (url.host or "").lower() in self.allowed_token_hosts

    # -- requests ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        parse: Callable[[httpx.Response], T] = lambda r: r,  # type: ignore[assignment,return-value]
    ) -> T:
        """Send one logical request, retrying per the policy; return ``parse(response)``.

        ``parse`` runs inside the retry loop: it may raise ``MalformedBody`` (retried like a
        broken connection), ``AuthExpired`` (re-authenticate once) or ``VendorRejected`` (an
        error envelope under HTTP 200: fails at once, quoting the vendor's message).
        """
        url = self.url_for(path_or_url)
        if authenticate and self.auth is not None and not self.may_send_credentials_to(url):
            raise InsecureURLError(
                f"{self.vendor}: refusing to send credentials to {url.scheme}://{url.host}; "
                "it is not the configured API host"
            )
        path = url.path
        reauthenticated = False
        attempt = 0
        while True:
            attempt += 1
            if self.between_requests is not None:
                self.between_requests()
            request_headers = dict(headers or {})
            attempt_body = json_body
            if authenticate and self.auth is not None:
                request_headers.update(self.auth.headers())
                # Vendors whose session token travels in the body (Ajera) re-sign every attempt,
                # so a retry after re-authentication carries the new token.
                sign_body = getattr(self.auth, "sign_body", None)
                if sign_body is not None and json_body is not None:
                    attempt_body = sign_body(json_body)
            failure: str | None = None
            wait: float | None = None
            response: httpx.Response | None = None
            try:
                with self.limiter.slot() as waited:
                    released = self.clock.monotonic()
                    self.metrics.add_wait("seconds_waited_rate_limit", released - waited, released)
                    started = time.perf_counter()
                    self.metrics.add("requests")
                    response = self._http.request(
                        method,
                        url,
                        params=params,
                        json=attempt_body,
                        data=data,
                        headers=request_headers,
                        extensions={"trace": self._trace},
                    )
                self.metrics.add("bytes_received", len(response.content))
                # Per-request lines go to the module logger only: in the run's event log they
                # would drown the useful messages (retries, re-authentication).
                LOGGER.debug(
                    "%s %s %s -> %s in %.0f ms",
                    self.vendor,
                    method,
                    path,
                    response.status_code,
                    (time.perf_counter() - started) * 1000,
                )
            except RETRYABLE_TRANSPORT_ERRORS as exc:
                self.metrics.add("transport_errors")
                failure = f"{type(exc).__name__}"
            if response is not None:
                status = response.status_code
                if status == 401 and authenticate and self.auth is not None:
                    if reauthenticated:
                        raise self._http_error(VendorAuthError, method, path, response, attempt)
                    self._reauthenticate(method, path)
                    reauthenticated = True
                    continue
                if status in self.retry.retry_statuses:
                    if status == 429:
                        self.metrics.add("rate_limited")
                    else:
                        self.metrics.add("server_errors")
                    wait = server_wait_hint(response, self.clock.now())
                    if wait is not None and wait > self.retry.max_server_wait_seconds:
                        # Coming back sooner than asked only earns more refusals (and, on a
                        # 429, may extend the penalty): a wait this long is an outage, for the
                        # step retry policy or the next scheduled run, whatever the status.
                        raise self._wait_too_long(method, path, response, attempt, wait)
                    if attempt >= self.retry.max_attempts:
                        raise self._http_error(VendorOutageError, method, path, response, attempt)
                    if wait is not None and status == 429:
                        # Everyone on this limiter waits, not just this thread: retrying in
                        # parallel while the vendor is throttling only makes it worse.
                        self.limiter.pause_until(self.clock.monotonic() + wait)
                    failure = f"HTTP {status}"
                elif status >= 300:
                    error_cls = VendorAuthError if status in (401, 403) else VendorHTTPError
                    raise self._http_error(error_cls, method, path, response, attempt)
                else:
                    try:
                        return parse(response)
                    except AuthExpired as exc:
                        if reauthenticated or self.auth is None:
                            detail = str(exc) or "session or token rejected"
                            raise self._http_error(
                                VendorAuthError,
                                method,
                                path,
                                response,
                                attempt,
                                message=f"{detail} (after re-authentication)" if reauthenticated else detail,
                            ) from None
                        self._reauthenticate(method, path)
                        reauthenticated = True
                        continue
                    except MalformedBody as exc:
                        failure = str(exc)
                    except VendorRejected as exc:
                        raise self._http_error(
                            VendorHTTPError, method, path, response, attempt, message=str(exc)
                        ) from None
            # A retryable failure.
            if attempt >= self.retry.max_attempts:
                raise VendorTransportError(
                    self.vendor,
                    method,
                    path,
                    response.status_code if response else None,
                    attempt,
                    self.redact(failure or "request failed"),
                )
            delay = wait if wait is not None else self.retry.backoff(attempt, self._rng)
            self.metrics.add("retries")
            throttled = response is not None and response.status_code == 429
            slept_from = self.clock.monotonic()
            self.metrics.add_wait(
                "seconds_waited_rate_limit" if throttled else "seconds_waited_backoff",
                slept_from,
                slept_from + delay,
            )
            self.log.warning(
                "%s %s %s: %s (attempt %d of %d), retrying in %.2f s",
                self.vendor,
                method,
                path,
                failure,
                attempt,
                self.retry.max_attempts,
                delay,
            )
            self.clock.sleep(delay)

    def request_json(self, method: str, path_or_url: str, **kwargs: Any) -> Any:
        return self.request(method, path_or_url, parse=decode_json, **kwargs)

    def get_json(self, path_or_url: str, **kwargs: Any) -> Any:
        return self.request_json("GET", path_or_url, **kwargs)

    def post_json(self, path_or_url: str, **kwargs: Any) -> Any:
        return self.request_json("POST", path_or_url, **kwargs)

    # -- helpers -------------------------------------------------------------------------
    def _reauthenticate(self, method: str, path: str) -> None:
        assert self.auth is not None
        self.metrics.add("reauthentications")
        self.log.info("%s %s %s: credentials expired, re-authenticating once", self.vendor, method, path)
        self.auth.refresh()

    def _wait_too_long(
        self, method: str, path: str, response: httpx.Response, attempt: int, wait: float
    ) -> VendorOutageError:
        cap = self.retry.max_server_wait_seconds
        try:
            said = self.error_message(response)
        except Exception:  # noqa: BLE001 - a broken error body must not hide the status
            said = None
        message = (
            f"the vendor asked to wait {wait:.0f} s before retrying, longer than the {cap:g} s "
            "this client waits within a run: treated as an outage"
        )
        if said:
            message += f" ({said})"
        return VendorOutageError(
            self.vendor,
            method,
            path,
            response.status_code,
            attempt,
            self.redact(message),
            retry_after_seconds=wait,
        )

    def _http_error(
        self,
        cls: type[VendorHTTPError],
        method: str,
        path: str,
        response: httpx.Response,
        attempt: int,
        message: str | None = None,
    ) -> VendorHTTPError:
        if message is None:
            try:
                message = self.error_message(response)
            except Exception:  # noqa: BLE001 - a broken error body must not hide the status
                message = None
        return cls(
            self.vendor,
            method,
            path,
            response.status_code,
            attempt,
            self.redact(message) if message else None,
        )
