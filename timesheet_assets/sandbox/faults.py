"""Fault knobs every sandbox understands, settable in code or over ``POST /_sandbox/faults``."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

# Fault kinds besides plain HTTP statuses.
RESET = "reset"  # connection closed mid-body (client sees a protocol error)
TRUNCATE = "truncate"  # complete HTTP response whose JSON body is cut off
TIMEOUT = "timeout"  # no answer until the client's read timeout fires
HTTP_DATE = "http-date"


@dataclass
class FaultKnobs:
    """Injected misbehaviour. ``script`` is consumed in order by the next matching requests
    (deterministic, for tests); the ``*_rate`` knobs fire at random from ``seed`` (storms)."""

    seed: int = 0
    # e.g. [503, 429, "reset", "truncate"]; a None entry lets that request through untouched.
    script: list[Any] = field(default_factory=list)
    status_rates: dict[int, float] = field(default_factory=dict)
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    latency_seconds: float = 0.0
    timeout_seconds: float = 30.0  # how long a TIMEOUT fault stalls
    retry_after: str | None = "1"  # injected 429s: seconds, or "http-date", or None (no header)
    wait_hint_seconds: float | None = None  # body hint on injected 429s, where the vendor has one
    token_expiry_after_calls: int | None = None  # tokens die after N authenticated calls
    path_contains: str | None = None  # only requests whose path contains this are affected

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def update(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                if not hasattr(self, name) or name.startswith("_"):
                    raise ValueError(f"unknown fault knob {name!r}")
                if name == "status_rates":
                    value = {int(k): float(v) for k, v in value.items()}
                if name == "script":
                    value = list(value)  # consumed as requests arrive; never the caller's list
                setattr(self, name, value)
            if "seed" in changes:
                self._rng = random.Random(self.seed)

    def clear(self) -> None:
        defaults = FaultKnobs()
        self.update(**{name: getattr(defaults, name) for name in self.__dataclass_fields__ if name != "seed"})

    def draw(self, path: str) -> Any | None:
        """The fault for this request, if any."""
        with self._lock:
            if self.path_contains and self.path_contains not in path:
                return None
            if self.script:
                return self.script.pop(0)
            for status, rate in self.status_rates.items():
                if rate and self._rng.random() < rate:
                    return status
            if self.reset_rate and self._rng.random() < self.reset_rate:
                return RESET
            if self.truncate_rate and self._rng.random() < self.truncate_rate:
                return TRUNCATE
            return None
