"""Retry rules shared by every vendor: what is retried, and how long to wait."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

# Transport failures worth another attempt: the request may never have reached the vendor, or
# the answer was cut off. Anything else (e.g. an invalid URL) is a bug and fails at once.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)

# Body keys vendors use to say how long to back off (Blikk: ``waitInSeconds``).
WAIT_HINT_KEYS = ("waitInSeconds", "retryAfter", "retry_after", "retryAfterSeconds")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0
    # Upper bound on a server-requested wait (Retry-After or a body hint, on any retried
    # status); a vendor asking for longer ends the retries at once as an outage.
    max_server_wait_seconds: float = 120.0
    retry_statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Capped exponential backoff with full jitter for retry number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP-date; ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def body_wait_hint(response: httpx.Response) -> float | None:
    """A wait hint from a JSON error body, e.g. Blikk's ``{"waitInSeconds": 3}``."""
    if "json" not in response.headers.get("content-type", "") and not response.content.startswith(b"{"):
        return None
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    for key in WAIT_HINT_KEYS:
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return max(0.0, float(value))
        if isinstance(value, str):
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None


def server_wait_hint(response: httpx.Response, now: datetime | None = None) -> float | None:
    header = parse_retry_after(response.headers.get("retry-after"), now)
    body = body_wait_hint(response)
    hints = [h for h in (header, body) if h is not None]
    return max(hints) if hints else None
