"""Every example response body of the Blikk document parses with the models, and the
examples the pipeline reads map through conform.py — served over HTTP by the sandbox."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import pandas as pd
import pytest

from timesheet_assets.conformed.schema import PROJECT_COLUMNS, TIMESHEET_COLUMNS
from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.vendors.blikk.assets import (
    ABSENCE_PROJECT_SPEC,
    INTERNAL_PROJECT_SPEC,
    PROJECT_SPEC,
    combine_raw,
    time_report_spec,
)
from timesheet_assets.vendors.blikk.conform import conform_projects, conform_time_reports
from timesheet_assets.vendors.blikk.models import (
    AbsenceProject,
    BlikkModel,
    ErrorBody,
    ListEnvelope,
    Project,
    RegistryProject,
    TimeReport,
    TokenResponse,
    User,
    UserDayStatistics,
)
from timesheet_assets.vendors.blikk.resource import blikk_error_message
from timesheet_assets.vendors.blikk.sandbox import BlikkData

ITEM_MODELS = {
    "time_reports_list": TimeReport,
    "projects_list": Project,
    "users_list": User,
    "internal_projects_list": RegistryProject,
    "absence_projects_list": AbsenceProject,
    "user_day_statistics_list": UserDayStatistics,
}
DETAIL_MODELS = {"time_report_detail": TimeReport, "user_detail": User, "auth_token": TokenResponse}
ERROR_BODIES = {
    "rate_limited_429",
    "error_400_model_state",
    "error_401_invalid_token",
    "error_403_permissions",
    "error_403_ip_address",
    "error_429",
    "error_500",
}


def test_every_example_response_parses(doc_examples):
    assert len(doc_examples) == 40
    for name, body in doc_examples.items():
        if body.get("objectName") == "generic.pagedlist":
            envelope = ListEnvelope.model_validate(body)
            assert envelope.page == 1 and envelope.totalPages in (1, None), name
            model = ITEM_MODELS.get(name, BlikkModel)
            parsed = [model.model_validate(item) for item in envelope.items]
            assert len(parsed) == len(body["items"]), name
            # Unknown keys survive (extra="allow"): the payload round-trips.
            for item, model_item in zip(body["items"], parsed):
                assert set(item) <= set(model_item.model_dump(exclude_unset=True)), name
        elif name in DETAIL_MODELS:
            DETAIL_MODELS[name].model_validate(body)
        elif name in ERROR_BODIES:
            ErrorBody.model_validate(body)
        else:
            BlikkModel.model_validate(body)

    report = TimeReport.model_validate(doc_examples["time_reports_list"]["items"][0])
    assert report.date == date(2021, 8, 30)
    assert report.invoiceableHours == 7.0 and report.hours == 8.0
    assert report.attested_at == datetime(2021, 9, 15, 7, 10, 18, tzinfo=UTC)
    assert report.project is not None and report.project.number == "12"
    token = TokenResponse.model_validate(doc_examples["auth_token"])
    assert token.expires == datetime(2022, 7, 1, 5, 43, 12, tzinfo=UTC)
    assert User.model_validate(doc_examples["user_detail"]).display_name == "John Doe"


@pytest.mark.parametrize(
    "name, status, expected",
    [
        (
            "error_400_model_state",
            400,
            "The request is invalid. — page: The field Page must be greater than or equal to 1.",
        ),
        ("error_401_invalid_token", 401, "Invalid token"),
        (
            "error_403_permissions",
            403,
            "You dont have the nessecery permissions to perform this action — permissions required: Contact_read",
        ),
        ("error_403_ip_address", 403, 'Your IP-address "127.0.0.1" is not allowed'),
        ("error_429", 429, "rate limited, wait 1 s"),
        ("error_500", 500, "An unexpected error has occurred. — request id r-0fbf44e8-afb8-42be-ae69-55c8bc03311b"),
    ],
)
def test_documented_error_bodies_become_clear_messages(doc_examples, name, status, expected):
    response = httpx.Response(status, content=json.dumps(doc_examples[name]).encode())
    assert blikk_error_message(response) == expected


def test_documented_examples_served_over_http_map_through_conform(blikk, doc_examples):
    listed = doc_examples["time_reports_list"]["items"][0]
    # The detail example shares the list example's id; served as a second report it gets
    # the id from the document's request URL (/v1/Core/TimeReports/707).
    detail = {**doc_examples["time_report_detail"], "id": 707}
    data = BlikkData(
        users=list(doc_examples["users_list"]["items"]),
        projects=list(doc_examples["projects_list"]["items"]),
        time_reports=[listed, detail],
        internal_projects=list(doc_examples["internal_projects_list"]["items"]),
        absence_projects=list(doc_examples["absence_projects_list"]["items"]),
    )
    sandbox = blikk(data=data)
    resource = sandbox.resource()
    try:
        reports = resource.fetch_time_reports(date(2021, 8, 30), date(2021, 8, 30))
        projects = resource.fetch_projects()
        internal = resource.fetch_internal_projects()
        absence = resource.fetch_absence_projects()
        names = resource.fetch_user_names()
    finally:
        resource.close()
    assert [r["id"] for r in reports.records] == [270, 707]
    assert reports.records[0] == listed  # the payload exactly as the document shows it
    assert names == {"2": "John Doe"}

    raw_reports = build_raw_frame(time_report_spec(names), reports.records).frame
    timesheets = conform_time_reports(raw_reports)
    assert list(timesheets.columns) == list(TIMESHEET_COLUMNS)
    row = timesheets.set_index("entry_id").loc["270"]
    assert row["source_system"] == "blikk"
    assert row["work_date"] == date(2021, 8, 30)
    assert (row["employee_id"], row["employee_name"]) == ("1", "John Doe")
    assert (row["project_id"], row["project_code"]) == ("19", "12")
    assert row["task"] == "Project management"
    assert (row["regular_hours"], row["overtime_hours"], row["total_hours"]) == (8.0, 0.0, 8.0)
    assert row["billable_hours"] == 7.0
    assert row["status"] == "approved"
    assert row["notes"] == "A comment that is visible on the invoice"
    # Never updated: the creation time is the last change.
    assert row["source_updated_at"] == pd.Timestamp("2021-09-15 05:02:04", tz="UTC")
    assert set(timesheets["entry_id"]) == {"270", "707"}

    raw_projects = combine_raw(
        [
            build_raw_frame(PROJECT_SPEC, projects.records),
            build_raw_frame(INTERNAL_PROJECT_SPEC, internal.records),
            build_raw_frame(ABSENCE_PROJECT_SPEC, absence.records),
        ]
    )
    assert raw_projects.quarantined == 0
    conformed = conform_projects(raw_projects.frame)
    assert list(conformed.columns) == list(PROJECT_COLUMNS)
    assert conformed["project_id"].tolist() == ["1", "internal:1", "absence:1"]
    registries = conformed.set_index("project_id").loc[["internal:1", "absence:1"]]
    assert registries["name"].tolist() == ["Lorem ipsum", "Lorem ipsum"]
    assert registries["status"].tolist() == ["active", "active"]
    assert registries["source_updated_at"].tolist() == [pd.Timestamp("2022-06-21 04:43:12", tz="UTC")] * 2
    project = conformed.iloc[0]
    assert (project["project_id"], project["project_code"], project["name"]) == ("1", "26", "Lorem ipsum")
    assert project["status"] == "active"
    assert (project["customer_id"], project["customer_name"]) == ("1", "Ipsum")
    assert (project["start_date"], project["end_date"]) == (date(2021, 2, 1), date(2022, 2, 15))
    assert project["manager_name"] == "John Doe"
    assert project["source_updated_at"] == pd.Timestamp("2022-06-16 04:43:12", tz="UTC")
