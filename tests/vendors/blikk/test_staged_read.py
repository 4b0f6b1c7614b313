"""Blikk's window read goes to the warehouse page by page as it arrives (``ingest/staged.py``),
and lands the same table as the read built in memory — on both warehouse backends, when the
list moves under the read, with quarantined records and names filled from the registry."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table, staging_tables
from tests.support.postgres import WAREHOUSE_BACKENDS, make_warehouse
from tests.support.step_retries import use_quick_step_retries
from timesheet_assets.ingest import staged
from timesheet_assets.storage import staging as staging_module
from timesheet_assets.storage.staging import StagingTable
from timesheet_assets.vendors.blikk import assets as blikk_assets
from timesheet_assets.vendors.blikk.assets import blikk_time_reports
from timesheet_assets.vendors.blikk.resource import TIME_REPORTS_PATH

TIME_REPORTS = ["raw", "blikk", "time_reports"]


def _run(sandbox, warehouse, **kwargs):
    return materialize(
        [blikk_time_reports],
        {"blikk": sandbox.resource()},
        warehouse,
        first=sandbox.config.first_date,
        last=sandbox.config.anchor_date,
        **kwargs,
    )


def _table(warehouse: str) -> pd.DataFrame:
    frame = read_table(warehouse, "blikk.time_reports").drop(columns=["ingested_at"])
    return frame.sort_values("record_key").reset_index(drop=True)


@pytest.fixture
def appends(monkeypatch):
    """Each staging append: its rows, and how many time-report pages the sandbox had served."""
    seen: list[tuple[int, int]] = []
    original = StagingTable.append

    def spy(self, frame):
        seen.append((len(frame), spy.sandbox.stats.count(TIME_REPORTS_PATH)))
        return original(self, frame)

    monkeypatch.setattr(StagingTable, "append", spy)
    return seen, spy


def test_pages_reach_the_warehouse_while_the_read_goes_on(blikk, warehouse, monkeypatch, appends):
    monkeypatch.setattr(staged, "CHUNK_RECORDS", 100)
    sandbox = blikk(time_records=2100, days=30)
    seen, spy = appends
    spy.sandbox = sandbox

    result = _run(sandbox, warehouse)

    table = _table(warehouse)
    assert len(table) == 2100 and table["record_key"].is_unique
    assert set(table["record_key"]) == {str(r["id"]) for r in sandbox.data.time_reports}
    # 21 pages of 100, staged a page at a time: the first page was in the warehouse before
    # the last was asked for, and no append held more than one chunk.
    pages = sandbox.stats.count(TIME_REPORTS_PATH)
    assert pages == 21
    staged_rows = [rows for rows, _ in seen if rows]
    assert len(staged_rows) == 21 and max(staged_rows) == 100
    assert min(served for rows, served in seen if rows) < pages
    assert staging_tables(warehouse) == []
    meta = materialization_metadata(result, TIME_REPORTS)
    assert meta["rows_in_run"] == 2100 and meta["records_served"] == 2100 and meta["quarantined_in_run"] == 0


def _after_page(sandbox, page_number, action):
    def hook(path, page, body):
        if path == TIME_REPORTS_PATH and page == page_number:
            sandbox.data.page_hooks.remove(hook)
            action()

    sandbox.data.page_hooks.append(hook)


@pytest.mark.parametrize("change", ["deleted", "inserted ahead"])
def test_a_list_that_moved_mid_read_lands_each_report_once(blikk, warehouse, monkeypatch, change):
    monkeypatch.setattr(staged, "CHUNK_RECORDS", 50)
    sandbox = blikk(time_records=300)
    ordered = sorted(sandbox.data.time_reports, key=lambda r: r["createdDate"])
    if change == "deleted":
        _after_page(sandbox, 1, lambda: sandbox.data.delete_time_reports([r["id"] for r in ordered[:10]]))
    else:
        oldest = ordered[0]["createdDate"]
        _after_page(sandbox, 1, lambda: sandbox.data.add_time_report(sandbox.config.first_date, createdDate=oldest))

    result = _run(sandbox, warehouse)

    table = _table(warehouse)
    # Both walks were staged; only the second walk's reports stand, each once.
    assert table["record_key"].is_unique
    assert set(table["record_key"]) == {str(r["id"]) for r in sandbox.data.time_reports}
    meta = materialization_metadata(result, TIME_REPORTS)
    assert meta["list_walks"] == 2 and meta["list_complete"] is True
    assert meta["records_served"] == meta["rows_in_run"] == len(sandbox.data.time_reports)
    assert staging_tables(warehouse) == []


@pytest.mark.parametrize("backend", WAREHOUSE_BACKENDS)
def test_the_staged_read_writes_the_table_the_in_memory_read_writes(blikk, tmp_path, monkeypatch, backend):
    monkeypatch.setattr(staged, "CHUNK_RECORDS", 64)
    sandbox = blikk(time_records=600, days=20)
    day = sandbox.config.first_date + timedelta(days=3)
    template = sandbox.data.time_reports[0]
    sandbox.data.put_raw_time_report({**template, "id": 90001, "date": day.isoformat(), "hours": "eight"})
    assert any(not r["user"]["name"] for r in sandbox.data.time_reports)  # names come from the registry

    (tmp_path / "staged").mkdir()
    (tmp_path / "memory").mkdir()
    staged_warehouse = make_warehouse(backend, tmp_path / "staged", monkeypatch)
    staged_result = _run(sandbox, staged_warehouse)
    monkeypatch.setattr(blikk_assets, "staging_table", lambda context: None)
    memory_warehouse = make_warehouse(backend, tmp_path / "memory", monkeypatch)
    memory_result = _run(sandbox, memory_warehouse)

    staged_table, memory_table = _table(staged_warehouse), _table(memory_warehouse)
    assert len(staged_table) == 601 and staged_table["employee_name"].notna().sum() == 600
    pd.testing.assert_frame_equal(staged_table, memory_table)
    staged_meta = materialization_metadata(staged_result, TIME_REPORTS)
    memory_meta = materialization_metadata(memory_result, TIME_REPORTS)
    for name in ("rows_in_run", "quarantined_in_run", "records_served", "outside_window_skipped", "list_requests"):
        assert staged_meta[name] == memory_meta[name], name
    assert staged_meta["quarantined_in_run"] == 1
    assert staging_tables(staged_warehouse) == []


def test_a_write_that_fails_keeps_the_old_rows_and_drops_the_staging_table(blikk, warehouse, monkeypatch):
    use_quick_step_retries(monkeypatch, [blikk_time_reports])
    sandbox = blikk(time_records=300)
    assert _run(sandbox, warehouse).success
    before = _table(warehouse)
    sandbox.data.edit_fraction(0.5)

    def refuse(*args, **kwargs):
        raise RuntimeError("the warehouse refused the write")

    monkeypatch.setattr(staging_module, "write_rows", refuse)
    result = _run(sandbox, warehouse, raise_on_error=False)
    assert not result.success
    pd.testing.assert_frame_equal(_table(warehouse), before)
    assert staging_tables(warehouse) == []
