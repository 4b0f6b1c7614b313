"""Answers another implementation of the same Ajera documentation may give, where the
documentation leaves the choice open: the client must read them all the same way.

Each test serves a doc-conformant variant over real HTTP (the documentation's examples with one
choice changed, or the sandbox with one behaviour changed) and asserts what landed and which
calls were made.
"""

from __future__ import annotations

import copy
import json

import pytest
from starlette.responses import Response

from timesheet_assets.vendors.ajera.sandbox import ajera_state
from timesheet_assets.vendors.ajera.week import READINGS, WEEK_ENDING

from .conftest import resource_for, small_config
from .test_doc_examples import DOC_WEEK as DOC_WEEKS
from .test_doc_examples import doc_day_rows, doc_replay_app, doc_resource, fetch_doc_window, fixture

DOC_WEEK = DOC_WEEKS[WEEK_ENDING]
DOC_DAY_ROWS = doc_day_rows(WEEK_ENDING)
SUCCESS = {"ResponseCode": 200, "Message": "Success", "Errors": [], "UsageKey": "6e983af4-946f-4947-9fbd-a233f796f6b4"}


def methods_called(server) -> list[str]:
    return [body["Method"] for body in server.app.state.received]


def session_answer(**content) -> dict:
    return {**SUCCESS, "Content": {"SessionToken": "variant-session", **content}}


# -- sessions -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expiration",
    [
        1_900_000_000,  # epoch seconds
        "2099-01-01T10:30",  # no seconds, no offset
        "2099-01-01T10:30:00.1234567Z",
        "2099-01-01T10:30:00-05:00",
        "2099-01-01",
        "",
        None,
        {"Value": "2099-01-01T10:30:00"},
    ],
    ids=["epoch", "no-seconds", "fraction-Z", "offset", "date-only", "empty", "null", "object"],
)
def test_any_session_expiration_form_opens_one_session_for_the_run(serve_app, expiration):
    server = serve_app(doc_replay_app({"CreateAPISession": session_answer(SessionExpiration=expiration)}))
    built, _ = fetch_doc_window(server, *DOC_WEEK)
    assert set(built.frame["record_key"]) == DOC_DAY_ROWS
    assert methods_called(server) == ["CreateAPISession", "ListTimesheets", "GetTimesheets", "EndAPISession"]
    assert all(b.get("SessionToken") == "variant-session" for b in server.app.state.received[1:])


def test_session_without_expiration_field_opens_one_session(serve_app):
    server = serve_app(doc_replay_app({"CreateAPISession": session_answer()}))
    built, _ = fetch_doc_window(server, *DOC_WEEK)
    assert set(built.frame["record_key"]) == DOC_DAY_ROWS
    assert methods_called(server).count("CreateAPISession") == 1


def test_session_shorter_than_the_renew_margin_is_still_reused(ajera_server):
    # 20 s sessions against the default 60 s renewal margin: renewing "60 s early" would mean
    # a new (never ended) session before every single call.
    server = ajera_server(session_lifetime_seconds=20)
    state = ajera_state(server)
    resource = resource_for(server)
    config = small_config()
    try:
        for _ in range(4):
            resource.list_timesheets(config.first_date, config.anchor_date)
    finally:
        resource.close()
    assert state.calls("ListTimesheets") == 4
    assert state.calls("CreateAPISession") == 1
    assert state.calls("EndAPISession") == 1


def test_session_refusal_worded_as_invalid_token_recreates_the_session(serve_app):
    refusals = iter([True])

    def list_timesheets(body):
        if next(refusals, False):
            return {
                **SUCCESS,
                "ResponseCode": 400,
                "Message": "Bad Request",
                "Content": None,
                "Errors": [{"ErrorID": 9, "ErrorMessage": "Invalid token."}],
            }
        return fixture("list_timesheets_response")

    server = serve_app(doc_replay_app({"ListTimesheets": list_timesheets}))
    built, _ = fetch_doc_window(server, *DOC_WEEK)
    assert set(built.frame["record_key"]) == DOC_DAY_ROWS
    assert methods_called(server) == [
        "CreateAPISession",
        "ListTimesheets",
        "CreateAPISession",
        "ListTimesheets",
        "GetTimesheets",
        "EndAPISession",
    ]


# -- envelopes and empty result sets ---------------------------------------------------------------
def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


EMPTY_LISTS = {
    "empty-list": {**SUCCESS, "Content": {"Timesheets": []}},
    "null-list": {**SUCCESS, "Content": {"Timesheets": None}},
    "no-list-key": {**SUCCESS, "Content": {}},
    "null-content": {**SUCCESS, "Content": None},
    "no-content": dict(SUCCESS),
    "empty-string-content": {**SUCCESS, "Content": ""},
    "errors-empty-string": {**SUCCESS, "Errors": "", "Content": {"Timesheets": []}},
    "errors-null": {**SUCCESS, "Errors": None, "Content": {"Timesheets": []}},
    "errors-empty-object": {**SUCCESS, "Errors": {}, "Content": {"Timesheets": []}},
    "no-errors-no-usage-key": _without(_without({**SUCCESS, "Content": {"Timesheets": []}}, "Errors"), "UsageKey"),
    "code-as-text": {**SUCCESS, "ResponseCode": "200", "Content": {"Timesheets": []}},
}


@pytest.mark.parametrize("answer", list(EMPTY_LISTS.values()), ids=list(EMPTY_LISTS))
def test_every_form_of_an_empty_timesheet_list_lands_no_rows_without_failing(serve_app, answer):
    server = serve_app(doc_replay_app({"ListTimesheets": answer}))
    built, weeks = fetch_doc_window(server, *DOC_WEEK)
    assert built.frame.empty and (built.records_served, built.quarantined) == (0, 0)
    assert weeks == []
    assert methods_called(server) == ["CreateAPISession", "ListTimesheets", "EndAPISession"]


def test_records_under_an_unexpected_name_still_fail_as_malformed(serve_app):
    # Tolerating a missing list must not turn records filed under another name into "none".
    answer = {**SUCCESS, "Content": {"TimesheetList": fixture("list_timesheets_response")["Content"]["Timesheets"]}}
    server = serve_app(doc_replay_app({"ListTimesheets": answer}))
    resource = doc_resource(server)
    try:
        with pytest.raises(Exception, match="malformed answer: Content has no 'Timesheets' list"):
            resource.fetch_timesheets(*DOC_WEEK)
    finally:
        resource.close()


def test_record_list_key_in_another_case_is_read(serve_app):
    listed = fixture("list_timesheets_response")
    listed["Content"] = {"timesheets": listed["Content"]["Timesheets"]}
    server = serve_app(doc_replay_app({"ListTimesheets": listed}))
    built, _ = fetch_doc_window(server, *DOC_WEEK)
    assert set(built.frame["record_key"]) == DOC_DAY_ROWS


def test_json_with_charset_and_shuffled_envelope_lands_the_week(serve_app):
    listed = fixture("list_timesheets_response")
    shuffled = {k: listed[k] for k in reversed(list(listed))}
    body = json.dumps(shuffled).encode("utf-8")
    answer = Response(body, media_type="application/json; charset=utf-8")
    server = serve_app(doc_replay_app({"ListTimesheets": answer}))
    built, _ = fetch_doc_window(server, *DOC_WEEK)
    assert set(built.frame["record_key"]) == DOC_DAY_ROWS


# -- keys and weeks -------------------------------------------------------------------------------
@pytest.mark.parametrize("listed_key, detail_key", [("147.0", 147), (147.0, "147"), ("147", 147.0)])
def test_keys_as_numeric_text_or_floats_still_pair_list_and_detail(serve_app, listed_key, detail_key):
    listed = fixture("list_timesheets_response")
    listed["Content"]["Timesheets"][0]["Timesheet Key"] = listed_key
    detail = fixture("get_timesheets_response")
    detail["Content"]["Timesheets"][0]["TimesheetKey"] = detail_key
    server = serve_app(doc_replay_app({"ListTimesheets": listed, "GetTimesheets": detail}))
    built, _ = fetch_doc_window(server, *DOC_WEEK)
    assert built.quarantined == 0
    assert set(built.frame["record_key"]) == DOC_DAY_ROWS
    [get] = [b for b in server.app.state.received if b["Method"] == "GetTimesheets"]
    assert get["MethodArguments"] == {"RequestedTimesheets": [147]}


@pytest.mark.parametrize("reading", READINGS)
def test_listed_weeks_outside_the_window_are_neither_fetched_nor_quarantined(serve_app, reading):
    # A server may list more than the filter range asks for (e.g. every week that overlaps it),
    # and the listing asks for the weeks of both readings: weeks without a day in the window
    # under the configured reading are not this run's business.
    listed = fixture("list_timesheets_response")
    doc_week = listed["Content"]["Timesheets"][0]
    earlier = {**copy.deepcopy(doc_week), "Timesheet Key": 140, "Timesheet Date": "2012-09-02T00:00:00"}
    later = {**copy.deepcopy(doc_week), "Timesheet Key": 150, "Timesheet Date": "2012-09-16"}
    listed["Content"]["Timesheets"] = [earlier, doc_week, later]
    server = serve_app(doc_replay_app({"ListTimesheets": listed}))
    resource = doc_resource(server, timesheet_date=reading)
    try:
        fetch = resource.fetch_timesheets(*DOC_WEEKS[reading])
    finally:
        resource.close()
    assert fetch.outside_window == 2
    built, _ = fetch_doc_window(server, *DOC_WEEKS[reading], reading)
    assert built.quarantined == 0 and built.records_served == 1
    assert set(built.frame["record_key"]) == doc_day_rows(reading)
    gets = [b for b in server.app.state.received if b["Method"] == "GetTimesheets"]
    assert all(get["MethodArguments"] == {"RequestedTimesheets": [147]} for get in gets)


# -- paging ---------------------------------------------------------------------------------------
def test_paging_travels_beside_method_arguments(serve_app):
    """Deltek's general API page: ``PageResults``, ``PageNumber`` and ``PageSize`` are
    properties of the request body, next to ``MethodArguments``."""
    projects = [{"ProjectKey": k, "ID": f"P{k}", "Description": "x", "Status": "Active"} for k in (1, 2, 3)]

    def list_projects(body):
        return {
            **SUCCESS,
            "PageSize": body["PageSize"],
            "PageNumber": body["PageNumber"],
            "PageCount": 1,
            "Content": {"Projects": projects},
        }

    server = serve_app(doc_replay_app({"ListProjects": list_projects}))
    resource = doc_resource(server)
    try:
        records, pages = resource.list_projects()
    finally:
        resource.close()
    [body] = [b for b in server.app.state.received if b["Method"] == "ListProjects"]
    assert (body["PageResults"], body["PageNumber"], body["PageSize"]) == (True, 1, 500)
    assert body["MethodArguments"] == {}
    assert (len(records), pages) == (3, 1)


def test_page_count_ends_the_list_without_a_confirming_call(ajera_server):
    server = ajera_server(small_config(projects=8))
    state = ajera_state(server)
    records, pages = _list_projects(server, page_size=3)
    assert sorted(r["ProjectKey"] for r in records) == [p["ProjectKey"] for p in state.dataset.projects]
    assert pages == state.calls("ListProjects") == 3  # PageCount 3: pages of 3, 3 and 2


def test_page_count_of_an_exact_multiple_costs_no_empty_page(ajera_server):
    server = ajera_server(small_config(projects=6))
    state = ajera_state(server)
    records, pages = _list_projects(server, page_size=3)
    assert len(records) == 6
    assert pages == state.calls("ListProjects") == 2


def test_project_pages_capped_below_the_requested_size_are_all_read(ajera_server):
    """A server may serve fewer records per page than ``PageSize`` asks for (its own maximum)
    and give no ``PageCount``: a page shorter than asked is then not the last one."""
    server = ajera_server(small_config(projects=8))
    state = ajera_state(server)
    state.page_size_cap, state.page_count_field = 3, False
    records, pages = _list_projects(server)
    assert sorted(r["ProjectKey"] for r in records) == [p["ProjectKey"] for p in state.dataset.projects]
    assert pages == state.calls("ListProjects") == 3  # 3 + 3 + 2: the last short page ends it


def test_single_short_project_page_without_page_count_costs_one_confirming_call(ajera_server):
    server = ajera_server(small_config(projects=5))
    state = ajera_state(server)
    state.page_count_field = False
    records, pages = _list_projects(server)
    assert len(records) == 5
    assert state.calls("ListProjects") == pages == 2  # 5 records, then an empty page 2


def test_a_server_that_ignores_paging_is_read_once(ajera_server):
    """A server answering every page with the whole list (no paging, no PageCount): the second
    page repeats the first and ends the list, every project once."""
    server = ajera_server(small_config(projects=7))
    state = ajera_state(server)
    state.ignore_paging = True
    records, pages = _list_projects(server, page_size=3)
    assert sorted(r["ProjectKey"] for r in records) == [p["ProjectKey"] for p in state.dataset.projects]
    assert state.calls("ListProjects") == pages == 2


def _list_projects(server, page_size: int = 500):
    """Every project and the pages read."""
    resource = resource_for(server, page_size=page_size)
    try:
        return resource.list_projects()
    finally:
        resource.close()
