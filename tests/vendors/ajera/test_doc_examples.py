"""The example bodies of the Ajera documentation, served over HTTP, parse and conform."""

from __future__ import annotations

import json
from datetime import date
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
    answers = answers or {}

    async def api(request: Request) -> Response:
        body = json.loads(await request.body())
        received.append(body)
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
    return app


def doc_resource(server) -> AjeraResource:
    return AjeraResource(
        base_url=f"{server.url}/AjeraAPI.ashx",
        api_id=DOC_API_ID,
        username="doc-user",
        password="doc-password",
        requests_per_second=50.0,
    )


def fetch_doc_window(server, first: date, last: date):
    resource = doc_resource(server)
    try:
        fetch = resource.fetch_timesheets(first, last)
    finally:
        resource.close()
    return build_timesheet_frame(fetch)


# The documented dates (2012) predate the code location's partitions, so these tests drive the
# resource and the raw-frame builder the asset uses directly, over HTTP.
def test_doc_list_and_get_examples_land_as_day_rows_and_conform(serve_app):
    server = serve_app(doc_replay_app())
    # The documented week starts Sunday 2012-09-09; D1..D7 are 09-09..09-15.
    built, reconciliation = fetch_doc_window(server, date(2012, 9, 9), date(2012, 9, 15))
    raw = built.frame
    assert raw["quarantine_reason"].isna().all()
    assert (built.records_served, built.quarantined) == (1, 0)
    hours = {row.record_key: (row.regular_hours, row.overtime_hours) for row in raw.itertuples()}
    assert hours == {
        "147:P2:2012-09-09": (8.0, 0.0),
        "147:P2:2012-09-10": (4.0, 0.0),
        "147:P2:2012-09-11": (5.0, 1.0),
        "147:O30:2012-09-10": (4.0, 0.0),
        "147:O30:2012-09-11": (3.0, 0.0),
    }
    # The payload of a day-row is its line as served plus the week and list fields.
    payload = json.loads(raw.set_index("record_key").loc["147:P2:2012-09-11", "payload"])
    assert payload["Section"] == "Project"
    assert payload["Detail"] == fixture("get_timesheets_response")["Content"]["Timesheets"][0]["Project"]["Detail"][0]
    assert payload["Timesheet"]["Timesheet Key"] == 147 and payload["TimesheetDate"] == "2012-09-09T00:00:00"
    # The documented "Timesheet Total" (25) equals the documented day cells.
    assert reconciliation == {"timesheets_checked": 1, "mismatched": []}

    conformed = conform_timesheets(raw).set_index("entry_id")
    assert len(conformed) == 5
    assert conformed["total_hours"].sum() == 25
    day = conformed.loc["147:P2:2012-09-11"]
    assert (day.work_date, day.employee_id, day.employee_name) == (date(2012, 9, 11), "30", "Christopher Meehan")
    assert (day.project_id, day.task, day.status) == ("32", "Foyer Remodel / Project Management", "draft")
    assert (day.regular_hours, day.overtime_hours, day.total_hours) == (5.0, 1.0, 6.0)
    assert day.notes == "Meeting with client about submitted floor plans."
    overhead = conformed.loc["147:O30:2012-09-10"]
    assert pd.isna(overhead.project_id) and overhead.task == "General"


def test_client_sends_only_documented_argument_names(serve_app):
    server = serve_app(doc_replay_app())
    built, _ = fetch_doc_window(server, date(2012, 9, 11), date(2012, 9, 11))
    received = {body["Method"]: body for body in server.app.state.received}
    assert list(received) == ["CreateAPISession", "ListTimesheets", "GetTimesheets", "EndAPISession"]
    for method, request in (("ListTimesheets", "list_timesheets_request"), ("GetTimesheets", "get_timesheets_request")):
        documented = fixture(request)
        assert set(received[method]) == set(documented) == {"Method", "SessionToken", "MethodArguments"}
        assert set(received[method]["MethodArguments"]) <= set(documented["MethodArguments"])
        assert received[method]["SessionToken"] == "doc-session"
    # A week starting up to six days before the first day still has days in the window.
    assert received["ListTimesheets"]["MethodArguments"] == {
        "FilterByEarliestTimesheetDate": "2012-09-05",
        "FilterByLatestTimesheetDate": "2012-09-11",
    }
    assert received["GetTimesheets"]["MethodArguments"] == {"RequestedTimesheets": [147]}
    assert received["EndAPISession"]["SessionToken"] == "doc-session"
    assert sorted(built.frame["record_key"]) == ["147:O30:2012-09-11", "147:P2:2012-09-11"]


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
    built, reconciliation = fetch_doc_window(server, date(2012, 9, 9), date(2012, 9, 15))
    assert built.quarantined == 0
    conformed = conform_timesheets(built.frame).set_index("entry_id")
    assert dict(conformed["total_hours"]) == {
        "147:P2:2012-09-09": 8.0,
        "147:P2:2012-09-11": 6.0,
        "147:O30:2012-09-10": 4.0,
        "147:O30:2012-09-11": 3.0,
    }
    assert set(conformed["employee_name"]) == {"Christopher Meehan"}  # from First/Last Name
    assert set(conformed["status"]) == {"draft"}
    assert reconciliation["mismatched"] == [147]  # 21 h of cells against a total of 25


def test_an_errors_entry_fails_even_with_response_code_200(serve_app):
    answer = {
        "ResponseCode": 200, "Message": "Success", "Content": {"Timesheets": []},
        "Errors": [{"ErrorID": 17, "ErrorMessage": "Authorizing Employee is not set."}],
    }
    server = serve_app(doc_replay_app({"ListTimesheets": answer}))
    resource = doc_resource(server)
    try:
        with pytest.raises(VendorHTTPError) as failure:
            resource.fetch_timesheets(date(2012, 9, 9), date(2012, 9, 15))
    finally:
        resource.close()
    assert str(failure.value) == (
        "Ajera POST /AjeraAPI.ashx failed with HTTP 200 after 1 attempt: "
        "ListTimesheets: ResponseCode 200: Authorizing Employee is not set."
    )
    assert [b["Method"] for b in server.app.state.received] == ["CreateAPISession", "ListTimesheets", "EndAPISession"]
