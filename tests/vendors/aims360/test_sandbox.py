"""The sandbox is as strict as the AIMS360 docs: auth, request validation, job status forms,
rerun rules, and the module contract the demo and benchmarks use."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from timesheet_assets.vendors.aims360 import sandbox as aims_sandbox
from timesheet_assets.vendors.aims360.sandbox import JobLifecycle

from .conftest import CONFIG

TOKEN = "/authentication/v1/authentication/Token"
EXPORT = "/reports/v1.0/exportdata"
STATUS_GET = "/jobsmanagement/odata/v1.0/backgroundjob"
STATUS_POST = "/jobsmanagement/v1.0/backgroundjob"
GOOD_EXPORT = {
    "exportType": "View",
    "exportDataSettings": {"source": "Orders", "viewName": "Open Orders"},
    "outputFormat": "csv",
    "publishLinkAccessScope": "Private",
}


def form(**overrides):
    values = {
        "grant_type": "password",
        "client_id": aims_sandbox.CLIENT_ID,
        "client_secret": aims_sandbox.CLIENT_SECRET,
        "username": aims_sandbox.USERNAME,
        "password": aims_sandbox.PASSWORD,
    }
    values.update(overrides)
    return values


@pytest.fixture
def http(aims):
    with httpx.Client(base_url=aims.url) as client:
        token = client.post(TOKEN, data=form()).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def status(http, job_id, method="GET"):
    params = {"$filter": f"jobId eq '{job_id}'"}
    if method == "GET":
        return http.get(STATUS_GET, params=params)
    return http.post(STATUS_POST, params=params)


def test_token_endpoint_takes_a_password_grant_form(aims):
    with httpx.Client(base_url=aims.url) as client:
        ok = client.post(TOKEN, data=form())
        assert ok.status_code == 200 and ok.json()["token_type"] == "bearer" and ok.json()["access_token"]
        assert client.post(TOKEN, json=form()).json()["error"] == "invalid_request"
        assert client.post(TOKEN, data=form(client_secret="nope")).json()["error"] == "invalid_client"
        assert client.post(TOKEN, data=form(password="nope")).json() == {
            "error": "invalid_grant",
            "error_description": "The user name or password is incorrect.",
        }
        # A user of another organisation cannot use this organisation's client.
        outsider = form(username=aims_sandbox.OUTSIDER, password=aims_sandbox.OUTSIDER_PASSWORD)
        assert client.post(TOKEN, data=outsider).status_code == 400
        for method, path in (("POST", EXPORT), ("GET", STATUS_GET), ("POST", STATUS_POST)):
            denied = client.request(method, path, params={"$filter": "jobId eq 'x'"})
            assert denied.status_code == 401
            assert denied.json() == {"message": "Authorization has been denied for this request."}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"exportType": "Report"}, "exportType must be 'View'."),
        ({"exportDataSettings": {"source": "Orders"}}, "exportDataSettings must name the source and viewName."),
        (
            {"exportDataSettings": {"source": "Orders", "viewName": "Nope"}},
            "View 'Nope' was not found for source 'Orders'.",
        ),
        ({"outputFormat": "xml"}, "outputFormat must be JSON, CSV or Excel."),
        (
            {"publishLinkAccessScope": "Everyone"},
            "publishLinkAccessScope must be Public, Private or PeopleInOrganization.",
        ),
    ],
)
def test_exportdata_validates_the_request(http, change, message):
    answer = http.post(EXPORT, json={**GOOD_EXPORT, **change})
    assert (answer.status_code, answer.json()) == (400, {"message": message})


def test_job_status_both_forms_and_the_lifecycle(aims, http):
    created = http.post(EXPORT, json={**GOOD_EXPORT, "publishLinkAccessScope": "people in organization"}).json()
    assert set(created) == {"jobId", "jobStatus", "publishLink", "publishLinkAccessScope"}
    assert (created["jobStatus"], created["publishLinkAccessScope"]) == ("Queued", "PeopleInOrganization")
    job_id = created["jobId"]
    seen = [status(http, job_id, method).json()["value"][0] for method in ("GET", "POST", "GET")]
    assert [(r["jobStatus"], r["percentCompleted"], r["completedDate"] is None) for r in seen] == [
        ("Queued", 0, True),
        ("Queued", 50, True),
        ("Completed", 100, False),
    ]
    row = seen[-1]
    assert row["jobID"] == job_id and row["canReRun"] == "Yes" and row["purgeDays"] == 30
    assert row["publishLink"] == created["publishLink"]
    download = http.get(created["publishLink"])
    assert download.headers["content-type"].startswith("text/csv")
    assert download.text.splitlines()[0].startswith("Order No,Customer,Buyer")
    assert len(download.text.splitlines()) == CONFIG.time_records + 1


def test_job_status_requires_a_jobid_filter_and_hides_unknown_jobs(http):
    assert http.get(STATUS_GET).status_code == 400
    assert http.get(STATUS_GET, params={"$filter": "status eq 'Queued'"}).json() == {
        "message": "The query must filter on jobId: $filter=jobId eq '<jobId>'."
    }
    assert status(http, "no-such-job").json()["value"] == []
    assert http.post(STATUS_GET).status_code == 405
    assert http.get(STATUS_POST).status_code == 405


def test_jobs_are_invisible_to_other_organisations(aims, http):
    job_id = http.post(EXPORT, json=GOOD_EXPORT).json()["jobId"]
    with httpx.Client(base_url=aims.url) as other:
        token = other.post(
            TOKEN,
            data=form(
                client_id=aims_sandbox.OTHER_CLIENT_ID,
                client_secret=aims_sandbox.OTHER_CLIENT_SECRET,
                username=aims_sandbox.OUTSIDER,
                password=aims_sandbox.OUTSIDER_PASSWORD,
            ),
        ).json()["access_token"]
        other.headers["Authorization"] = f"Bearer {token}"
        assert status(other, job_id).json()["value"] == []
        assert other.post(f"{STATUS_POST}/{job_id}/rerun").status_code == 404


def test_rerun_rules(aims, http):
    aims.state.queue_lifecycles(
        JobLifecycle(queued_polls=0, progress=()), JobLifecycle(queued_polls=0, progress=(), can_rerun=False)
    )
    rerunnable = http.post(EXPORT, json=GOOD_EXPORT).json()
    fixed = http.post(EXPORT, json=GOOD_EXPORT).json()
    running = http.post(f"{STATUS_POST}/{rerunnable['jobId']}/rerun")
    assert (running.status_code, running.json()["message"]) == (409, f"Job '{rerunnable['jobId']}' is still running.")
    for job in (rerunnable, fixed):
        assert status(http, job["jobId"]).json()["value"][0]["jobStatus"] == "Completed"
    first_completion = aims.state.job(rerunnable["jobId"]).completed_date

    again = http.post(f"{STATUS_POST}/{rerunnable['jobId']}/rerun")
    assert again.json() == {
        "jobId": rerunnable["jobId"],
        "jobStatus": "Queued",
        "publishLink": rerunnable["publishLink"],
        "publishLinkAccessScope": "Private",
    }
    polled = [status(http, rerunnable["jobId"]).json()["value"][0] for _ in range(3)]
    assert [r["jobStatus"] for r in polled] == ["Queued", "Queued", "Completed"]
    assert polled[-1]["completedDate"] != first_completion
    assert polled[-1]["numberOfAttempts"] == 1
    # The Aqua page's spelling of the same call.
    typo = http.post(STATUS_POST, params={"$filter": f"jobId eq'{rerunnable['jobId']}'/rerun"})
    assert typo.status_code == 200 and typo.json()["jobId"] == rerunnable["jobId"]
    assert status(http, rerunnable["jobId"]).json()["value"][0]["numberOfAttempts"] == 2

    refused = http.post(f"{STATUS_POST}/{fixed['jobId']}/rerun")
    assert (refused.status_code, refused.json()["message"]) == (
        400,
        f"Job '{fixed['jobId']}' cannot be rerun (canReRun is No).",
    )
    assert status(http, fixed["jobId"]).json()["value"][0]["canReRun"] == "No"

    aims.state.purge(rerunnable["jobId"])
    assert http.post(f"{STATUS_POST}/{rerunnable['jobId']}/rerun").status_code == 404
    gone = http.get(rerunnable["publishLink"])
    assert (gone.status_code, gone.json()) == (410, {"message": "The publishlink has expired."})


def test_output_is_not_served_before_completion_and_wrong_token_is_denied(aims, http):
    created = http.post(EXPORT, json=GOOD_EXPORT).json()
    early = http.get(created["publishLink"])
    assert (early.status_code, early.json()) == (404, {"message": "The output of this job is not available yet."})
    wrong = httpx.get(created["publishLink"], headers={"Authorization": "Bearer forged"})
    assert (wrong.status_code, wrong.json()) == (401, {"message": "Access Denied"})


def test_module_contract():
    env = aims_sandbox.sandbox_env("http://127.0.0.1:9999")
    assert set(env) == {
        "AIMS360_BASE_URL",
        "AIMS360_CLIENT_ID",
        "AIMS360_CLIENT_SECRET",
        "AIMS360_USERNAME",
        "AIMS360_PASSWORD",
        "AIMS360_VIEWS",
    }
    assert env["AIMS360_BASE_URL"] == "http://127.0.0.1:9999"
    assert aims_sandbox.expected_timesheets(CONFIG, date(2024, 5, 1), date(2024, 5, 31)) == {
        "lines": 0,
        "total_hours": 0.0,
    }
    assert aims_sandbox.expected_projects(CONFIG) == 0
    app = aims_sandbox.create_app(CONFIG)
    again = aims_sandbox.create_app(CONFIG)
    rows = aims_sandbox.state_of(app).view_rows("Orders/Open Orders")
    assert rows == aims_sandbox.state_of(again).view_rows("Orders/Open Orders")  # seeded
    assert len(rows) == CONFIG.time_records
    dates = {r["Order Date"] for r in rows}
    assert min(dates) >= CONFIG.first_date.isoformat() and max(dates) <= CONFIG.anchor_date.isoformat()
