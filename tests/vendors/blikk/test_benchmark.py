"""The benchmark's contract (not its timing): one row per scenario, counted by the sandbox."""

from __future__ import annotations

from benchmarks.vendor_blikk import run_benchmark
from tests.support.benchmark_rows import BENCHMARK_ROW_KEYS as KEYS


def test_benchmark_reports_each_scenario_from_sandbox_counts():
    rows = run_benchmark(records=100)
    assert [row["scenario"] for row in rows] == ["full", "no_change", "after_1pct_changed"]
    for row in rows:
        assert set(row) == KEYS
        assert row["vendor"] == "blikk" and row["documented_limit_rps"] == 4.0
        # token, 1 time report page, 3 project registries (+ 1 user page when names are missing)
        assert row["requests"] in (5, 6)
        assert row["records"] == 100 + 12 + 3 + 3
        assert row["rate_violations"] == 0
