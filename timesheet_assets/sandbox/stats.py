"""What a sandbox observed: request log and limiter counters that tests assert on."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int | None = None
    arrived_at: float | None = None  # time.monotonic() when the request reached the sandbox


def busiest_window(arrivals: list[float], window_seconds: float = 1.0) -> int:
    """The most requests any closed window of ``window_seconds`` holds (0 for none)."""
    times = sorted(arrivals)
    most = 0
    start = 0
    for end, t in enumerate(times):
        while times[start] < t - window_seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


def tightest_span(arrivals: list[float], requests: int) -> float | None:
    """The shortest time any ``requests`` consecutive arrivals took (``None`` when fewer
    arrived): with a limit of N per window, the span of N+1 must stay above the window."""
    times = sorted(arrivals)
    if requests < 2 or len(times) < requests:
        return None
    return min(times[i + requests - 1] - times[i] for i in range(len(times) - requests + 1))


@dataclass
class SandboxStats:
    requests: int = 0
    by_path: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    rate_exceeded: int = 0  # requests that arrived while the documented window was full
    queued: int = 0  # of those, held back by a queueing limiter (Aimsio)
    timed_out: int = 0  # answered with the vendor's timeout because the queue was too long
    refused_in_flight: int = 0  # refused for exceeding the parallel-call cap
    in_flight: int = 0
    peak_in_flight: int = 0
    faults_injected: Counter = field(default_factory=Counter)
    log: deque = field(default_factory=lambda: deque(maxlen=20000))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def violations(self) -> int:
        return self.rate_exceeded + self.refused_in_flight

    def calls(self, path_suffix: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        with self.lock:
            items = list(self.log)
        return [
            r
            for r in items
            if (path_suffix is None or r.path.endswith(path_suffix)) and (method is None or r.method == method)
        ]

    def arrivals(self, path_suffix: str | None = None) -> list[float]:
        """Arrival times (``time.monotonic()``) of the logged requests, oldest first."""
        return sorted(r.arrived_at for r in self.calls(path_suffix) if r.arrived_at is not None)

    def count(self, path_suffix: str | None = None, method: str | None = None) -> int:
        return len(self.calls(path_suffix, method))

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.by_path.clear()
            self.by_status.clear()
            self.rate_exceeded = self.queued = self.timed_out = self.refused_in_flight = 0
            self.peak_in_flight = 0
            self.faults_injected.clear()
            self.log.clear()

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "rate_exceeded": self.rate_exceeded,
                "queued": self.queued,
                "timed_out": self.timed_out,
                "refused_in_flight": self.refused_in_flight,
                "violations": self.violations,
                "peak_in_flight": self.peak_in_flight,
                "faults_injected": dict(self.faults_injected),
            }
