"""What the document leaves open, served over HTTP: ints where floats are shown, numbers where
strings are shown, nulls, empty strings and missing optional keys, unknown keys, other
timestamp spellings, list answers without page counts."""

from __future__ import annotations

from datetime import date

import pandas as pd

from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.vendors.blikk.assets import PROJECT_SPEC, time_report_spec
from timesheet_assets.vendors.blikk.conform import conform_projects, conform_time_reports
from timesheet_assets.vendors.blikk.resource import TIME_REPORTS_PATH
from timesheet_assets.vendors.blikk.sandbox import BlikkData

DAY = date(2024, 5, 2)


def _report(ident, **fields):
    return {"id": ident, "date": DAY.isoformat(), "user": {"id": 5, "name": "Ines Berg"}, **fields}


def test_lenient_payloads_parse_and_map_without_quarantine(blikk):
    reports = [
        _report(
            2001,
            hours=8,  # int where the document shows 8.0
            invoiceableHours=None,
            project={"id": 19, "name": "Maintenance", "number": 12},  # number as a number
            date="2024-05-02 00:00:00",
            createdDate="2024-05-02T10:00:00Z",
            updatedDate="2024-05-03T10:00:00.123+02:00",
            someFutureField={"nested": [1, 2]},
        ),
        _report(
            "2002",  # id as text
            hours="7.5",
            date="2024-05-02T00:00:00",
            sentToAttestDate="2024-05-02 12:00:00",  # no offset
            attestedDate="",
            absenceProject={"id": 2, "name": "Sick leave"},
            createdDate="2024-05-02 11:00:00 +00:00",
        ),
        _report(2003, hours=1.25, user={"id": 77, "name": None}, createdDate=None, activity=None),
    ]
    sandbox = blikk(data=BlikkData(time_reports=reports))
    resource = sandbox.resource()
    try:
        listing = resource.fetch_time_reports(DAY, DAY)
        names = resource.fetch_user_names()
    finally:
        resource.close()
    assert names == {}
    raw = build_raw_frame(time_report_spec(names), listing.records)
    assert raw.quarantined == 0 and raw.records_served == 3
    rows = conform_time_reports(raw.frame).set_index("entry_id")

    first = rows.loc["2001"]
    assert first["total_hours"] == 8.0 and pd.isna(first["billable_hours"])
    assert (first["project_id"], first["project_code"]) == ("19", "12")
    assert first["work_date"] == DAY
    assert first["source_updated_at"] == pd.Timestamp("2024-05-03 08:00:00.123", tz="UTC")
    assert first["status"] == "draft"
    assert '"someFutureField":{"nested":[1,2]}' in raw.frame.set_index("record_key").loc["2001", "payload"]

    second = rows.loc["2002"]
    assert second["total_hours"] == 7.5 and second["status"] == "submitted"
    assert second["project_id"] == "absence:2" and pd.isna(second["project_code"])
    assert second["source_updated_at"] == pd.Timestamp("2024-05-02 11:00:00", tz="UTC")

    third = rows.loc["2003"]
    assert pd.isna(third["employee_name"]) and pd.isna(third["task"])
    assert pd.isna(third["source_updated_at"])


def _strip(sandbox, *keys):
    def hook(path, page, body):
        if path == TIME_REPORTS_PATH:
            for key in keys:
                body.pop(key, None)

    sandbox.data.page_hooks.append(hook)


def test_pages_are_walked_without_total_pages(blikk):
    sandbox = blikk(time_records=250)
    _strip(sandbox, "totalPages")
    resource = sandbox.resource()
    try:
        listing = resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date)
    finally:
        resource.close()
    assert len({r["id"] for r in listing.records}) == 250 and listing.complete
    assert sandbox.stats.count(TIME_REPORTS_PATH) == 3


def test_pages_are_walked_until_a_short_page_without_any_counts(blikk):
    sandbox = blikk(time_records=250)
    _strip(sandbox, "totalPages", "totalItemCount")
    resource = sandbox.resource()
    try:
        listing = resource.fetch_time_reports(sandbox.config.first_date, sandbox.config.anchor_date)
    finally:
        resource.close()
    assert len({r["id"] for r in listing.records}) == 250
    # Pages of 100, 100, 50: the short third page ends the walk.
    assert sandbox.stats.count(TIME_REPORTS_PATH) == 3


def test_empty_strings_and_lists_in_optional_fields_read_as_absent(blikk):
    # The document shows "" for empty text (a contact's invoiceEmail); an implementation may
    # serve "" (or []) for any absent optional value, numbers and objects included.
    blank_numbers = dict(
        invoiceableHours="",
        breakMinutes="",
        cost=" ",
        rate="",
        discount="",
        invoiceId="",
        travelReportId="",
        allowanceReportId="",
    )
    reports = [
        _report(
            3001,
            hours=6.5,
            **blank_numbers,
            project="",
            costCenter=[],
            contact="",
            activity={"id": "", "name": "Formwork"},
            updatedDate="",
        ),
        _report(3002, hours="", createdDate="2024-05-02 11:00:00 +00:00"),  # required: stays invalid
    ]
    projects = [
        {
            "id": 41,
            "orderNumber": "",
            "title": "Bygget",
            "status": "",
            "startDate": "",
            "endDate": "",
            "projectManager": "",
            "customer": {"id": "", "name": ""},
            "location": "",
            "updated": "",
        },
    ]
    sandbox = blikk(data=BlikkData(time_reports=reports, projects=projects, users=[{"id": 5}]))
    resource = sandbox.resource()
    try:
        listing = resource.fetch_time_reports(DAY, DAY)
        project_listing = resource.fetch_projects()
    finally:
        resource.close()

    raw = build_raw_frame(time_report_spec(), listing.records)
    frame = raw.frame.set_index("record_key")
    assert raw.quarantined == 1 and frame.loc["3002", "quarantine_reason"].startswith("hours")
    assert pd.isna(frame.loc["3001", "quarantine_reason"])
    row = conform_time_reports(raw.frame).set_index("entry_id").loc["3001"]
    assert row["total_hours"] == 6.5 and pd.isna(row["billable_hours"])
    assert pd.isna(row["project_id"]) and row["task"] == "Formwork"
    assert pd.isna(frame.loc["3001", "break_minutes"]) and pd.isna(frame.loc["3001", "invoice_id"])

    project_raw = build_raw_frame(PROJECT_SPEC, project_listing.records)
    assert project_raw.quarantined == 0
    project = conform_projects(project_raw.frame).set_index("project_id").loc["41"]
    assert project["name"] == "Bygget" and project["status"] == "unknown"
    assert project[["project_code", "customer_id", "start_date", "manager_name"]].isna().all()
