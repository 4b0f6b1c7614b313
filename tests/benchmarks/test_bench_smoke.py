"""The benchmark code runs and its numbers add up, on tiny sizes (no timing assertions)."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import pytest

from benchmarks import processing, run

RECORDS = 2_000


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    return processing.record_pages(RECORDS, tmp_path_factory.mktemp("pages"))


def test_pages_are_the_sandbox_shape_and_cover_every_record(store):
    pages = list(store.iter_pages())
    assert store.pages == len(pages) == RECORDS // store.page_size
    entries = []
    for body in pages:
        page = json.loads(body)
        assert page["status"] == "SUCCESS" and page["count"] == RECORDS
        assert set(page["data"]) == {"time_entries", "users", "tasks", "projects"}
        entries += page["data"]["time_entries"]
    assert [e["id"] for e in entries] == list(range(1, RECORDS + 1))
    assert sum(map(len, pages)) == store.total_bytes
    # Cached: a second call reuses the recorded file.
    assert processing.record_pages(RECORDS, processing.Path(store.path).parent).path == store.path


def test_pipeline_counts_every_record_once(store, tmp_path):
    result = processing.measure_pipeline(store, str(tmp_path / "warehouse.duckdb"))
    assert result["requests"] == store.pages  # the count is the search's total from page 1 on
    assert result["recorded_pages_served"] == list(range(store.pages))
    assert result["records_served"] + result["outside_window"] == RECORDS
    assert result["quarantined"] == 0 and result["duplicates_dropped"] == 0
    assert result["raw_rows_written"] == result["payloads_written"] == result["records_served"]
    assert result["conformed_rows_written"] == result["raw_rows_written"] - result["raw_quarantined_written"]
    assert result["conformed_total_hours"] > 0
    assert result["records_per_s"] > 0 and result["peak_rss_mb"] > 0
    assert set(result["stage_seconds"]) == {
        "fetch_parse_validate_raw_frame",
        "conform",
        "duckdb_write_raw",
        "duckdb_write_conformed",
    }
    assert processing._consistent(result, store)


def test_json_loads_baseline_reads_the_same_records(store):
    result = processing.measure_json_loads(store)
    assert result["records"] == RECORDS and result["records_per_s"] > 0


def test_run_processing_subprocesses_and_table(tmp_path):
    result = processing.run_processing([RECORDS], repeat=1, cache_dir=tmp_path, import_repeat=1)
    (row,) = result["rows"]
    assert row["records"] == RECORDS and row["consistent"] is True
    assert row["ratio"] > 0 and row["ratio_without_duckdb"] >= row["ratio"]
    assert row["peak_rss_mb"] > 0 and result["import_seconds_best"] > 0
    assert result["machine"]["cores"] >= 1
    table = processing.processing_table(result)
    assert "ratio" in table and f"{RECORDS}" in table


def test_ablation_variants_give_the_same_rows(tmp_path):
    result = processing.run_ablation(RECORDS, repeat=1, cache_dir=tmp_path)
    variants = {r["variant"]: r for r in result["rows"]}
    assert set(variants) == set(processing.ABLATIONS)
    assert {r["rows"] for r in result["rows"]} == {RECORDS}  # every variant conforms every record
    assert all(r["records_per_s"] > 0 for r in result["rows"])


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory):
    """One ``--quick`` run of the iBuildApp vendor benchmark with processing, warehouse and
    the design's floor (no freshness): (report, results JSON, what it printed)."""
    root = tmp_path_factory.mktemp("quick_report")
    output, raw = root / "RESULTS.md", root / "results.json"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("TIMESHEET_BENCH_CACHE", str(root / "pages"))
        patch.setattr(run, "QUICK_PROCESSING_SIZES", [500])
        code = run.main(
            ["--quick", "--vendors", "ibuildapp", "--skip-freshness", "--output", str(output), "--json", str(raw)]
        )
    assert code == 0
    return output, raw, printed.getvalue()


def test_run_quick_one_vendor_writes_a_report(quick_report):
    output, raw, printed = quick_report
    result = json.loads(raw.read_text())
    rows = result["vendors"]
    assert [r["scenario"] for r in rows][:2] == ["full", "no_change"] and len(rows) == 3
    for row in rows:
        for key, _ in run.VENDOR_COLUMNS:
            assert key in row
        assert row["rate_violations"] == 0
        assert row["requests"] > 0 and row["records"] > 0
    report = output.read_text()
    for heading in (
        "Vendors against their documented limits",
        "Processing with the network taken out",
        "Before/after of each optimisation",
        "The floor of the design",
        "Machine:",
        "python -m benchmarks.run --quick",
        "## Targets",
    ):
        assert heading in report
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in report
    assert "429s/refusals" in printed


def test_floor_stages_each_read_every_record_and_both_paths_write_the_same_rows(store, tmp_path):
    from benchmarks import floor

    result = floor.measure(store, repeat=1)
    assert [r["stage"] for r in result["rows"]] == [*floor.STAGES, floor.ELT]
    assert result["rows"][0]["ratio"] == 1.0 and all(r["seconds"] > 0 for r in result["rows"])
    pandas_path, sql_path = result["written"]["conform_write"], result["written"][floor.ELT]
    # Every record lands once in each table, with its payload, on both paths, and the SQL
    # conform gives the vendor's conform_timesheets hours.
    assert pandas_path == sql_path
    assert pandas_path["raw_rows"] == pandas_path["payloads"] == pandas_path["conformed_rows"] == RECORDS
    assert pandas_path["total_hours"] > 0
    table = floor.floor_table({"sizes": [result], "repeat": 1})
    assert "duckdb_elt" in table and f"{RECORDS:,}" in table


def test_a_vendor_only_run_keeps_the_processing_sections_and_renders_again_from_json(
    quick_report, tmp_path, monkeypatch
):
    earlier, _, _ = quick_report
    monkeypatch.setenv("TIMESHEET_BENCH_CACHE", str(tmp_path / "pages"))
    later, raw = tmp_path / "LATER.md", tmp_path / "later.json"
    assert (
        run.main(
            [
                "--quick",
                "--vendors",
                "ibuildapp",
                "--skip-freshness",
                "--skip-processing",
                "--processing-from",
                str(earlier),
                "--output",
                str(later),
                "--json",
                str(raw),
            ]
        )
        == 0
    )
    report = later.read_text()
    assert "kept from an earlier report" in report
    kept = earlier.read_text()
    start = kept.index("## Processing with the network taken out")
    assert kept[start : kept.index("## Targets")].strip() in report
    assert "- processing headroom at 500 records:" in report and "(retired) processing ratio" not in report
    rendered = tmp_path / "RENDERED.md"
    assert run.main(["--render", str(raw), "--output", str(rendered)]) == 0
    assert rendered.read_text() == report
