"""Thread-safe request limiter: requests/second paced on the times requests actually went out,
plus a cap on requests in flight.

One limiter is shared by every thread of a vendor resource, so parallel detail calls stay
inside the vendor's documented limits together, not each on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .clock import SYSTEM_CLOCK, Clock


class RateLimiter:
    """``rate`` requests/s with ``burst`` allowed back to back, and an in-flight semaphore.

    Pacing is the generic cell-rate algorithm on absolute send times: a request may go at
    ``now`` once ``now >= tat - (burst - 1) / rate``, and then ``tat = max(tat, now) + 1/rate``,
    where ``now`` is when the request is really released — after its thread woke up, not when
    it was planned. A thread the OS schedules late therefore pushes the next request back by
    the same amount instead of leaving it on the old timetable, where the gap after a late
    request would shrink and a sliding one-second window at the vendor could see one request
    too many. Each caller books a planned time first and sleeps until it (one wake-up per
    request, no herd of threads racing for the same moment), then checks the rule again
    against the clock and sleeps the difference when an earlier request went out late.

    ``burst=1`` spaces requests evenly at ``1/rate`` seconds, which is what vendors that count
    requests in a sliding one-second window need: a full bucket of N followed by steady refill
    would put N+1 requests into one window. Any N+1 consecutive sends then span at least
    N/rate seconds, so a rate a little under the documented one is the margin left for what
    happens between the release and the request reaching the vendor.

    Between the release and the vendor lies the rest of the client: building the request,
    taking a pooled connection, the socket write. A thread held up there (the OS, the GIL)
    would send after requests released later than it, and those then arrive closer together
    than the pacing allowed. So the client reports when each request's headers went out
    (``departed``), and once a limiter has heard such a report it releases the next request
    only after the one before has departed, paced from that moment. A request that never
    departs (it failed before sending) frees the next one when its slot ends, and one that
    has not departed after ``departure_wait_seconds`` is given up on, so a stuck connect
    cannot hold every thread. The usual lag from release to write (a millisecond or so of the
    client's own work) is not charged to the next request: up to ``departure_slack_seconds``
    of it is absorbed, so any two requests still go out at least ``1/rate - slack`` apart,
    which the rate's margin under the vendor's limit covers (Aimsio's 9.8/s: any 11 requests
    at least 1.010 s apart with the default 1 ms), while a thread held up for longer pushes
    the next request back by all of the rest.

    ``as_if_one_just_went=True`` starts the limiter as if a request had gone out the moment
    it was made. A vendor's steps and runs take turns (the vendor's pool): each opens its own
    client, and the one before may have sent its last request a moment ago. Starting one
    interval after creation keeps the spacing across that handoff, so the combined calls of
    both still put no more than N into any window of N/rate seconds.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        burst: int = 1,
        max_in_flight: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
        on_send: Callable[[float], None] | None = None,
        as_if_one_just_went: bool = False,
        departure_wait_seconds: float = 2.0,
        departure_slack_seconds: float = 0.001,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if departure_slack_seconds < 0:
            raise ValueError("departure_slack_seconds must be at least 0")
        self.rate = float(rate_per_second)
        self.burst = burst
        self.max_in_flight = max_in_flight
        self.interval = 1.0 / self.rate
        self._tolerance = (burst - 1) * self.interval
        self._clock = clock
        self._on_send = on_send
        self._lock = threading.Lock()
        # Theoretical arrival time of the next request, on actual send times, and the same on
        # planned times (what callers already booked, so each sleeps to its own moment).
        self._tat = clock.monotonic() + self.interval if as_if_one_just_went else float("-inf")
        self._planned_tat = self._tat
        self._paused_until = 0.0
        self._in_flight = 0
        self._in_flight_cond = threading.Condition(threading.Lock())
        self.peak_in_flight = 0
        self.late_releases = 0  # requests whose thread woke after the rule allowed them to go
        # The last released request until it departs (see the class docstring).
        self.departure_wait_seconds = departure_wait_seconds
        # Never more than a tenth of the spacing, whatever the rate.
        self.departure_slack_seconds = min(departure_slack_seconds, self.interval / 10)
        self._departed_cond = threading.Condition(self._lock)
        self._departures_reported = False
        self._released = 0  # releases so far; each thread holds the number of its own
        self._mine = threading.local()
        self._undeparted: int | None = None
        self._undeparted_released_at = 0.0  # on the limiter's clock
        self._undeparted_wait_from = 0.0  # on the real clock, for the wait's bound
        self._tat_before_undeparted = float("-inf")
        self.departures_given_up = 0
        self.late_departures = 0  # departures later than the slack after their release

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def pause_until(self, monotonic_deadline: float) -> None:
        """Hold every caller until ``monotonic_deadline`` (used when the vendor says "slow down")."""
        with self._lock:
            self._paused_until = max(self._paused_until, monotonic_deadline)

    def _book(self, now: float) -> float:
        """The planned send time of a new caller (under the lock)."""
        planned = max(now, self._planned_tat - self._tolerance, self._paused_until)
        self._planned_tat = max(self._planned_tat, planned) + self.interval
        return planned

    def _release_at(self) -> float:
        """Wait until the rule allows a send on the clock, take it, and return the send time."""
        with self._lock:
            planned = self._book(self._clock.monotonic())
        while True:
            now = self._clock.monotonic()
            if planned > now:
                self._clock.sleep(planned - now)
            with self._lock:
                if self._wait_for_departure():
                    planned = float("-inf")
                    continue
                now = self._clock.monotonic()
                ready = max(self._tat - self._tolerance, self._paused_until)
                if now >= ready:
                    if now - planned > 0.001:
                        self.late_releases += 1
                    self._tat_before_undeparted = self._tat
                    self._tat = max(self._tat, now) + self.interval
                    # Callers that book from now on plan behind what really happened.
                    self._planned_tat = max(self._planned_tat, self._tat)
                    if self._on_send is not None:
                        self._on_send(now)
                    self._released += 1
                    self._undeparted = self._mine.release = self._released
                    self._undeparted_wait_from = time.monotonic()
                    self._undeparted_released_at = now
                    return now
                planned = ready

    def _wait_for_departure(self) -> bool:
        """Under the lock: wait while the last released request has not departed. True when
        it waited (the caller then re-reads the rule, which a departure may have moved)."""
        if not self._departures_reported or self._undeparted is None:
            return False
        # Real time, whatever the limiter's clock: this bounds a wait on another thread.
        left = self._undeparted_wait_from + self.departure_wait_seconds - time.monotonic()
        if left <= 0:
            self.departures_given_up += 1
            self._undeparted = None
            return False
        self._departed_cond.wait(left)
        return True

    def departed(self) -> None:
        """The calling thread's request has gone out (its headers are written): the next
        request is paced from now. Called by the client from the transport's trace hook."""
        release = self._take_my_release()
        if release is None:
            return
        with self._lock:
            now = self._clock.monotonic()
            self._departures_reported = True
            if release == self._undeparted:
                if now - self._undeparted_released_at > self.departure_slack_seconds:
                    self.late_departures += 1
                went = now - self.departure_slack_seconds
                self._tat = max(self._tat, max(self._tat_before_undeparted, went) + self.interval)
                self._planned_tat = max(self._planned_tat, self._tat)
                self._undeparted = None
                self._departed_cond.notify_all()

    def _never_departed(self) -> None:
        """The slot ends without a departure report (the request failed before it was sent,
        or the transport does not report): the next request need not wait for it."""
        release = self._take_my_release()
        if release is None:
            return
        with self._lock:
            if release == self._undeparted:
                self._undeparted = None
                self._departed_cond.notify_all()

    def _take_my_release(self) -> int | None:
        """The number of the release this thread holds, if it holds one; it holds none after."""
        release: int | None = getattr(self._mine, "release", None)
        self._mine.release = None
        return release

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
        """Hold one in-flight slot and one send time for the duration of a request.

        Yields the seconds spent waiting. The in-flight slot is taken first so a thread
        that holds a send time never sits behind the semaphore and bunches requests up.
        """
        waited = self._enter_flight()
        try:
            asked = self._clock.monotonic()
            sent = self._release_at()
            yield waited + max(sent - asked, 0.0)
        finally:
            self._never_departed()
            self._leave_flight()
