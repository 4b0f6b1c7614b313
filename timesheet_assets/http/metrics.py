"""Per-resource request metrics, reported in materialization metadata."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class MetricsSnapshot:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    reauthentications: int = 0
    seconds_waited_rate_limit: float = 0.0
    seconds_waited_backoff: float = 0.0
    bytes_received: int = 0

    def __sub__(self, other: "MetricsSnapshot") -> "MetricsSnapshot":
        return MetricsSnapshot(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )

    def as_metadata(self) -> dict[str, float | int]:
        """Plain values keyed the way the metadata panel in the UI shows them."""
        data = asdict(self)
        data["seconds_waited_rate_limit"] = round(data["seconds_waited_rate_limit"], 3)
        data["seconds_waited_backoff"] = round(data["seconds_waited_backoff"], 3)
        return data


class RequestMetrics:
    """Thread-safe counters; take a ``snapshot()`` before a step and subtract after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = {f.name: 0 for f in fields(MetricsSnapshot)}

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(**self._values)
