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
            if (path_suffix is None or r.path.endswith(path_suffix))
            and (method is None or r.method == method)
        ]

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
