"""The backfill-memory and code-location-load benchmarks run on tiny sizes and report what
they say they measure (no timing or memory thresholds: the machine may be busy)."""

from __future__ import annotations

import pytest

from benchmarks import backfill_memory, load_time


def test_backfill_memory_runs_the_year_in_a_child_and_counts_its_pages():
    row = backfill_memory.measure(600)
    assert row["success"] is True
    # 600 reports at 100 a page: 6 window pages, plus the change scan's own first pages.
    assert row["time_report_requests"] >= 6
    assert row["peak_rss_mb"] >= row["baseline_rss_mb"] > 50  # the child holds Dagster and pandas
    assert row["run_added_mb"] == pytest.approx(row["peak_rss_mb"] - row["baseline_rss_mb"], abs=0.11)


def test_load_time_measures_the_location_and_names_the_libraries_it_loads():
    result = load_time.measure(runs=1)
    assert result["load_location_s"] > 0 and result["import_dagster_s"] > 0
    assert result["load_location_s_cpu"] > 0
    # Loading the code location does not need DuckDB, the vendor sandboxes or their server.
    assert not {"duckdb", "starlette", "uvicorn"} & set(result["watched_libraries_loaded"])


def test_worker_memory_is_sampled_for_a_run_worker_of_the_production_launcher():
    import subprocess
    import sys
    import time

    from benchmarks.machine_load import WorkerPeakMemory

    # What the production launcher starts: ``python -m dagster api execute_run`` (its arguments
    # stand in here for the module's, so the process only sleeps).
    code = "import time; big = bytearray(30 * 1024 * 1024); time.sleep(3)"
    with WorkerPeakMemory(interval_s=0.05) as memory:
        worker = subprocess.Popen([sys.executable, "-c", code, "dagster", "api", "execute_run"])
        deadline = time.monotonic() + 10
        while not memory.peak_kb and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.wait(timeout=30)
    assert memory.peak_mb is not None and memory.peak_mb >= 30
