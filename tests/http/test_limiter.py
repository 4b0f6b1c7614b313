import threading
import time

import pytest

from timesheet_assets.http import FakeClock, RateLimiter


def _starts(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    starts = []
    for _ in range(n):
        with limiter.slot():
            starts.append(clock.monotonic())
    return starts


def max_in_any_window(starts: list[float], window: float = 1.0) -> int:
    return max(sum(1 for t in starts if s <= t < s + window - 1e-9) for s in starts)


def test_rate_spaces_requests_evenly_with_burst_one():
    clock = FakeClock()
    limiter = RateLimiter(4, burst=1, clock=clock)
    starts = _starts(limiter, clock, 12)
    gaps = [round(b - a, 6) for a, b in zip(starts, starts[1:])]
    assert gaps == [0.25] * 11
    assert max_in_any_window(starts) == 4


def test_burst_allows_initial_burst_then_steady_rate():
    clock = FakeClock()
    limiter = RateLimiter(2, burst=3, clock=clock)
    starts = _starts(limiter, clock, 7)
    t0 = starts[0]
    assert [round(s - t0, 6) for s in starts] == [0, 0, 0, 0.5, 1.0, 1.5, 2.0]


def test_idle_time_refills_only_up_to_burst():
    clock = FakeClock()
    limiter = RateLimiter(1, burst=2, clock=clock)
    _starts(limiter, clock, 2)
    clock.advance(100)
    starts = _starts(limiter, clock, 4)
    t0 = starts[0]
    assert [round(s - t0, 6) for s in starts] == [0, 0, 1.0, 2.0]


def test_wait_is_reported_for_metrics():
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock)
    waits = []
    for _ in range(3):
        with limiter.slot() as waited:
            waits.append(round(waited, 6))
    assert waits == [0.0, 0.2, 0.2]


def test_pause_until_holds_every_caller():
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock)
    limiter.pause_until(clock.monotonic() + 7)
    start = clock.monotonic()
    with limiter.slot():
        assert clock.monotonic() - start == pytest.approx(7)


def test_max_in_flight_is_never_exceeded_across_threads():
    limiter = RateLimiter(10_000, burst=100, max_in_flight=3)
    active = 0
    peak = 0
    lock = threading.Lock()

    def work():
        nonlocal active, peak
        with limiter.slot():
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.02)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 3
    assert limiter.peak_in_flight == 3
    assert limiter.in_flight == 0


def test_rate_holds_across_threads():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, max_in_flight=10)
    starts = []
    lock = threading.Lock()

    def work():
        with limiter.slot():
            with lock:
                starts.append(clock.monotonic())

    threads = [threading.Thread(target=work) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(starts) == 40
    # Each reservation is 0.1 s after the previous one however the threads interleave.
    assert max_in_any_window(sorted(starts)) <= 10


@pytest.mark.parametrize("kwargs", [{"rate_per_second": 0}, {"rate_per_second": 1, "burst": 0}, {"rate_per_second": 1, "max_in_flight": 0}])
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)
