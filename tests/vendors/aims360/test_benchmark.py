"""The benchmark contract: one row per scenario, counted from the sandbox's own log."""

from __future__ import annotations

from benchmarks.vendor_aims360 import run_benchmark
from tests.support.benchmark_rows import BENCHMARK_ROW_KEYS as KEYS


def test_benchmark_reports_the_three_scenarios():
    rows = run_benchmark(200)
    assert [r["scenario"] for r in rows] == ["full", "no_change", "after_1pct_changed"]
    for row in rows:
        assert set(row) == KEYS
        assert row["vendor"] == "aims360"
        assert row["records"] == 200
        # token, create or rerun, three status polls, one download
        assert row["requests"] == 6
        assert row["rate_violations"] == 0
        assert (row["documented_limit_rps"], row["utilisation_pct"]) == (None, None)
        assert row["requests_per_1000_records"] == 30.0
