"""The Ajera benchmark's contract (not its timing): one row per scenario, counted by the sandbox."""

from __future__ import annotations

from benchmarks.vendor_ajera import run_benchmark
from tests.support.benchmark_rows import BENCHMARK_ROW_KEYS as KEYS


def test_benchmark_reports_each_scenario_from_sandbox_counts():
    rows = run_benchmark(records=100)
    assert [row["scenario"] for row in rows] == ["full", "no_change", "after_1pct_changed"]
    for row in rows:
        assert set(row) == KEYS
        assert row["vendor"] == "ajera"
        assert row["documented_limit_rps"] is None and row["utilisation_pct"] is None
        # session, ListTimesheets, 2 GetTimesheets batches of 50, 1 ListProjects (12 projects,
        # PageCount 1: no confirming call), GetProjects, EndAPISession
        assert row["requests"] == 7
        assert row["records"] == 100 + 12
        assert row["rate_violations"] == 0
        assert row["requests_per_1000_records"] == round(1000 * 7 / 112, 2)
