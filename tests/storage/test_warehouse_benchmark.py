"""The warehouse benchmark runs on both backends and its numbers add up, on a tiny size (no
timing assertions: timings are the benchmark's business)."""

from benchmarks import warehouse


def test_both_backends_write_every_row_and_report_rate_and_memory(tmp_path):
    result = warehouse.run_warehouse(2_000, cache_dir=tmp_path, log=lambda _: None)
    rows = {r["backend"]: r for r in result["rows"]}
    assert set(rows) == {"duckdb", "postgresql"}
    for row in rows.values():
        assert row["raw_rows"] > 0 and row["conformed_rows"] > 0
        assert (row["raw_rows_written"], row["conformed_rows_written"]) == (row["raw_rows"], row["conformed_rows"])
        assert row["rows_per_s"] > 0 and row["peak_rss_mb"] >= row["rss_with_frames_mb"] > 0
    assert rows["duckdb"]["raw_rows"] == rows["postgresql"]["raw_rows"]
    table = warehouse.warehouse_table(result)
    assert "postgresql" in table and "MISMATCH" not in table
