"""The Ajera sandbox is as strict as the documentation: every refusal is the documented envelope."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest

from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.vendors.ajera.sandbox import (
    API_ID,
    ENDPOINT,
    PASSWORD,
    USERNAME,
    ajera_state,
    build_dataset,
    day_cells,
    expected_projects,
    expected_timesheets,
    sandbox_env,
    timesheet_date_for,
)
from timesheet_assets.vendors.ajera.week import READINGS, WEEK_ENDING, first_day

from .conftest import small_config


@pytest.fixture
def api(ajera_server):
    server = ajera_server()

    def post(body, *, query: str = API_ID):
        response = httpx.post(f"{server.url}{ENDPOINT}?{query}", json=body)
        return response.status_code, response.json()

    return post


def session(api, version=2) -> str:
    status, body = api(
        {
            "Method": "CreateAPISession",
            "Username": USERNAME,
            "Password": PASSWORD,
            "APIVersion": version,
            "UseSessionCookie": False,
        }
    )
    assert status == 200 and body["ResponseCode"] == 200 and body["Errors"] == []
    assert body["Content"]["SessionExpiration"]
    return body["Content"]["SessionToken"]


def refusal(answer) -> tuple[int, int, str]:
    status, body = answer
    assert body["Content"] is None and len(body["Errors"]) == 1
    return status, body["ResponseCode"], body["Errors"][0]["ErrorMessage"]


def test_refusals_use_the_documented_envelope(api):
    token = session(api)
    cases = [
        (
            api({"Method": "ListTimesheets", "SessionToken": token}, query=""),
            (200, 400, "The API id in the URL is missing or not valid."),
        ),
        (
            api({"Method": "ListTimesheets", "SessionToken": token}, query="wrong"),
            (200, 400, "The API id in the URL is missing or not valid."),
        ),
        (api({"Method": "DeleteEverything", "SessionToken": token}), (200, 400, "Unknown method 'DeleteEverything'")),
        (
            api({"Method": "GetTimesheets", "SessionToken": token, "MethodArguments": {}}),
            (200, 400, "GetTimesheets: RequestedTimesheets is required"),
        ),
        (
            api({"Method": "GetTimesheets", "SessionToken": token, "MethodArguments": {"RequestedTimesheets": ["1"]}}),
            (200, 400, "GetTimesheets: RequestedTimesheets must be an array of integers"),
        ),
        (
            api({"Method": "ListTimesheets", "SessionToken": token, "MethodArguments": {"FilterByWeek": 1}}),
            (200, 400, "ListTimesheets: unknown argument(s) FilterByWeek"),
        ),
        (
            api(
                {
                    "Method": "ListTimesheets",
                    "SessionToken": token,
                    "MethodArguments": {"FilterByEarliestTimesheetDate": "soon"},
                }
            ),
            (200, 400, "ListTimesheets: FilterByEarliestTimesheetDate must be a date (YYYY-MM-DD)"),
        ),
        (
            api(
                {"Method": "ListProjects", "SessionToken": token, "PageResults": True, "PageNumber": 0, "PageSize": 10}
            ),
            (200, 400, "ListProjects: PageNumber must be 1 or greater"),
        ),
        (
            api(
                {
                    "Method": "ListProjects",
                    "SessionToken": token,
                    "PageResults": True,
                    "PageNumber": 1,
                    "PageSize": 1001,
                }
            ),
            (200, 400, "ListProjects: PageSize must be between 1 and 1000"),
        ),
        # Paging belongs beside MethodArguments (the general API page), not inside it.
        (
            api(
                {
                    "Method": "ListProjects",
                    "SessionToken": token,
                    "MethodArguments": {"PageResults": True, "PageNumber": 1, "PageSize": 10},
                }
            ),
            (200, 400, "ListProjects: unknown argument(s) PageNumber, PageResults, PageSize"),
        ),
        (
            api({"Method": "ListProjects", "SessionToken": "not-a-session"}),
            (200, 401, "Invalid or expired session token."),
        ),
        (api({"Method": "ListProjects"}), (200, 401, "SessionToken is required.")),
        (
            api({"Method": "CreateAPISession", "Username": USERNAME, "Password": "nope", "APIVersion": 2}),
            (200, 401, "Invalid username or password."),
        ),
        (
            api({"Method": "CreateAPISession", "Username": USERNAME, "Password": PASSWORD, "APIVersion": 3}),
            (200, 400, "CreateAPISession: APIVersion must be one of 1, 2"),
        ),
    ]
    for answer, expected in cases:
        assert refusal(answer) == expected


def test_non_json_body_is_http_400_with_the_envelope(ajera_server):
    server = ajera_server()
    response = httpx.post(f"{server.url}{ENDPOINT}?{API_ID}", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["Errors"][0]["ErrorMessage"] == "Request body is not valid JSON."


def test_credentials_belong_at_the_top_level_of_the_session_call(api):
    """As the general API page shows ``CreateAPISession``: credentials beside ``Method``."""
    assert refusal(
        api(
            {
                "Method": "CreateAPISession",
                "MethodArguments": {
                    "Username": USERNAME,
                    "Password": PASSWORD,
                    "APIVersion": 1,
                    "UseSessionCookie": False,
                },
            }
        )
    ) == (200, 400, "CreateAPISession: unknown argument(s) APIVersion, Password, UseSessionCookie, Username")


def test_timesheet_methods_need_an_api_version_2_session(api):
    token = session(api, version=1)
    assert refusal(api({"Method": "ListTimesheets", "SessionToken": token})) == (
        200,
        400,
        "Unauthorized method ListTimesheets for api version 1 but is supported with api version 2",
    )
    status, body = api({"Method": "ListProjects", "SessionToken": token})
    assert body["ResponseCode"] == 200 and body["Content"]["Projects"]


def test_get_projects_answers_flat_lists_to_version_2_and_nested_projects_to_version_1(api):
    keys = [100, 101]
    flat = api(
        {"Method": "GetProjects", "SessionToken": session(api, 2), "MethodArguments": {"RequestedProjects": keys}}
    )[1]
    nested = api(
        {"Method": "GetProjects", "SessionToken": session(api, 1), "MethodArguments": {"RequestedProjects": keys}}
    )[1]
    assert set(flat["Content"]) == {"Projects", "InvoiceGroups", "Phases", "Resources"}
    assert all("InvoiceGroups" not in p for p in flat["Content"]["Projects"])
    assert {g["ProjectKey"] for g in flat["Content"]["InvoiceGroups"]} == set(keys)
    assert all({"ClientKey", "ClientDescription"} <= set(g) for g in flat["Content"]["InvoiceGroups"])
    assert {p["ProjectKey"] for p in flat["Content"]["Phases"]} == set(keys)
    assert set(nested["Content"]) == {"Projects"}
    assert all(p["InvoiceGroups"][0]["Client"]["ClientKey"] for p in nested["Content"]["Projects"])


def test_paging_filters_and_employee_methods(api):
    token = session(api)
    config = small_config()
    answers = [
        api({"Method": "ListProjects", "SessionToken": token, "PageResults": True, "PageNumber": n, "PageSize": 4})[1]
        for n in (1, 2, 3)
    ]
    pages = [a["Content"]["Projects"] for a in answers]
    assert [len(p) for p in pages] == [4, 2, 0]
    assert [(a["PageSize"], a["PageNumber"], a["PageCount"]) for a in answers] == [(4, 1, 2), (4, 2, 2), (4, 3, 2)]
    assert len({p["ProjectKey"] for page in pages for p in page}) == config.projects
    default = api({"Method": "ListProjects", "SessionToken": token, "PageResults": True})[1]
    assert (default["PageSize"], default["PageNumber"]) == (10, 1)  # the general page's defaults
    unpaged = api({"Method": "ListProjects", "SessionToken": token})[1]
    assert "PageCount" not in unpaged and len(unpaged["Content"]["Projects"]) == config.projects
    employees = api(
        {"Method": "ListEmployees", "SessionToken": token, "PageResults": True, "PageNumber": 1, "PageSize": 3}
    )[1]["Content"]["Employees"]
    assert len(employees) == 3
    detail = api(
        {
            "Method": "GetEmployees",
            "SessionToken": token,
            "MethodArguments": {"RequestedEmployees": [employees[0]["EmployeeKey"]]},
        }
    )[1]["Content"]["Employees"]
    assert detail[0]["LastName"] == employees[0]["LastName"]
    week = timesheet_date_for(config.anchor_date, WEEK_ENDING)
    listed = api(
        {
            "Method": "ListTimesheets",
            "SessionToken": token,
            "MethodArguments": {
                "FilterByEarliestTimesheetDate": week.isoformat(),
                "FilterByLatestTimesheetDate": week.isoformat(),
                "FilterBySubmitted": True,
            },
        }
    )[1]["Content"]["Timesheets"]
    assert listed and all(t["Timesheet Date"] == week.isoformat() and t["Submitted"] for t in listed)


@pytest.mark.parametrize("reading", READINGS)
def test_every_timesheet_date_is_a_sunday_and_the_reading_places_the_week(reading):
    """Both readings serve Sunday-dated weeks (as the document's examples are); the reading
    alone says whether the Sunday ends or starts the week."""
    config = SandboxConfig(seed=3, time_records=60, days=30, anchor_date=date(2025, 6, 18))
    dataset = build_dataset(config, reading)
    dates = {date.fromisoformat(t["list"]["Timesheet Date"]) for t in dataset.timesheets.values()}
    assert {d.strftime("%a") for d in dates} == {"Sun"}
    starts = {first_day(d, reading) for d in dates}
    assert {d.strftime("%a") for d in starts} == {"Mon" if reading == WEEK_ENDING else "Sun"}
    # Every worked day lies in the week of its timesheet.
    for key in day_cells(dataset, config.first_date, config.anchor_date):
        timesheet = dataset.timesheets[int(key.split(":")[0])]
        day = date.fromisoformat(key.rsplit(":", 1)[1])
        assert 0 <= (day - dataset.week_first_day(timesheet)).days <= 6


def test_list_cap_cuts_answers_silently(ajera_server):
    server = ajera_server(small_config(time_records=40), list_cap=7)
    response = httpx.post(
        f"{server.url}{ENDPOINT}?{API_ID}",
        json={"Method": "CreateAPISession", "Username": USERNAME, "Password": PASSWORD, "APIVersion": 2},
    )
    token = response.json()["Content"]["SessionToken"]
    listed = httpx.post(
        f"{server.url}{ENDPOINT}?{API_ID}", json={"Method": "ListTimesheets", "SessionToken": token}
    ).json()
    assert listed["ResponseCode"] == 200 and listed["Errors"] == []
    assert len(listed["Content"]["Timesheets"]) == 7


def test_data_is_deterministic_and_covers_the_configured_days():
    config = SandboxConfig(seed=3, time_records=60, days=30, anchor_date=date(2025, 6, 18))
    assert build_dataset(config) == build_dataset(config)
    cells = day_cells(build_dataset(config), config.first_date, config.anchor_date)
    worked = {date.fromisoformat(key.rsplit(":", 1)[1]) for key in cells}
    assert min(worked) >= config.first_date and max(worked) <= config.anchor_date
    assert (
        day_cells(build_dataset(config), config.first_date - timedelta(days=7), config.first_date - timedelta(days=1))
        == {}
    )
    assert len(build_dataset(config).timesheets) == 60
    flags = [t["list"] for t in build_dataset(config).timesheets.values()]
    assert any(f["Paid"] for f in flags) and any(f["Rejected"] for f in flags)
    assert any(t["detail"]["Overhead"]["Detail"] for t in build_dataset(config).timesheets.values())
    expected = expected_timesheets(config, config.first_date, config.anchor_date)
    assert expected == {"lines": len(cells), "total_hours": sum(cells.values())}
    assert expected_projects(config) == config.projects


def test_sandbox_env_names_every_design_variable():
    env = sandbox_env("http://127.0.0.1:8999/")
    assert env == {
        "AJERA_BASE_URL": "http://127.0.0.1:8999/AjeraAPI.ashx",
        "AJERA_API_ID": API_ID,
        "AJERA_USERNAME": USERNAME,
        "AJERA_PASSWORD": PASSWORD,
    }
    assert sandbox_env("http://127.0.0.1:8999/", "week_starting")["AJERA_TIMESHEET_DATE"] == "week_starting"


def test_mutations_change_the_served_weeks_as_ajera_users_do(ajera_server, reading):
    from timesheet_assets.sandbox.mutations import SourceMutations

    config = small_config(days=28)
    server = ajera_server(config, timesheet_date=reading)
    state = ajera_state(server)
    source = server.sandbox.extra["mutations"]
    assert isinstance(source, SourceMutations)
    first, last = config.first_date, config.anchor_date

    def lines() -> dict[str, tuple[float, str]]:
        frame = source.expected_lines(first, last)
        return {r.entry_id: (r.total_hours, r.status) for r in frame.itertuples()}

    def total(key: str) -> float:
        return state.dataset.timesheets[int(key.split(":")[0])]["list"]["Timesheet Total"]

    before = lines()
    assert set(before) == {k for k, h in day_cells(state.dataset, first, last).items()}
    edited, moved, approved, deleted = source.entry_keys(last - timedelta(days=20), last - timedelta(days=14))[:4]
    week_total = total(edited)
    source.edit_hours(edited, 1.5)
    assert lines()[edited][0] == pytest.approx(before[edited][0] + 1.5)
    assert total(edited) == pytest.approx(week_total + 1.5)

    target = date.fromisoformat(moved.rsplit(":", 1)[1]) + timedelta(days=10)  # another week
    new_key = source.move(moved, target)
    after = lines()
    assert moved not in after and after[new_key][0] == pytest.approx(before[moved][0])
    assert new_key.rsplit(":", 1)[1] == target.isoformat() and new_key.split(":")[0] != moved.split(":")[0]

    source.approve(approved)
    assert lines()[approved][1] in ("approved", "paid")
    listed = state.dataset.timesheets[int(approved.split(":")[0])]["list"]
    assert listed["Accounting Approved"] and listed["Supervisor Approved"] and not listed["Rejected"]

    response = httpx.post(f"{server.url}/_sandbox/mutate", json={"op": "delete", "key": deleted})
    assert response.status_code == 200
    assert deleted not in lines()

    late_day = last - timedelta(days=3)
    late = source.add_late(late_day)
    assert lines()[late] == (4.0, "draft") and late.rsplit(":", 1)[1] == late_day.isoformat()
