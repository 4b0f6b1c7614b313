"""Choices the documentation leaves open, served over HTTP the way another implementation of
the same API could make them: ISO-8601 text timestamps, a ``count`` that counts the page
rather than the search, ``data`` "packed to JSON string"."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest

from tests.vendors.ibuildapp.test_doc_examples import Replay, _resource
from timesheet_assets.http import VendorHTTPError
from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.vendors.ibuildapp.assets import load_time_entries, project_spec
from timesheet_assets.vendors.ibuildapp.conform import conform_projects, conform_timesheets

DAY = date(2025, 3, 10)
NINE = datetime(2025, 3, 10, 9, tzinfo=UTC)
NINE_EPOCH = int(NINE.timestamp())


def _entry(entry_id: int, start: Any = NINE_EPOCH, end: Any = NINE_EPOCH + 1800, **extra: Any) -> dict[str, Any]:
    return {
        "id": entry_id,
        "user_id": 7,
        "task_id": 3,
        "start_time": start,
        "end_time": end,
        "duration": 1800,
        "status": "approved",
        "payment_status": "pending",
        **extra,
    }


def _page(entries: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {
        "status": "SUCCESS",
        "message": f"{len(entries)} time entries found.",
        "data": {"time_entries": entries},
        **top,
    }


NO_PROJECTS = {"status": "SUCCESS", "data": {"projects": []}, "count": 0}


def _load(serve_app, ts_answer, project_answer=lambda body: NO_PROJECTS, **resource_options: Any):
    replay = Replay(ts_answer, project_answer)
    resource = _resource(serve_app(replay.app()), **resource_options)
    try:
        raw, load = load_time_entries(resource, DAY, DAY)
        projects = resource.search_projects()
    finally:
        resource.close()
    return replay, raw, load, projects


@pytest.mark.parametrize(
    "start, end",
    [
        ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        ("2025-03-10T09:00:00+00:00", "2025-03-10T09:30:00+00:00"),
        ("2025-03-10T11:00:00+02:00", "2025-03-10T11:30:00+02:00"),
        ("2025-03-10 09:00:00.000", "2025-03-10 09:30:00.250"),
        ("2025-03-10T09:00:00.123456Z", "2025-03-10T09:30:00.123456Z"),
        ("2025-03-10 09:00", "2025-03-10 09:30"),
        (NINE_EPOCH + 0.0, NINE_EPOCH + 1800.0),
    ],
    ids=["Z", "+00:00", "+02:00", "fraction-no-offset", "micro-Z", "no-seconds", "float-epoch"],
)
def test_iso_text_timestamps_are_read_not_quarantined(serve_app, start, end):
    _, raw, _, _ = _load(serve_app, lambda body: _page([_entry(1, start, end)], count=1))
    assert raw.quarantined == 0, raw.frame["quarantine_reason"].tolist()
    row = raw.frame.iloc[0]
    assert row["start_time"].floor("s") == pd.Timestamp(NINE)
    assert row["work_date"] == DAY
    conformed = conform_timesheets(raw.frame)
    assert conformed.iloc[0]["total_hours"] == 0.5


def test_project_dates_as_date_or_iso_text_are_read(serve_app):
    project = {
        "id": 4,
        "name": "Depot",
        "client_id": 11,
        "status": "IN-PROGRESS",
        "planned_start_date": "2025-01-05",
        "actual_start_date": "2025-01-06T00:00:00Z",
        "planned_end_date": "2025-06-30T00:00:00+00:00",
        "actual_end_date": "",
        "tasks": [],
    }
    _, _, _, projects = _load(
        serve_app,
        lambda body: _page([], count=0),
        lambda body: {"status": "SUCCESS", "data": {"projects": [project]}, "count": 1},
    )
    raw = build_raw_frame(project_spec(projects.related), projects.records)
    assert raw.quarantined == 0, raw.frame["quarantine_reason"].tolist()
    row = conform_projects(raw.frame).iloc[0]
    assert row["status"] == "active"
    assert row["start_date"] == date(2025, 1, 6) and row["end_date"] == date(2025, 6, 30)


def _paged(entries: list[dict[str, Any]], count_of) -> Any:
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        chosen = entries[body["offset"] : body["offset"] + body["limit"]]
        return _page(chosen, count=count_of(chosen))

    return answer


def test_count_of_the_page_rather_than_the_search_still_reads_every_page(serve_app):
    entries = [_entry(i, NINE_EPOCH + i * 60, NINE_EPOCH + i * 60 + 30) for i in range(1, 6)]
    replay, raw, load, _ = _load(serve_app, _paged(entries, len), page_size=2)
    assert sorted(raw.frame["record_key"]) == ["1", "2", "3", "4", "5"]
    assert raw.quarantined == 0
    # The short third page ends the read.
    assert [b["offset"] for b in replay.bodies["ts/search"]] == [0, 2, 4]
    assert load.pages == 3


def test_total_count_still_ends_the_read_without_an_extra_call(serve_app):
    entries = [_entry(i, NINE_EPOCH + i * 60, NINE_EPOCH + i * 60 + 30) for i in range(1, 5)]
    replay, raw, _, _ = _load(serve_app, _paged(entries, lambda page: len(entries)), page_size=2)
    assert len(raw.frame) == 4
    assert [b["offset"] for b in replay.bodies["ts/search"]] == [0, 2]


def test_one_full_page_whose_count_matches_it_asks_once_more(serve_app):
    """A full first page with ``count`` equal to its rows is either the whole search or just
    this page: one more call decides (an empty page ends the read)."""
    entries = [_entry(i, NINE_EPOCH + i * 60, NINE_EPOCH + i * 60 + 30) for i in range(1, 3)]
    replay, raw, _, _ = _load(serve_app, _paged(entries, len), page_size=2)
    assert len(raw.frame) == 2
    assert [b["offset"] for b in replay.bodies["ts/search"]] == [0, 2]


def test_data_packed_to_json_string_is_unpacked(serve_app):
    data = {
        "time_entries": [_entry(1)],
        "users": {"7": {"id": 7, "first_name": "Ada", "last_name": "Byron"}},
        "tasks": {"3": {"id": 3, "name": "Framing", "project": 5}},
        "projects": {"5": {"id": 5, "name": "Depot"}},
    }
    project_data = {
        "projects": [{"id": 5, "name": "Depot", "client_id": 11, "tasks": [3]}],
        "tasks": {"3": {"id": 3, "name": "Framing"}},
        "clients": {"11": {"id": 11, "name": "Bank West"}},
    }
    _, raw, _, projects = _load(
        serve_app,
        lambda body: {"status": "SUCCESS", "data": json.dumps(data), "count": 1},
        lambda body: {"status": "SUCCESS", "data": json.dumps(project_data), "count": "1"},
    )
    assert raw.quarantined == 0 and list(raw.frame["record_key"]) == ["1"]
    row = raw.frame.iloc[0]
    assert row["employee_name"] == "Ada Byron" and row["task_name"] == "Framing" and row["project_name"] == "Depot"
    project_raw = build_raw_frame(project_spec(projects.related), projects.records)
    assert project_raw.frame.iloc[0]["client_name"] == "Bank West"
    assert project_raw.frame.iloc[0]["task_names"] == "Framing"


@pytest.mark.parametrize("empty", ["", "[]", "{}", "null"], ids=["blank", "list", "object", "null"])
def test_empty_result_packed_to_json_string_is_empty_in_one_call(serve_app, empty):
    replay, raw, load, _ = _load(serve_app, lambda body: {"status": "SUCCESS", "data": empty, "count": 0})
    assert len(raw.frame) == 0 and load.pages == 1
    assert len(replay.bodies["ts/search"]) == 1


def test_data_string_that_is_not_json_still_fails_the_read(serve_app):
    replay = Replay(
        lambda body: {"status": "SUCCESS", "data": "<html>maintenance</html>", "count": 3}, lambda body: NO_PROJECTS
    )
    resource = _resource(serve_app(replay.app()))
    try:
        with pytest.raises(VendorHTTPError, match="'data' is a string"):
            load_time_entries(resource, DAY, DAY)
    finally:
        resource.close()
    assert len(replay.bodies["ts/search"]) == 1
