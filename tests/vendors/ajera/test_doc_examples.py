"""The example bodies of the Ajera documentation, served over HTTP, parse and conform."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from timesheet_assets.http import VendorHTTPError
from timesheet_assets.sandbox.framework import Sandbox, build_app
from timesheet_assets.vendors.ajera.assets import build_timesheet_frame, line_records
from timesheet_assets.vendors.ajera.conform import conform_timesheets
from timesheet_assets.vendors.ajera.models import TimesheetDetail
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.ajera.week import READINGS, WEEK_ENDING, WEEK_STARTING

FIXTURES = Path(__file__).parent / "fixtures"
DOC_API_ID = "ew0KICAiRGF0YWJhc2VOYW1lIjogIkFqZXJhX01haW4iDQp9"  # the id in the doc's example URI


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


RESPONSES = {
    "ListTimesheets": "list_timesheets_response",
    "GetTimesheets": "get_timesheets_response",
    "CreateTimesheet": "create_timesheet_response",
    "UpdateTimesheets": "update_timesheets_response",
    "SubmitTimesheets": "submit_timesheets_response",
}


def doc_replay_app(answers: dict[str, Any] | None = None):
    """Answers each method with the documentation's example response (or ``answers[method]``:
    a body, a ``Response``, or a function of the request body returning either), and records
    the requests."""
    received: list[dict] = []
    accepted: list[str | None] = []
    answers = answers or {}

    async def api(request: Request) -> Response:
        body = json.loads(await request.body())
        received.append(body)
        accepted.append(request.headers.get("accept"))
        method = body["Method"]
        answer = answers.get(method)
        if callable(answer) and not isinstance(answer, Response):  # a Response is an ASGI callable too
            answer = answer(body)
        if isinstance(answer, Response):
            return answer
        if answer is not None:
            return JSONResponse(answer)
        envelope = {"ResponseCode": 200, "Message": "Success", "Errors": [], "UsageKey": "u"}
        if method == "CreateAPISession":
            return JSONResponse({**envelope, "Content": {"SessionToken": "doc-session", "SessionExpiration": None}})
        if method == "EndAPISession":
            return JSONResponse({**envelope, "Content": None})
        return JSONResponse(fixture(RESPONSES[method]))

    app = build_app(Sandbox(name="ajera-doc"), [Route("/AjeraAPI.ashx", api, methods=["POST"])])
    app.state.received = received
    app.state.accept = accepted
    return app


def doc_resource(server, **overrides: Any) -> AjeraResource:
    return AjeraResource(
        base_url=f"{server.url}/AjeraAPI.ashx",
        api_id=DOC_API_ID,
        username="doc-user",
        password="doc-password",
        requests_per_second=50.0,
        **overrides,
    )


def fetch_doc_window(server, first: date, last: date, reading: str = WEEK_ENDING):
    """The documented week's day-rows in ``first``..``last``, read with ``reading``; returns
    the raw frame and the reconciliation numbers (``WeekHours``) of the valid weeks."""
    resource = doc_resource(server, timesheet_date=reading)
    try:
        fetch = resource.fetch_timesheets(first, last)
    finally:
        resource.close()
    return build_timesheet_frame(fetch)


# The documented timesheet is dated Sunday 2012-09-09 and has hours on D1..D3. Read as the week
# ending that Sunday (the default), D1..D7 are Monday 09-03..Sunday 09-09 and the hours fall on
# Monday to Wednesday; read as the week starting it, on Sunday to Tuesday.
DOC_WEEK = {WEEK_ENDING: (date(2012, 9, 3), date(2012, 9, 9)), WEEK_STARTING: (date(2012, 9, 9), date(2012, 9, 15))}


def doc_day(reading: str, n: int) -> str:
    """The ISO date of the documented week's ``D{n}`` under ``reading``."""
    return (DOC_WEEK[reading][0] + timedelta(days=n - 1)).isoformat()


def doc_day_rows(reading: str) -> set[str]:
    """The documented week's day-rows: project line 2 on D1..D3, overhead line 30 on D2..D3."""
    return {f"147:P2:{doc_day(reading, n)}" for n in (1, 2, 3)} | {f"147:O30:{doc_day(reading, n)}" for n in (2, 3)}


# The documented dates (2012) predate the code location's partitions, so these tests drive the
# resource and the raw-frame builder the asset uses directly, over HTTP.
@pytest.mark.parametrize("reading", READINGS)
def test_doc_list_and_get_examples_land_as_day_rows_and_conform(serve_app, reading):
    server = serve_app(doc_replay_app())
    built, weeks = fetch_doc_window(server, *DOC_WEEK[reading], reading)
    raw = built.frame
    assert raw["quarantine_reason"].isna().all()
    assert (built.records_served, built.quarantined) == (1, 0)
    hours = {row.record_key: (row.regular_hours, row.overtime_hours) for row in raw.itertuples()}
    d1, d2, d3 = (doc_day(reading, n) for n in (1, 2, 3))
    assert hours == {
        f"147:P2:{d1}": (8.0, 0.0),
        f"147:P2:{d2}": (4.0, 0.0),
        f"147:P2:{d3}": (5.0, 1.0),
        f"147:O30:{d2}": (4.0, 0.0),
        f"147:O30:{d3}": (3.0, 0.0),
    }
    # The payload of a day-row is its line as served plus the week and list fields.
    payload = json.loads(raw.set_index("record_key").loc[f"147:P2:{d3}", "payload"])
    assert payload["Section"] == "Project"
    assert payload["Detail"] == fixture("get_timesheets_response")["Content"]["Timesheets"][0]["Project"]["Detail"][0]
    assert payload["Timesheet"]["Timesheet Key"] == 147 and payload["TimesheetDate"] == "2012-09-09T00:00:00"
    # The documented "Timesheet Total" (25) equals the documented day cells.
    [week] = weeks
    assert (week.total, sum(week.cells.values())) == (25, 25)
    assert week.week == DOC_WEEK[reading]

    conformed = conform_timesheets(raw).set_index("entry_id")
    assert len(conformed) == 5
    assert conformed["total_hours"].sum() == 25
    day = conformed.loc[f"147:P2:{d3}"]
    assert (day.work_date, day.employee_id, day.employee_name) == (date.fromisoformat(d3), "30", "Christopher Meehan")
    assert (day.project_id, day.task, day.status) == ("32", "Foyer Remodel / Project Management", "draft")
    assert (day.regular_hours, day.overtime_hours, day.total_hours) == (5.0, 1.0, 6.0)
    assert day.notes == "Meeting with client about submitted floor plans."
    overhead = conformed.loc[f"147:O30:{d2}"]
    assert pd.isna(overhead.project_id) and overhead.task == "General"


def test_under_the_default_reading_the_documented_hours_fall_on_weekdays(serve_app):
    """The evidence for ``week_ending``: read that way, the documented Sunday-dated week has its
    hours Monday to Wednesday; read as ``week_starting``, 8 of them would be on a Sunday."""
    server = serve_app(doc_replay_app())
    built, _ = fetch_doc_window(server, *DOC_WEEK[WEEK_ENDING])
    days = {date.fromisoformat(key.rsplit(":", 1)[1]) for key in built.frame["record_key"]}
    assert sorted(d.strftime("%a") for d in days) == ["Mon", "Tue", "Wed"]
    assert (
        AjeraResource(base_url="https://x.example/AjeraAPI.ashx", api_id="i", username="u", password="p").timesheet_date
        == WEEK_ENDING
    )


def test_client_sends_only_documented_argument_names(serve_app):
    server = serve_app(doc_replay_app())
    built, _ = fetch_doc_window(server, date(2012, 9, 5), date(2012, 9, 5))
    received = {body["Method"]: body for body in server.app.state.received}
    assert list(received) == ["CreateAPISession", "ListTimesheets", "GetTimesheets", "EndAPISession"]
    for method, request in (("ListTimesheets", "list_timesheets_request"), ("GetTimesheets", "get_timesheets_request")):
        documented = fixture(request)
        assert set(received[method]) == set(documented) == {"Method", "SessionToken", "MethodArguments"}
        assert set(received[method]["MethodArguments"]) <= set(documented["MethodArguments"])
        assert received[method]["SessionToken"] == "doc-session"
    # Weeks dated up to six days before the window (a week starting then) and up to six days
    # after it (a week ending then) may hold its days: the listing asks for both.
    assert received["ListTimesheets"]["MethodArguments"] == {
        "FilterByEarliestTimesheetDate": "2012-08-30",
        "FilterByLatestTimesheetDate": "2012-09-11",
    }
    assert received["GetTimesheets"]["MethodArguments"] == {"RequestedTimesheets": [147]}
    assert received["EndAPISession"]["SessionToken"] == "doc-session"
    assert sorted(built.frame["record_key"]) == ["147:O30:2012-09-05", "147:P2:2012-09-05"]


def test_requests_say_they_accept_json_and_send_the_password_once(serve_app):
    """As the documented requests show them: ``Accept: application/json``, and the session's
    credentials at the top level of ``CreateAPISession`` (Deltek's general API page)."""
    server = serve_app(doc_replay_app())
    fetch_doc_window(server, *DOC_WEEK[WEEK_ENDING])
    bodies = server.app.state.received
    create = bodies[0]
    assert create == {
        "Method": "CreateAPISession",
        "Username": "doc-user",
        "Password": "doc-password",
        "APIVersion": 2,
        "UseSessionCookie": False,
    }
    assert sum(json.dumps(body).count("doc-password") for body in bodies) == 1
    assert server.app.state.accept == ["application/json"] * len(bodies)


@pytest.mark.parametrize("method", ["CreateTimesheet", "UpdateTimesheets", "SubmitTimesheets"])
def test_write_method_examples_parse_as_timesheets(serve_app, method):
    server = serve_app(doc_replay_app())
    resource = doc_resource(server)
    try:
        content = resource.call(method, fixture(RESPONSES[method].replace("response", "request"))["MethodArguments"])
    finally:
        resource.close()
    assert content["Timesheets"]
    for record in content["Timesheets"]:
        detail = TimesheetDetail.model_validate(record)
        assert detail.timesheet_key in (147, 148)
        assert line_records({"Timesheet Key": detail.timesheet_key}, record) == []


def test_what_the_doc_leaves_open_is_tolerated(serve_app):
    """Nulls where values are optional, missing optional keys, numbers as text, unknown keys,
    no ``Errors`` list, a detail without ``TimesheetDate``: the week still lands."""
    listed = fixture("list_timesheets_response")
    record = listed["Content"]["Timesheets"][0]
    record.update({"Employee": None, "Timesheet Total": "25", "Brand New Field": {"x": 1}})
    for gone in ("Project Manager Approved", "Billed", "Middle Name"):
        del record[gone]
    del listed["Errors"]
    detail_answer = fixture("get_timesheets_response")
    detail = detail_answer["Content"]["Timesheets"][0]
    del detail["TimesheetDate"]
    detail["Overhead"]["Totals"] = None
    project_line = detail["Project"]["Detail"][0]
    project_line.update({"D1 Regular": "8", "D2 Regular": None, "D3 Overtime": 1.0, "D5 Notes": None, "Extra": []})
    del project_line["D7 Regular"]
    server = serve_app(doc_replay_app({"ListTimesheets": listed, "GetTimesheets": detail_answer}))
    built, [week] = fetch_doc_window(server, *DOC_WEEK[WEEK_ENDING])
    assert built.quarantined == 0
    conformed = conform_timesheets(built.frame).set_index("entry_id")
    assert dict(conformed["total_hours"]) == {
        "147:P2:2012-09-03": 8.0,
        "147:P2:2012-09-05": 6.0,
        "147:O30:2012-09-04": 4.0,
        "147:O30:2012-09-05": 3.0,
    }
    assert set(conformed["employee_name"]) == {"Christopher Meehan"}  # from First/Last Name
    assert set(conformed["status"]) == {"draft"}
    assert (week.total, sum(week.cells.values())) == (25, 21)  # 21 h of cells against a total of 25


def test_an_errors_entry_fails_even_with_response_code_200(serve_app):
    answer = {
        "ResponseCode": 200,
        "Message": "Success",
        "Content": {"Timesheets": []},
        "Errors": [{"ErrorID": 17, "ErrorMessage": "Authorizing Employee is not set."}],
    }
    server = serve_app(doc_replay_app({"ListTimesheets": answer}))
    resource = doc_resource(server)
    try:
        with pytest.raises(VendorHTTPError) as failure:
            resource.fetch_timesheets(*DOC_WEEK[WEEK_ENDING])
    finally:
        resource.close()
    assert str(failure.value) == (
        "Ajera POST /AjeraAPI.ashx failed with HTTP 200 after 1 attempt: "
        "ListTimesheets: ResponseCode 200: Authorizing Employee is not set."
    )
    assert [b["Method"] for b in server.app.state.received] == ["CreateAPISession", "ListTimesheets", "EndAPISession"]
