"""Offset paging over a list that changes while it is read: each walk is checked against the
search's ``count`` and read again when the list moved; the ``vendor_count_matches_rows`` check
compares the count with the rows landed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dagster as dg
import pytest

from tests.support.dagster_helpers import failure_text, materialization_metadata, materialize, read_table
from tests.support.step_retries import use_quick_step_retries
from tests.vendors.ibuildapp.conftest import resource_for, small_config
from timesheet_assets.ingest import RawFrame
from timesheet_assets.vendors.ibuildapp.assets import (
    ASSETS,
    RECONCILIATION_CHECK,
    TIME_ENTRIES_KEY,
    TimeEntryLoad,
    reconciliation_check_result,
    time_entries,
)
from timesheet_assets.vendors.ibuildapp.sandbox import IBuildAppMutations, entry_work_date, state_of

CONFIG = small_config(time_records=120, days=10)
FIRST, LAST = CONFIG.first_date + timedelta(days=3), CONFIG.anchor_date  # the last 7 days
PAGE = 20
TIME_ENTRIES = ["raw", "ibuildapp", "time_entries"]


def after_first_page(server, change: Callable[[IBuildAppMutations, dict[str, Any]], None], walks: int = 1):
    """Apply ``change`` once after the first page of each of the first ``walks`` walks of the
    window's ts/search (the page already served, the rest of the walk still to come)."""
    source: IBuildAppMutations = server.sandbox.extra["mutations"]
    seen = {"walks": 0}

    def hook(endpoint: str, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if endpoint == "ts/search" and "start_datetime" in params and params.get("offset") == 0:
            seen["walks"] += 1
            if seen["walks"] <= walks:
                change(source, body)
        return body

    server.sandbox.extra["transform_response"] = hook
    return seen


def window_keys(server) -> list[str]:
    return sorted(str(e["id"]) for e in state_of(server.app).entries.values() if FIRST <= entry_work_date(e) <= LAST)


def load(server, warehouse, **options: Any) -> dg.ExecuteInProcessResult:
    return materialize(
        [time_entries],
        {"ibuildapp": resource_for(server, page_size=PAGE, **options)},
        warehouse,
        first=FIRST,
        last=LAST,
        raise_on_error=False,
    )


def check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == RECONCILIATION_CHECK)


def _delete_from_served_page(source: IBuildAppMutations, body: dict[str, Any]) -> None:
    source.delete(str(body["data"]["time_entries"][0]["id"]))


def _move_an_earlier_entry_in(source: IBuildAppMutations, body: dict[str, Any]) -> None:
    # The lowest id outside the window: it sorts before the page being read.
    outside = source.entry_keys(CONFIG.first_date, FIRST - timedelta(days=1))
    source.move(min(outside, key=int), LAST - timedelta(days=1))


def _add_late(source: IBuildAppMutations, body: dict[str, Any]) -> None:
    source.add_late(LAST - timedelta(days=2))


@pytest.mark.parametrize(
    "change",
    [_delete_from_served_page, _move_an_earlier_entry_in, _add_late],
    ids=["deleted-behind-the-offset", "moved-in-before-the-offset", "added-late"],
)
def test_a_list_that_moved_mid_walk_is_read_again_and_lands_exactly(start_sandbox, warehouse, change):
    server = start_sandbox(CONFIG)
    seen = after_first_page(server, change)
    result = load(server, warehouse)
    assert result.success
    raw = read_table(warehouse, "ibuildapp.time_entries")
    assert sorted(raw["record_key"]) == window_keys(server)  # what the vendor holds now, once each
    assert seen["walks"] == 2
    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["list_walks"] == 2
    evaluation = check(result)
    assert evaluation.passed
    assert evaluation.metadata["list_server_total"].value == len(raw) + metadata["outside_window_skipped"]


def test_a_walk_that_missed_a_record_would_have_lost_it(start_sandbox):
    """The deletion variant bites: without a second walk, the record shifted behind the offset
    is never served."""
    server = start_sandbox(CONFIG)
    after_first_page(server, _delete_from_served_page)
    resource = resource_for(server, page_size=PAGE, max_list_reads=1)
    try:
        result = resource.search_time_entries(FIRST, LAST)
    finally:
        resource.close()
    served_now = {str(e["id"]) for e in state_of(server.app).entries.values()}
    read = {str(r["id"]) for r in result.records}
    assert not result.complete and result.problems
    assert len(served_now - read) >= 1  # a live entry the single walk never saw


def test_a_list_that_keeps_moving_keeps_the_union_and_the_check_names_what_differs(start_sandbox, warehouse):
    server = start_sandbox(CONFIG)
    deleted: list[str] = []

    def delete(source: IBuildAppMutations, body: dict[str, Any]) -> None:
        key = str(body["data"]["time_entries"][0]["id"])
        deleted.append(key)
        source.delete(key)

    after_first_page(server, delete, walks=3)
    result = load(server, warehouse)
    assert result.success
    raw = read_table(warehouse, "ibuildapp.time_entries")
    # Nothing the vendor still holds was lost; the entries deleted during the reads are kept
    # until the next run, and the check says so.
    assert set(window_keys(server)) <= set(raw["record_key"])
    assert set(deleted) <= set(raw["record_key"])
    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["list_walks"] == 3
    evaluation = check(result)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert (
        evaluation.metadata["difference"].value
        == len(raw) + metadata["outside_window_skipped"] - (evaluation.metadata["list_server_total"].value)
        > 0
    )
    named = {row["record_key"] for row in evaluation.metadata["not_in_last_read"].value}
    assert set(deleted[:2]) <= named
    assert all(key in evaluation.description for key in deleted[:2])


def test_a_record_no_read_ever_serves_fails_the_run_and_keeps_the_warehouse(start_sandbox, warehouse, monkeypatch):
    """A server whose order is not stable (a sort on a non-unique key) repeats one record
    across two pages and never serves another: every walk reads one distinct record fewer than
    ``count``. The run fails (an outage: a later retry may find a quiet list) rather than
    replace the window with what it could read."""
    use_quick_step_retries(monkeypatch, ASSETS)
    server = start_sandbox(CONFIG)
    assert load(server, warehouse).success
    before = read_table(warehouse, "ibuildapp.time_entries")
    previous: dict[str, Any] = {}

    def unstable(endpoint: str, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if endpoint == "ts/search" and "start_datetime" in params:
            rows = body["data"]["time_entries"]
            if params["offset"] == PAGE and rows:
                rows[0] = previous["last"]  # the last record of page 1 again; rows[0] is never served
            if rows:
                previous["last"] = rows[-1]
        return body

    server.sandbox.extra["transform_response"] = unstable
    result = load(server, warehouse)
    assert not result.success
    text = failure_text(result)
    assert "the list kept changing while it was read and is incomplete" in text
    assert "distinct records in 3 reads" in text
    assert read_table(warehouse, "ibuildapp.time_entries").equals(before)


def test_project_search_is_read_again_too(start_sandbox):
    server = start_sandbox(small_config(projects=9))
    state = state_of(server.app)
    seen = {"walks": 0}

    def delete_first(endpoint: str, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if endpoint == "project/search" and params.get("offset") == 0:
            seen["walks"] += 1
            if seen["walks"] == 1:
                del state.projects[body["data"]["projects"][0]["id"]]
        return body

    server.sandbox.extra["transform_response"] = delete_first
    resource = resource_for(server, page_size=3)
    try:
        result = resource.search_projects()
    finally:
        resource.close()
    assert result.reads == 2 and result.complete
    assert sorted(p["id"] for p in result.records) == sorted(state.projects)


def test_a_count_that_is_not_the_search_total_is_not_compared():
    load_info = TimeEntryLoad(
        pages=3, reported_count=2, duplicates_dropped=0, outside_window=0, side_tables=None, count_checkable=False
    )
    import pandas as pd

    evaluation = reconciliation_check_result(
        RawFrame(frame=pd.DataFrame({"a": range(5)}), records_served=5, quarantined=0), load_info
    )
    assert evaluation.passed and "nothing to compare" in evaluation.description
    assert evaluation.asset_key == TIME_ENTRIES_KEY
