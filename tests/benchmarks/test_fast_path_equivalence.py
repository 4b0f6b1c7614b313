"""The page-by-page time-entry path (``load_time_entries``: vectorised fast path, joins once
per run, duplicates and window applied at the end) gives exactly the frame of the reference
path (``search`` → ``split_by_window`` → ``build_raw_frame(time_entry_spec(...))``), for the
sandbox's data and for records of every awkward shape the per-record path handles."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any

import httpx
import pandas as pd
import pytest

from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.ingest.records import INGESTED_COLUMN
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.vendors.ibuildapp.assets import load_time_entries, split_by_window, time_entry_spec
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource
from timesheet_assets.vendors.ibuildapp.sandbox import build_state, render, ts_search_body

ANCHOR = date(2025, 3, 31)
FIRST = ANCHOR - timedelta(days=9)
TOKEN = "tok-0123456789"


def _pages(entries: list[Any], state, page_size: int, count: int | None = None) -> list[bytes]:
    pages = []
    for start in range(0, max(len(entries), 1), page_size):
        chunk = entries[start : start + page_size]
        body = ts_search_body(
            state, [e for e in chunk if isinstance(e, dict)], count or len(entries), ("users", "tasks", "projects")
        )
        body["data"]["time_entries"] = chunk  # keep non-objects too, in place
        pages.append(render(body))
    return pages


def _resource(pages: list[bytes], page_size: int, **overrides: Any) -> IBuildAppResource:
    def handler(request: httpx.Request) -> httpx.Response:
        offset = json.loads(request.content)["offset"]
        index = offset // page_size
        content = (
            pages[index]
            if index < len(pages)
            else render({"status": "SUCCESS", "data": {"time_entries": []}, "count": 0})
        )
        return httpx.Response(200, content=content, headers={"content-type": "application/json"})

    resource = IBuildAppResource(
        base_url="https://ibuildapp.test.invalid",
        app_code="tsdemo",
        token=TOKEN,
        page_size=page_size,
        requests_per_second=1e6,
        **overrides,
    )
    resource._client = resource.open_client(transport=httpx.MockTransport(handler))
    return resource


def _reference(resource: IBuildAppResource, first: date, last: date) -> tuple[pd.DataFrame, Any, int]:
    result = resource.search_time_entries(first, last)
    inside, outside = split_by_window(resource, result.records, first, last)
    raw = build_raw_frame(time_entry_spec(resource, result.related, first, last), inside, default_date=first)
    return raw, result, outside


def _compare(
    pages: list[bytes], page_size: int, first: date = FIRST, last: date = ANCHOR, **overrides: Any
) -> pd.DataFrame:
    reference, result, outside = _reference(_resource(pages, page_size, **overrides), first, last)
    expected = reference.frame.drop(columns=[INGESTED_COLUMN])
    for batch in (37, 10_000):  # several batches (a duplicate may span them) and one
        fast, load = load_time_entries(_resource(pages, page_size, **overrides), first, last, batch_records=batch)
        actual = fast.frame.drop(columns=[INGESTED_COLUMN])
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    assert str(fast.frame[INGESTED_COLUMN].dtype) == str(reference.frame[INGESTED_COLUMN].dtype)
    assert (fast.records_served, fast.quarantined) == (reference.records_served, reference.quarantined)
    assert (load.pages, load.reported_count, load.duplicates_dropped, load.outside_window) == (
        result.pages,
        result.reported_count,
        result.duplicates_dropped,
        outside,
    )
    return actual


def _state(records: int = 300):
    return build_state(
        SandboxConfig(seed=4, time_records=records, projects=5, employees=7, days=10, anchor_date=ANCHOR)
    )


def test_sandbox_data_is_identical():
    state = _state()
    entries = [state.entries[i] for i in sorted(state.entries)]
    frame = _compare(_pages(entries, state, 64), 64)
    assert len(frame) == 300 and frame["quarantine_reason"].isna().all()


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham"])
def test_timezones(zone):
    state = _state(120)
    entries = [state.entries[i] for i in sorted(state.entries)]
    entries[3]["start_time"] = int(pd.Timestamp(FIRST).timestamp())  # a window edge
    _compare(_pages(entries, state, 50), 50, timezone=zone)


def test_awkward_records_duplicates_and_window_edges():
    state = _state(200)
    entries = [copy.deepcopy(state.entries[i]) for i in sorted(state.entries)]
    odd: dict[int, Any] = {
        0: {"id": "17 ", "user_id": "3"},  # string ids (per-record path)
        1: {"start_time": "2025-03-25 10:00:00"},  # text timestamp
        2: {"duration": "n/a"},  # quarantined
        3: {"duration": ""},
        4: {"breaks": True},
        5: {"end_time": 1},  # end before start: quarantined
        6: {"start_time": 0},  # quarantined, unkeyed? no: keyed
        7: {"approve_date": 0, "updated": 0},  # not set
        8: {"task_id": None, "project_id": 2},  # entry's own project
        9: {"task_id": 99999},  # unknown task
        10: {"user_id": 424242},  # unknown user
        11: {"duration": 1.5, "breaks": None, "status": None},
        12: {"start_time": int(pd.Timestamp(ANCHOR + timedelta(days=1)).timestamp())},  # outside
        13: {"start_time": 99999999999},  # out of range
        14: {"id": 7.0},
        15: {"status": 5},
        16: {"comments": 10_001},
        17: {"extra": {"nested": [1, 2, {"x": None}]}, "project_id": [1, 2]},
        18: {"duration": float(31 * 24 * 3600)},
        19: {"created": -5},
    }
    for index, change in odd.items():
        entries[index].update(change)
    del entries[20]["user_id"]
    entries[21] = "not an object"
    entries[22] = ["a", "list"]
    entries[23] = {"no_id": True, "start_time": 1742900000}
    entries[24] = {"id": "", "user_id": 1, "start_time": 1742900000}
    entries[25] = copy.deepcopy(entries[150]) | {"status": "approved"}  # a duplicate id (newer later? no: earlier)
    entries[190] = copy.deepcopy(entries[30]) | {"status": "rejected", "duration": 60}  # newer copy, later page
    entries[191] = copy.deepcopy(entries[31]) | {
        "start_time": int(pd.Timestamp(ANCHOR + timedelta(days=3)).timestamp())
    }
    entries[192] = None
    frame = _compare(_pages(entries, state, 40), 40)
    assert frame["quarantine_reason"].notna().sum() >= 10
    assert frame["record_key"].str.startswith("unkeyed:").sum() >= 3


def test_side_tables_in_other_shapes_and_later_pages():
    state = _state(90)
    entries = [state.entries[i] for i in sorted(state.entries)]
    pages = []
    for start in range(0, 90, 30):
        body = ts_search_body(state, entries[start : start + 30], 90, ("users", "tasks", "projects"))
        if start == 0:
            body["data"]["users"] = list(body["data"]["users"].values())  # PHP list form
            body["data"]["tasks"]["1"] = "broken"
        if start == 30:
            body["data"]["users"]["3"] = {"id": 3, "first_name": "Late", "last_name": "Edit", "department": "Ops"}
        pages.append(render(body))
    _compare(pages, 30)


def test_empty_and_all_invalid_windows():
    state = _state(10)
    _compare([render({"status": "SUCCESS", "data": [], "count": 0})], 10)
    _compare(_pages([{"id": i, "bad": True} for i in range(5)], state, 10), 10)
