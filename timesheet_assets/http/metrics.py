"""Per-resource request metrics, reported in materialization metadata."""

from __future__ import annotations

import bisect
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

# Waits are wall time: the seconds during which at least one request was held. Four threads
# held together for 8 s waited 8 s, not 32 — so the number compares with the step's duration.
WAIT_FIELDS = ("seconds_waited_rate_limit", "seconds_waited_backoff")


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

    def __sub__(self, other: MetricsSnapshot) -> MetricsSnapshot:
        return MetricsSnapshot(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def __add__(self, other: MetricsSnapshot) -> MetricsSnapshot:
        return MetricsSnapshot(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_metadata(self) -> dict[str, float | int]:
        """Plain values keyed the way the metadata panel in the UI shows them."""
        data = asdict(self)
        for name in WAIT_FIELDS:
            data[name] = round(data[name], 3)
        return data


class _WallTime:
    """Length of the union of time intervals: overlapping waits of parallel threads count once."""

    def __init__(self) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []
        self.total = 0.0

    def add(self, start: float, end: float) -> None:
        if end <= start:
            return
        # Merge with every stored interval that overlaps or touches [start, end].
        first = bisect.bisect_left(self._ends, start)
        last = bisect.bisect_right(self._starts, end)
        if first < last:
            start = min(start, self._starts[first])
            end = max(end, self._ends[last - 1])
            self.total -= sum(e - s for s, e in zip(self._starts[first:last], self._ends[first:last]))
            del self._starts[first:last]
            del self._ends[first:last]
        self._starts.insert(first, start)
        self._ends.insert(first, end)
        self.total += end - start


class RequestMetrics:
    """Thread-safe counters; take a ``snapshot()`` before a step and subtract after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {f.name: 0 for f in fields(MetricsSnapshot) if f.name not in WAIT_FIELDS}
        self._waits = {name: _WallTime() for name in WAIT_FIELDS}

    def add(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def add_wait(self, name: str, start: float, end: float) -> None:
        """A request was held from ``start`` to ``end`` (monotonic seconds of the client's
        clock); ``name`` is one of ``WAIT_FIELDS``."""
        with self._lock:
            self._waits[name].add(start, end)

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            waits: dict[str, Any] = {n: w.total for n, w in self._waits.items()}
            return MetricsSnapshot(**self._values, **waits)
