"""Waits are reported as wall time: the seconds during which at least one request was held,
so they compare with the step's duration (parallel threads waiting together count once)."""

import threading
import time

import httpx
import pytest

from timesheet_assets.http import RateLimiter, RequestMetrics, VendorClient


def test_overlapping_waits_count_once_and_gaps_are_not_counted():
    metrics = RequestMetrics()
    metrics.add_wait("seconds_waited_rate_limit", 10.0, 14.0)
    metrics.add_wait("seconds_waited_rate_limit", 11.0, 13.0)  # inside the first
    metrics.add_wait("seconds_waited_rate_limit", 20.0, 21.0)  # after a gap
    metrics.add_wait("seconds_waited_rate_limit", 13.5, 16.0)  # overlaps the first's end
    metrics.add_wait("seconds_waited_rate_limit", 5.0, 6.0)  # arrives late, lies before all
    metrics.add_wait("seconds_waited_rate_limit", 6.0, 10.0)  # touches two: joins them
    metrics.add_wait("seconds_waited_backoff", 0.0, 2.5)
    snapshot = metrics.snapshot()
    # [5, 16] and [20, 21]: 12 s, where the sum of the six waits is 18 s.
    assert snapshot.seconds_waited_rate_limit == pytest.approx(12.0)
    assert snapshot.seconds_waited_backoff == pytest.approx(2.5)


def test_a_step_reports_the_wall_time_added_since_its_snapshot():
    metrics = RequestMetrics()
    metrics.add_wait("seconds_waited_rate_limit", 0.0, 3.0)
    before = metrics.snapshot()
    metrics.add_wait("seconds_waited_rate_limit", 2.0, 5.0)  # 2 s new
    metrics.add_wait("seconds_waited_rate_limit", 4.0, 6.0)  # 1 s new
    assert (metrics.snapshot() - before).seconds_waited_rate_limit == pytest.approx(3.0)


def test_parallel_threads_held_by_the_limiter_report_no_more_than_the_elapsed_time():
    """Four threads share a 40 requests/s limiter, so each is held most of the time: the
    per-thread waits add up to several times the elapsed time, the reported wait cannot."""
    metrics = RequestMetrics()
    held: list[float] = []
    record = metrics.add_wait

    def spy(name, start, end):
        held.append(end - start)
        record(name, start, end)

    metrics.add_wait = spy
    client = VendorClient(
        "Acme",
        "https://api.example.com/",
        limiter=RateLimiter(40, burst=1, max_in_flight=4),
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={})),
        metrics=metrics,
    )

    def worker():
        for _ in range(15):
            client.get_json("x")

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    snapshot = metrics.snapshot()
    assert snapshot.requests == 60 and len(held) == 60
    assert 0 < snapshot.seconds_waited_rate_limit <= min(elapsed, sum(held))
    client.close()
