"""The documentation's example bodies, served over HTTP, parse and conform; so do the looser
shapes the doc leaves open (side tables as lists, counts inside ``data`` or missing, ids and
timestamps as strings, unknown keys, missing optional keys)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.vendors.ibuildapp import doc_examples as doc
from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.vendors.ibuildapp.assets import project_spec, split_by_window, time_entry_spec
from timesheet_assets.vendors.ibuildapp.conform import conform_projects, conform_timesheets
from timesheet_assets.vendors.ibuildapp.models import Project, TimeEntry
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource, envelope_message

APP = "docapp"
DOC_DAY = date(2020, 3, 11)  # 1583905200 = 2020-03-11 05:40 UTC


class Replay:
    """A fake that answers each endpoint with a fixed body (or one per offset) and records
    what the client sent."""

    def __init__(self, ts_pages: Callable[[dict], dict], project_pages: Callable[[dict], dict]):
        self.bodies: dict[str, list[dict[str, Any]]] = {"login": [], "ts/search": [], "project/search": []}
        self.tokens_seen: list[str] = []
        self.ts_pages = ts_pages
        self.project_pages = project_pages

    def app(self) -> Starlette:
        async def login(request: Request):
            self.bodies["login"].append(json.loads(await request.body()))
            return JSONResponse(doc.LOGIN_RESPONSE)

        def search(name: str, answer: Callable[[dict], dict]):
            async def route(request: Request):
                header = request.headers.get("authorization", "")
                self.tokens_seen.append(header)
                if header != f"Bearer {doc.LOGIN_RESPONSE['token']}":
                    return JSONResponse(doc.UNAUTHORIZED_401, status_code=401)
                body = json.loads(await request.body())
                self.bodies[name].append(body)
                return JSONResponse(answer(body))

            return route

        return Starlette(
            routes=[
                Route(f"/api/{APP}/login", login, methods=["POST"]),
                Route(f"/api/{APP}/ts/search", search("ts/search", self.ts_pages), methods=["POST"]),
                Route(f"/api/{APP}/project/search", search("project/search", self.project_pages), methods=["POST"]),
            ]
        )


def _resource(server, **overrides: Any) -> IBuildAppResource:
    values: dict[str, Any] = dict(
        base_url=server.url, app_code=APP, email=doc.LOGIN_REQUEST["email"], password=doc.LOGIN_REQUEST["password"]
    )
    values.update(overrides)
    return IBuildAppResource(**values)


def _entries_frame(resource: IBuildAppResource, first: date, last: date):
    result = resource.search_time_entries(first, last)
    inside, _ = split_by_window(resource, result.records, first, last)
    return result, build_raw_frame(time_entry_spec(resource, result.related, first, last), inside, default_date=first)


def test_documented_examples_parse_and_conform_over_http(serve_app):
    replay = Replay(lambda body: doc.TS_SEARCH_RESPONSE, lambda body: doc.PROJECT_SEARCH_RESPONSE)
    server = serve_app(replay.app())
    resource = _resource(server)
    try:
        result, raw = _entries_frame(resource, DOC_DAY, DOC_DAY)
        projects = resource.search_projects()
    finally:
        resource.close()

    assert replay.bodies["login"] == [doc.LOGIN_REQUEST]
    sent = replay.bodies["ts/search"][0]
    day_start = int(datetime(2020, 3, 11, tzinfo=UTC).timestamp())
    # The window's end plus a day's margin: whether end_datetime bounds an entry's start or its
    # end, an entry starting on the last day and ending after midnight is served.
    assert sent == {
        "start_datetime": day_start,
        "end_datetime": day_start + 2 * 86400,
        "limit": 500,
        "offset": 0,
        "with": ["users", "tasks", "projects"],
    }
    assert replay.bodies["project/search"][0] == {"limit": 500, "offset": 0, "with": ["tasks", "clients"]}
    assert result.pages == 1 and result.reported_count == 1

    assert raw.quarantined == 0 and len(raw.frame) == 1
    conformed = conform_timesheets(raw.frame)
    row = conformed.iloc[0]
    assert row["source_system"] == "ibuildapp"
    assert row["entry_id"] == "0"  # id 0 is a real id, not "missing"
    assert row["work_date"] == DOC_DAY
    assert row["employee_id"] == "0" and row["employee_name"] == "string string"
    assert row["project_id"] == "0" and pd.isna(row["project_code"])
    assert row["task"] == "string"
    assert row["total_hours"] == 0.0 and row["regular_hours"] == 0.0 and row["overtime_hours"] == 0.0
    assert row["status"] == "submitted"  # in-progress with an end_time: ended, awaiting approval
    assert pd.isna(row["billable_hours"]) and pd.isna(row["source_updated_at"])
    assert json.loads(raw.frame.iloc[0]["payload"]) == doc.TS_SEARCH_RESPONSE["data"]["time_entries"][0]

    project_raw = build_raw_frame(project_spec(projects.related), projects.records)
    assert project_raw.quarantined == 0
    project = conform_projects(project_raw.frame).iloc[0]
    assert project["project_id"] == "0"
    assert project["name"] == "test project"
    assert project["status"] == "planned"  # new
    assert project["customer_id"] == "11" and project["customer_name"] == "Client name"
    assert project["start_date"] == date(2019, 8, 13) and project["end_date"] == date(2019, 8, 13)
    assert project_raw.frame.iloc[0]["task_names"] == "task name"


def test_documented_error_bodies_read_as_messages():
    assert envelope_message(doc.UNAUTHORIZED_401) == "Auth token not specified or incorrect. (error_code 9)"
    assert envelope_message(doc.PROJECT_NOT_FOUND_404) == "Project not found. (error_code 5)"
    assert envelope_message(doc.TS_SEARCH_RESPONSE) is None
    assert envelope_message({"status": "ERROR"}) == "error without a message"


@pytest.mark.parametrize("name", sorted(doc.OTHER_TIME_ENTRY_EXAMPLES))
def test_time_entry_shapes_elsewhere_in_the_doc_parse(name):
    entry = TimeEntry.model_validate(doc.OTHER_TIME_ENTRY_EXAMPLES[name])
    assert entry.start_time.tzinfo is not None
    assert entry.id and entry.user_id


def test_text_timestamps_are_utc():
    history = TimeEntry.model_validate(doc.OTHER_TIME_ENTRY_EXAMPLES["user/history time_entries[0]"])
    assert history.start_time == datetime(2019, 8, 13, 12, 4, 3, tzinfo=UTC)
    work = TimeEntry.model_validate(doc.OTHER_TIME_ENTRY_EXAMPLES["task/work_history time_entries[0]"])
    assert (work.end_time - work.start_time).total_seconds() == work.duration == 6020
    assert TimeEntry.model_validate(doc.OTHER_TIME_ENTRY_EXAMPLES["user/dashboard current_time_entry"]).comments is None


@pytest.mark.parametrize("name", sorted(doc.OTHER_PROJECT_EXAMPLES))
def test_project_shapes_elsewhere_in_the_doc_parse(name):
    project = Project.model_validate(doc.OTHER_PROJECT_EXAMPLES[name])
    assert project.id


def test_looser_shapes_are_tolerated(serve_app):
    """Two pages without any ``count`` (a short page ends the read), side tables as lists,
    string ids and timestamps, nulls, unknown keys; plus an entry outside the window."""
    day = date(2025, 3, 10)
    base = int(datetime(2025, 3, 10, 9, tzinfo=UTC).timestamp())

    def entry(i: int, **extra: Any) -> dict[str, Any]:
        return {
            "id": str(i),
            "user_id": "7",
            "task_id": 3,
            "start_time": str(base + i * 60),
            "duration": "1800",
            "status": "approved",
            "payment_status": None,
            "breaks": None,
            "shiny_new_field": {"x": 1},
            **extra,
        }

    pages = {
        0: {
            "status": "SUCCESS",
            "data": {
                "time_entries": [entry(1), entry(2, payment_status="payed")],
                "users": [{"id": 7, "first_name": "Ada", "last_name": None}],
                "tasks": [{"id": "3", "name": "Framing", "project": "5"}],
                "projects": {"5": {"id": 5, "name": "Depot", "client_id": None}},
            },
        },
        2: {
            "status": "SUCCESS",
            "data": {
                "time_entries": [
                    entry(3, start_time=base - 86400),
                    {"id": 4, "user_id": 7, "start_time": base, "duration": -5},
                ],
                "users": [],
                "tasks": [],
                "projects": [],
            },
        },
    }
    replay = Replay(
        lambda body: copy.deepcopy(pages.get(body["offset"], {"status": "SUCCESS", "data": []})),
        lambda body: {"status": "SUCCESS", "data": []},
    )
    server = serve_app(replay.app())
    resource = _resource(server, page_size=2)
    try:
        result, raw = _entries_frame(resource, day, day)
        projects = resource.search_projects()
    finally:
        resource.close()

    assert [b["offset"] for b in replay.bodies["ts/search"]] == [0, 2, 4]
    assert result.reported_count is None and len(result.records) == 4
    assert projects.records == [] and projects.pages == 1
    frame = raw.frame.set_index("record_key")
    assert sorted(frame.index) == ["1", "2", "4"]  # 3 started the day before
    assert frame.loc["1", "employee_name"] == "Ada"
    assert frame.loc["1", "task_name"] == "Framing" and frame.loc["1", "project_name"] == "Depot"
    assert "duration" in frame.loc["4", "quarantine_reason"]
    assert frame.loc["4", "work_date"] == day
    conformed = conform_timesheets(raw.frame).set_index("entry_id")
    assert sorted(conformed.index) == ["1", "2"]
    assert conformed.loc["1", "total_hours"] == 0.5 and conformed.loc["1", "status"] == "approved"
    assert conformed.loc["2", "status"] == "approved"  # payed: the client invoice, not payroll
    assert conformed.loc["1", "project_id"] == "5" and conformed.loc["1", "employee_id"] == "7"


def test_records_directly_under_data_are_read(serve_app):
    """An answer whose ``data`` is the list of entries itself (no side tables)."""
    entries = [
        {"id": 2, "user_id": 1, "task_id": 1, "start_time": "2019-08-22 07:03:46", "end_time": "2019-08-22 07:33:46"},
        {
            "id": 3,
            "user_id": 1,
            "task_id": 1,
            "status": "in-progress",
            "start_time": "2019-08-22 07:53:46",
            "end_time": "2019-08-28 07:42:24",
        },
    ]
    replay = Replay(
        lambda body: {"status": "SUCCESS", "message": "2 time entries found.", "data": entries},
        lambda body: {"status": "SUCCESS", "data": []},
    )
    server = serve_app(replay.app())
    resource = _resource(server)
    try:
        result, raw = _entries_frame(resource, date(2019, 8, 22), date(2019, 8, 22))
    finally:
        resource.close()
    assert result.pages == 1
    conformed = conform_timesheets(raw.frame).set_index("entry_id")
    assert conformed.loc["2", "total_hours"] == 0.5  # from the span: no duration served
    assert conformed.loc["3", "status"] == "submitted"  # in-progress, but it has ended
    assert conformed["employee_name"].isna().all()
