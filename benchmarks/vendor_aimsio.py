"""Aimsio throughput against the sandbox with the documented limit on (10 calls/s, 10 in flight).

Scenarios: a full run (1 list call + one detail call per timecard), a run with nothing
changed (1 list call), a run after ~1% of timecards changed (1 + 1% calls), and the same
detail calls made one at a time, to show what the parallel threads buy.

The sandbox adds ``latency_seconds`` to every answer (default 0.25 s, a plausible WAN round
trip plus server time). On bare loopback a call takes about a millisecond, so even sequential
calls would hit the 10/s limit and parallelism could not show; with latency L, one call at a
time manages at most 1/L calls/s, while 10 in flight reach the limit as long as L < 1 s.

Run: ``python benchmarks/vendor_aimsio.py [records]``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import counted_row
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.aimsio.resource import AimsioResource
from timesheet_assets.vendors.aimsio.sandbox import create_app, sandbox_env

VENDOR = "aimsio"
DOCUMENTED_LIMIT_RPS = 10.0


def _resource(server: SandboxServer, **overrides: Any) -> AimsioResource:
    return AimsioResource.from_values(sandbox_env(server.url), **overrides)


def _measure(server: SandboxServer, scenario: str, records: int, work: Callable[[], Any]) -> tuple[dict[str, Any], Any]:
    stats = server.sandbox.stats
    stats.reset()
    started = time.perf_counter()
    outcome = work()
    row = counted_row(VENDOR, scenario, stats, started, records=records, documented_limit_rps=DOCUMENTED_LIMIT_RPS)
    summary = stats.summary()
    row.update({key: summary[key] for key in ("queued", "timed_out", "refused_in_flight", "peak_in_flight")})
    return row, outcome


def run_benchmark(records: int, *, latency_seconds: float = 0.25, sequential_calls: int = 40) -> list[dict[str, Any]]:
    """One row per scenario (see module docstring); ``records`` ≥ 200 gives ≥ 200 detail calls."""
    config = SandboxConfig(time_records=records, seed=11)
    rows: list[dict[str, Any]] = []
    with SandboxServer(create_app(config)) as server:
        server.sandbox.knobs.update(latency_seconds=latency_seconds)
        store = server.app.state.store
        resource = _resource(server)
        try:
            full, fetched = _measure(server, "full", records, lambda: resource.fetch_timecards(None))
            rows.append(full)
            known = fetched.listed_versions  # what the warehouse holds after the full run

            row, _ = _measure(server, "no_change", records, lambda: resource.fetch_timecards(known))
            rows.append(row)

            changed = store.mutate_timecards(max(1, records // 100))
            row, refetched = _measure(server, "changed_1pct", records, lambda: resource.fetch_timecards(known))
            rows.append(row)
            if len(refetched.changed) != len(changed):
                raise AssertionError("the incremental run missed or over-fetched changed timecards")
        finally:
            resource.close()

        sample = [stub.identifier for stub in fetched.listing.stubs[: max(1, sequential_calls)]]
        one_at_a_time = _resource(server, max_in_flight=1)
        try:
            row, _ = _measure(
                server,
                "sequential_details",
                len(sample),
                lambda: one_at_a_time.get_details(one_at_a_time.timecard_endpoint, sample),
            )
        finally:
            one_at_a_time.close()
        rows.append(row)

    speedup = full["achieved_rps"] / row["achieved_rps"] if row["achieved_rps"] else None
    for entry in rows:
        entry["latency_s"] = latency_seconds
    full["speedup_over_sequential"] = round(speedup, 2) if speedup else None
    return rows


def main(argv: list[str]) -> int:
    from tabulate import tabulate

    records = int(argv[1]) if len(argv) > 1 else 500
    rows = run_benchmark(records)
    columns = [
        "scenario",
        "requests",
        "records",
        "wall_s",
        "achieved_rps",
        "utilisation_pct",
        "rate_violations",
        "timed_out",
        "refused_in_flight",
        "peak_in_flight",
        "requests_per_1000_records",
    ]
    print(tabulate([[r.get(c) for c in columns] for r in rows], headers=columns))
    print(f"speed-up of 10 parallel calls over sequential: {rows[0]['speedup_over_sequential']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
