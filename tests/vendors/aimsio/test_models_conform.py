"""Model leniency and the conform rules, on in-memory records (HTTP paths are in test_assets)."""

from __future__ import annotations

import copy
import json
from datetime import date

import pandas as pd
import pytest
from pydantic import ValidationError

from timesheet_assets.conformed.schema import PROJECT_COLUMNS, TIMESHEET_COLUMNS
from timesheet_assets.vendors.aimsio.assets import TIMECARD_SPEC, build_incremental_frame
from timesheet_assets.vendors.aimsio.conform import (
    conform_job_orders,
    conform_timecards,
    project_status,
    timesheet_status,
)
from timesheet_assets.vendors.aimsio.models import JobOrder, ListStub, TimeCard
from timesheet_assets.vendors.aimsio.resource import (
    ChangedRecords,
    Stub,
    StubListing,
    changed_stubs,
    read_stubs,
)
from timesheet_assets.vendors.aimsio.sandbox import DOC_EXAMPLE_TIMECARD


def _frame(details: list, updated_at: int = 1_745_934_700_000):
    stubs = [Stub(f"guid-{i}", updated_at, {}) for i in range(len(details))]
    fetched = ChangedRecords(StubListing(stubs), stubs, details)
    return build_incremental_frame(TIMECARD_SPEC, fetched)


def test_doc_example_parses_with_the_documents_key_casing_and_string_numbers():
    card = TimeCard.model_validate(DOC_EXAMPLE_TIMECARD)
    assert card.guid == "6344bf5e-3ed3-45a3-a8bf-59e86a8e2872"
    assert card.description == "OK"  # from "timeCarddescription"
    assert (card.regular_hours, card.overtime_hours, card.double_time_hours, card.travel_hours) == (
        0.0,
        2.0,
        8.0,
        0.0,
    )
    assert card.record_date == 1745231400000
    assert card.is_billable is False and card.is_deleted is False and card.is_exported is False
    # Everything not modelled stays available on the model, and verbatim in the payload.
    assert card.model_extra["timeCardFormDataNo"] == "CTS2025-116-059-001"


def test_numbers_as_ints_floats_strings_or_null_and_either_description_spelling():
    body = copy.deepcopy(DOC_EXAMPLE_TIMECARD)
    del body["timeCarddescription"]
    body.update(
        timeCardDescription="schema spelling",
        timeCardEmployeeRegularHours=7,
        timeCardEmployeeOverTimeHours=1.5,
        timeCardEmployeeDoubleTimeHours=None,
        timeCardEmployeeTravelTimeHours=" 0.250 ",
        timeCardEmployeeCode=30,
        timeCardRecordDate="1745231400000",
        somethingNew={"nested": True},
    )
    del body["timeCardPhaseCode"]
    card = TimeCard.model_validate(body)
    assert (card.regular_hours, card.overtime_hours, card.double_time_hours, card.travel_hours) == (
        7.0,
        1.5,
        None,
        0.25,
    )
    assert card.description == "schema spelling"
    assert card.employee_code == "30"
    assert card.phase_code is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"timeCardRecordDate": None}, "timeCardRecordDate is null"),
        ({"timeCardEmployeeGuid": None, "timeCardEmployeeCode": None}, "neither timeCardEmployeeGuid"),
        ({"timeCardEmployeeRegularHours": "eight"}, "timeCardEmployeeRegularHours"),
    ],
)
def test_unusable_timecards_are_quarantined_with_the_reason(change, reason):
    body = {**DOC_EXAMPLE_TIMECARD, **change}
    with pytest.raises(ValidationError):
        TimeCard.model_validate(body)
    raw = _frame([body])
    assert raw.quarantined == 1
    row = raw.frame.iloc[0]
    assert reason in row["quarantine_reason"]
    assert row["record_key"] == "guid-0"
    assert json.loads(row["payload"]) == body
    assert conform_timecards(raw.frame).empty


def test_work_date_uses_the_records_time_zone_or_utc():
    late_evening_utc = 1745276400000  # 2025-04-21 23:00 UTC = 18:00 in Winnipeg, 2025-04-22 in Tokyo
    bodies = [
        {**DOC_EXAMPLE_TIMECARD, "timeCardRecordDate": late_evening_utc, "timeCardTimeZone": "Asia/Tokyo"},
        {**DOC_EXAMPLE_TIMECARD, "timeCardRecordDate": late_evening_utc, "timeCardTimeZone": None},
        {**DOC_EXAMPLE_TIMECARD, "timeCardRecordDate": late_evening_utc, "timeCardTimeZone": "Mars/Olympus"},
    ]
    frame = _frame(bodies).frame
    assert list(frame["work_date"]) == [date(2025, 4, 22), date(2025, 4, 21), date(2025, 4, 21)]
    assert list(frame["work_date_time_zone"]) == ["Asia/Tokyo", "UTC", "UTC"]


def test_status_rules():
    assert timesheet_status("CLOSED") == "paid"
    assert timesheet_status(" paid ") == "paid"
    assert timesheet_status("OPEN") == "submitted"
    assert timesheet_status(None) == "submitted"
    assert project_status("In Progress") == "active"
    assert project_status("Canceled") == "cancelled"
    assert project_status("Something else") == "unknown"
    assert project_status(None) == "unknown"


def test_billable_hours_follow_the_flag_and_deleted_rows_leave_the_conformed_table():
    billable = {**DOC_EXAMPLE_TIMECARD, "timeCardGuid": "b", "timeCardIsBillable": True}
    unknown = {**DOC_EXAMPLE_TIMECARD, "timeCardGuid": "u", "timeCardIsBillable": None}
    deleted = {**DOC_EXAMPLE_TIMECARD, "timeCardGuid": "d", "timeCardIsDeleted": True}
    raw = _frame([DOC_EXAMPLE_TIMECARD, billable, unknown, deleted]).frame
    assert list(raw["is_deleted"]) == [False, False, False, True]
    out = conform_timecards(raw).set_index("entry_id")
    assert list(out.index) == ["guid-0", "guid-1", "guid-2"]
    assert out.loc["guid-0", "billable_hours"] == 0.0
    assert out.loc["guid-1", "billable_hours"] == 10.0
    assert pd.isna(out.loc["guid-2", "billable_hours"])
    assert list(conform_timecards(raw).columns) == list(TIMESHEET_COLUMNS)


def test_stub_reading_accepts_guid_or_id_and_keeps_unusable_elements():
    listing = read_stubs(
        [
            {"dtype": "TimeCard", "guid": "a", "updatedAt": 5},
            {"dtype": "TimeCard", "id": 17, "updatedAt": "6"},
            {"dtype": "TimeCard", "updatedAt": 7},
            "not an object",
            {"dtype": "TimeCard", "guid": "c", "updatedAt": None},
            {"dtype": "TimeCard", "guid": "a", "updatedAt": 4},
            {"dtype": "TimeCard", "guid": "c", "updatedAt": 9},
        ]
    )
    # One stub per identifier, the newest one.
    assert [(s.identifier, s.updated_at) for s in listing.stubs] == [("a", 5), ("17", 6), ("c", 9)]
    assert [reason for _, reason in listing.unusable] == [
        "list stub has neither guid nor id",
        "list element is not a JSON object",
    ]
    # Compared per identifier with the stored updatedAt: new, different in either direction
    # (17 is older than what "a" has, and still fetched), or not comparable.
    stored = {"a": 5, "17": 99, "c": 9}
    assert [s.identifier for s in changed_stubs(listing.stubs, stored)] == ["17"]
    assert [s.identifier for s in changed_stubs(listing.stubs, {"a": 5})] == ["17", "c"]
    assert [s.identifier for s in changed_stubs(listing.stubs, None)] == ["a", "17", "c"]
    no_time = read_stubs([{"guid": "n", "updatedAt": None}]).stubs
    assert changed_stubs(no_time, {"n": None}) == no_time  # cannot be compared: always fetched
    assert ListStub.model_validate({"guid": "x", "updatedAt": 1, "extra": 1}).model_extra == {"extra": 1}


def test_job_order_model_and_conform_tolerate_a_sparse_body():
    job = JobOrder.model_validate({"guid": "j1", "jobNumber": 2025116, "unknown": [1]})
    assert (job.guid, job.number, job.name, job.status) == ("j1", "2025116", None, None)
    frame = pd.DataFrame(
        {
            "record_key": ["j1"],
            "job_order_number": ["2025116"],
            "name": [None],
            "status": [None],
            "customer_guid": [None],
            "customer_name": [None],
            "start_date": [None],
            "end_date": [None],
            "manager_name": [None],
            "is_deleted": [None],
            "source_updated_at": [pd.Timestamp("2025-01-01", tz="UTC")],
            "ingested_at": [pd.Timestamp("2025-01-02", tz="UTC")],
            "quarantine_reason": [None],
        }
    )
    out = conform_job_orders(frame)
    assert list(out.columns) == list(PROJECT_COLUMNS)
    assert out.iloc[0]["status"] == "unknown" and out.iloc[0]["project_code"] == "2025116"
