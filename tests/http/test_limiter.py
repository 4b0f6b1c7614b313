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
    three_inside = threading.Event()

    def work():
        nonlocal active, peak
        with limiter.slot():
            with lock:
                active += 1
                peak = max(peak, active)
                if active == 3:
                    three_inside.set()
            # The first ones in stay until three are: the limit is reached however slowly
            # this machine starts the threads (and a fourth would have to get in beside them).
            three_inside.wait(timeout=60)
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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_per_second": 0},
        {"rate_per_second": 1, "burst": 0},
        {"rate_per_second": 1, "max_in_flight": 0},
        {"rate_per_second": 10, "departure_slack_seconds": -0.001},
    ],
)
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)


class LateClock(FakeClock):
    """A fake clock whose sleepers wake late: the n-th sleep (1-based) in ``late`` oversleeps
    by its value, the way a busy machine schedules a thread after its timer fired."""

    def __init__(self, late: dict[int, float]) -> None:
        super().__init__()
        self._late = dict(late)
        self._sleeps_seen = 0

    def sleep(self, seconds: float) -> None:
        self._sleeps_seen += 1
        super().sleep(seconds + self._late.get(self._sleeps_seen, 0.0))


def test_a_late_request_never_shortens_the_next_gap():
    # The 2nd and 5th sleeps wake 60 ms and 90 ms late. On a fixed timetable the requests
    # after them would go on time, 40 ms and 10 ms after the late ones.
    clock = LateClock({2: 0.06, 5: 0.09})
    sends: list[float] = []
    limiter = RateLimiter(10, clock=clock, on_send=sends.append)
    starts = _starts(limiter, clock, 12)
    assert starts == sends  # what the caller sees is the send time the limiter paced on
    gaps = [round(b - a, 6) for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.1
    assert gaps[2] == pytest.approx(0.1) and gaps[1] == pytest.approx(0.16)
    assert max_in_any_window(starts) <= 10
    assert limiter.late_releases == 2


def test_late_threads_push_the_others_back_instead_of_bunching_them():
    # Ten threads share the limiter; every third sleep wakes 35 ms late. Send times are what
    # the limiter released (under its lock), so thread interleaving cannot blur them.
    clock = LateClock({n: 0.035 for n in range(1, 400, 3)})
    sends: list[float] = []
    limiter = RateLimiter(10, clock=clock, max_in_flight=10, on_send=sends.append)
    barrier = threading.Barrier(10)

    def work():
        barrier.wait()
        for _ in range(6):
            with limiter.slot():
                pass

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sends) == 60
    assert sends == sorted(sends)
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    assert min(gaps) >= 0.1 - 1e-9
    # No eleven sends in any closed one-second window: every 11 consecutive span ≥ 1 s.
    assert min(b - a for a, b in zip(sends, sends[10:])) >= 1.0 - 1e-9


def test_pause_pushes_a_booked_request_back():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)
    with limiter.slot():
        pass
    first = clock.monotonic()
    # A 429 arrives while the next request is already booked for first + 0.1.
    limiter.pause_until(first + 2.0)
    with limiter.slot() as waited:
        assert clock.monotonic() == pytest.approx(first + 2.0)
        assert waited == pytest.approx(2.0)


def test_a_limiter_made_as_if_one_just_went_waits_one_interval_first():
    clock = FakeClock()
    made = clock.monotonic()
    limiter = RateLimiter(4, burst=1, clock=clock, as_if_one_just_went=True)
    starts = _starts(limiter, clock, 3)
    assert [round(s - made, 6) for s in starts] == [0.25, 0.5, 0.75]


@pytest.mark.parametrize("as_if_one_just_went, worst_window", [(True, 4), (False, 5)])
def test_a_step_after_another_keeps_the_spacing_only_when_its_limiter_assumes_a_call_just_went(
    as_if_one_just_went, worst_window
):
    """A vendor's steps take turns: each opens its own limiter right after the one before sent
    its last request. Assuming that call just went keeps any window at the limit."""
    clock = FakeClock()
    first = _starts(RateLimiter(4, burst=1, clock=clock, as_if_one_just_went=as_if_one_just_went), clock, 8)
    second = _starts(RateLimiter(4, burst=1, clock=clock, as_if_one_just_went=as_if_one_just_went), clock, 8)
    assert max_in_any_window(first + second) == worst_window


def _depart_once(limiter: RateLimiter) -> None:
    """One request that reports its departure: from then on the limiter waits for them."""
    with limiter.slot():
        limiter.departed()


def _run_second_once_first_is_released(first, released: threading.Event, second, then=None) -> None:
    """``first`` in a thread; once it sets ``released`` (it holds a send time), ``second`` in
    another; ``then`` after ``second`` finished, before waiting for ``first``."""
    holder = threading.Thread(target=first)
    holder.start()
    released.wait()
    follower = threading.Thread(target=second)
    follower.start()
    follower.join()
    if then is not None:
        then()
    holder.join()


def test_the_next_request_is_paced_from_when_a_held_up_one_really_departed():
    limiter = RateLimiter(10)  # 0.1 s apart
    _depart_once(limiter)
    released = threading.Event()
    departed_at: list[float] = []
    next_release: list[float] = []

    def held_up() -> None:
        with limiter.slot():
            released.set()
            time.sleep(0.3)  # its thread stalls between the release and the write
            departed_at.append(time.monotonic())
            limiter.departed()

    def next_one() -> None:
        with limiter.slot():
            next_release.append(time.monotonic())
            limiter.departed()

    _run_second_once_first_is_released(held_up, released, next_one)
    assert next_release[0] >= departed_at[0] + 0.1 - limiter.departure_slack_seconds
    assert limiter.late_departures == 1


def test_a_request_that_never_departs_frees_the_next_when_its_slot_ends_or_the_wait_runs_out():
    limiter = RateLimiter(100, max_in_flight=3, departure_wait_seconds=0.3)
    _depart_once(limiter)
    started = time.monotonic()
    with limiter.slot():
        pass  # failed before sending: no report
    with limiter.slot():
        limiter.departed()
    freed_by_slot_end = time.monotonic() - started

    stuck_released = threading.Event()
    leave = threading.Event()
    waited_for_stuck: list[float] = []

    def stuck() -> None:
        with limiter.slot():
            stuck_released.set()
            leave.wait(5)  # a connect that hangs; never departs

    def next_one() -> None:
        begun = time.monotonic()
        with limiter.slot():
            waited_for_stuck.append(time.monotonic() - begun)
            limiter.departed()

    _run_second_once_first_is_released(stuck, stuck_released, next_one, then=leave.set)
    assert freed_by_slot_end < 0.3
    assert 0.25 <= waited_for_stuck[0] < 4
    assert limiter.departures_given_up == 1


def test_a_limiter_that_never_hears_of_departures_does_not_wait_for_them():
    # Transports that do not trace (test doubles) leave the limiter pacing on releases alone.
    limiter = RateLimiter(1000, max_in_flight=2)
    inside = threading.Barrier(2, timeout=5)

    def work() -> None:
        with limiter.slot():
            inside.wait()  # both requests in flight at once, neither departed

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.peak_in_flight == 2 and limiter.departures_given_up == 0


@pytest.mark.parametrize(("lag", "next_gap"), [(0.0005, 0.1), (0.05, 0.05 - 0.001 + 0.1)])
def test_a_lag_within_the_slack_costs_the_next_request_nothing_and_a_longer_one_pushes_it_back(lag, next_gap):
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)  # 0.1 s apart, 1 ms slack
    _depart_once(limiter)
    with limiter.slot():
        released = clock.monotonic()
        clock.advance(lag)  # the client's own work between the release and the write
        limiter.departed()
    with limiter.slot():
        assert clock.monotonic() - released == pytest.approx(next_gap)
