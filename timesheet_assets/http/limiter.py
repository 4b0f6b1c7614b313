"""Thread-safe request limiter: a token bucket for requests/second plus a cap on requests in flight.

One limiter is shared by every thread of a vendor resource, so parallel detail calls stay
inside the vendor's documented limits together, not each on its own.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from .clock import SYSTEM_CLOCK, Clock


class RateLimiter:
    """Token bucket (``rate`` tokens/s, ``burst`` capacity) and an in-flight semaphore.

    ``burst=1`` spaces requests evenly at ``1/rate`` seconds, which is what vendors that count
    requests in a sliding one-second window need: a full bucket of N followed by steady refill
    would put N+1 requests into one window.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        burst: int = 1,
        max_in_flight: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.rate = float(rate_per_second)
        self.burst = burst
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock.monotonic()
        self._paused_until = 0.0
        self._in_flight = 0
        self._in_flight_cond = threading.Condition(threading.Lock())
        self.peak_in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def pause_until(self, monotonic_deadline: float) -> None:
        """Hold every caller until ``monotonic_deadline`` (used when the vendor says "slow down")."""
        with self._lock:
            self._paused_until = max(self._paused_until, monotonic_deadline)

    def _reserve(self) -> float:
        """Take one token, returning how long the caller must wait before using it."""
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            return max(wait, self._paused_until - now)

    def _enter_flight(self) -> float:
        if self.max_in_flight is None:
            with self._in_flight_cond:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return 0.0
        start = self._clock.monotonic()
        with self._in_flight_cond:
            while self._in_flight >= self.max_in_flight:
                self._in_flight_cond.wait()
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        return self._clock.monotonic() - start

    def _leave_flight(self) -> None:
        with self._in_flight_cond:
            self._in_flight -= 1
            self._in_flight_cond.notify()

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one in-flight slot and one rate token for the duration of a request.

        Yields the seconds spent waiting. The in-flight slot is taken first so a thread
        that holds a token never sits behind the semaphore and bunches requests up.
        """
        waited = self._enter_flight()
        try:
            delay = self._reserve()
            if delay > 0:
                self._clock.sleep(delay)
            yield waited + max(delay, 0.0)
        finally:
            self._leave_flight()
