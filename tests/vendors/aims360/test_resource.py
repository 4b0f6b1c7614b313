"""The client's tolerance for what the docs leave open, output parsing and typing, view
settings, and the polling used by materializations without the sensor."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from openpyxl import Workbook

from timesheet_assets.http import VendorRejected
from timesheet_assets.vendors.aims360.assets import Aims360Settings, resource_from_env, view_frame
from timesheet_assets.vendors.aims360.models import BackgroundJob, ExportJob, job_rows
from timesheet_assets.vendors.aims360.resource import (
    Aims360ConfigError,
    ExportJobFailed,
    ViewSpec,
    parse_export,
    parse_views,
)
from timesheet_assets.vendors.aims360.sandbox import JobLifecycle

from .conftest import make_resource

ORDERS = ViewSpec("Orders", "Open Orders")


# -- payload tolerance -------------------------------------------------------------------
def test_job_status_row_tolerates_spellings_strings_nulls_and_extra_keys():
    job = BackgroundJob.model_validate(
        {
            "jobId": "abc",
            "jobStatus": "COMPLETED",
            "percentCompleted": "100",
            "completedDate": "2019-06-07T06:09:22.7371234Z",
            "purgeDays": 30,
            "canReRun": "Yes",
            "publishLinkAccessScope": None,
            "somethingNew": {"x": 1},
        }
    )
    assert (job.job_id, job.is_completed, job.percent_completed, job.can_rerun) == ("abc", True, 100.0, True)
    assert job.purge_deadline() == datetime(2019, 7, 7, 6, 9, 22, 737123, tzinfo=UTC)
    assert job.model_extra == {"somethingNew": {"x": 1}}
    sparse = BackgroundJob.model_validate({"jobID": 52714, "jobStatus": "Queued"})
    assert (sparse.job_id, sparse.is_pending, sparse.can_rerun, sparse.purge_deadline()) == ("52714", True, None, None)
    assert (
        BackgroundJob.model_validate({"jobID": "x", "jobStatus": "Failed", "jobStatusText": "boom"}).describe()
        == "Failed: boom"
    )
    assert (
        BackgroundJob.model_validate({"jobID": "x", "canReRun": "No", "percentCompleted": 40}).describe()
        == "unknown status (40%)"
    )
    assert ExportJob.model_validate({"jobID": "j", "extra": 1}).job_id == "j"


def test_status_answer_shapes():
    row = {"jobID": "a", "jobStatus": "Queued"}
    assert job_rows({"@odata.context": "x", "value": [row]}) == [row]
    assert job_rows([row]) == [row]
    assert job_rows(row) == [row]
    assert job_rows({"value": []}) == []


# -- output parsing ------------------------------------------------------------------------
ROWS = [
    {"Order No": "0012", "Qty": 3, "Amount": 12.5, "Rush": True, "Day": "2024-05-01", "Note": 'a, "b"'},
    {"Order No": "0013", "Qty": 4, "Amount": 7, "Rush": False, "Day": "2024-05-02", "Note": None},
]


def as_csv(rows) -> bytes:
    header = list(rows[0])
    lines = [",".join(header)]
    for row in rows:
        cells = []
        for key in header:
            value = row[key]
            text = "" if value is None else ("true" if value is True else "false" if value is False else str(value))
            cells.append('"' + text.replace('"', '""') + '"' if ("," in text or '"' in text) else text)
        lines.append(",".join(cells))
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def as_xlsx(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_parse_export_reads_json_csv_and_excel_to_the_same_frame():
    parsed = {
        "JSON": parse_export(json.dumps(ROWS).encode(), "JSON", "application/json"),
        "OData": parse_export(json.dumps({"value": ROWS}).encode(), "JSON"),
        "CSV": parse_export(as_csv(ROWS), "CSV", "application/octet-stream"),
        "Excel": parse_export(as_xlsx(ROWS), "Excel"),
    }
    assert {k: v.output_format for k, v in parsed.items()} == {
        "JSON": "JSON",
        "OData": "JSON",
        "CSV": "CSV",
        "Excel": "Excel",
    }
    frames = {k: view_frame(v.records)[0].frame.drop(columns=["payload", "ingested_at"]) for k, v in parsed.items()}
    for name in ("OData", "CSV", "Excel"):
        pd.testing.assert_frame_equal(frames["JSON"], frames[name], obj=name)
    frame = frames["JSON"]
    assert dict(frame.dtypes.astype(str)) == {
        "record_key": "string",
        "order_no": "string",
        "qty": "Int64",
        "amount": "Float64",
        "rush": "boolean",
        "day": "object",
        "note": "string",
        "quarantine_reason": "string",
    }
    assert frame["order_no"].tolist() == ["0012", "0013"]
    assert frame["amount"].tolist() == [12.5, 7.0]
    assert frame["record_key"].tolist() == ["1", "2"]


def test_parse_export_error_envelope_and_odd_rows():
    with pytest.raises(VendorRejected, match="Access Denied"):
        parse_export(b'{"message": "Access Denied"}', "JSON", "application/json")
    raw, names = view_frame([{"a": 1}, "not an object", {"a": 2, "payload": "x", "A": 3}])
    assert raw.quarantined == 1
    assert names == {"a": "a", "payload": "view_payload", "A": "a_2"}
    assert raw.frame["quarantine_reason"].notna().tolist() == [False, True, False]
    mixed = view_frame(
        [{"t": "2024-05-01"}, {"t": "2024-05-01T10:00:00Z"}, {"t": "2024-05-01 12:00:00.5+02:00"}, {"t": ""}]
    )
    assert mixed[0].frame["t"].tolist()[:3] == [
        pd.Timestamp("2024-05-01", tz="UTC"),
        pd.Timestamp("2024-05-01 10:00", tz="UTC"),
        pd.Timestamp("2024-05-01 10:00:00.5", tz="UTC"),
    ]
    assert pd.isna(mixed[0].frame["t"].iloc[3])
    assert parse_export(b"A,A,B\r\n", "CSV", "text/csv").records == []  # a header: an empty view
    assert parse_export(b"A,A,B\r\n1,2\r\n", "CSV", "text/csv").records == [{"A": "1", "A (2)": "2", "B": None}]


# -- settings ------------------------------------------------------------------------------
def test_views_setting():
    assert parse_views(None) == (ORDERS,)
    assert [v.slug for v in parse_views(" Orders/Open Orders ; Cut Tickets/WIP / Late ;")] == [
        "orders_open_orders",
        "cut_tickets_wip_late",
    ]
    with pytest.raises(Aims360ConfigError, match=r"AIMS360_VIEWS entry 2 \('Invoices'\) is not 'Source/View Name'"):
        parse_views("Orders/Open Orders;Invoices")
    with pytest.raises(Aims360ConfigError, match="both map to asset raw/aims360/orders_open_orders"):
        parse_views("Orders/Open Orders;orders/open-orders")
    with pytest.raises(Aims360ConfigError, match="AIMS360_VIEWS names no view"):
        parse_views(" ; ")


def test_numeric_and_choice_settings_name_their_variable():
    with pytest.raises(Aims360ConfigError, match="AIMS360_MAX_ATTEMPTS must be a whole number, got 'x'"):
        Aims360Settings.from_env({"AIMS360_MAX_ATTEMPTS": "x"})
    with pytest.raises(Aims360ConfigError, match="AIMS360_STALL_TIMEOUT_SECONDS must be at least 1"):
        Aims360Settings.from_env({"AIMS360_STALL_TIMEOUT_SECONDS": "0"})
    with pytest.raises(Aims360ConfigError, match="AIMS360_OUTPUT_FORMAT must be one of JSON, CSV, Excel"):
        resource_from_env({"AIMS360_OUTPUT_FORMAT": "xml"})
    res = resource_from_env(
        {
            "AIMS360_OUTPUT_FORMAT": "csv",
            "AIMS360_PUBLISHLINK_SCOPE": "people in organization",
            "AIMS360_STATUS_METHOD": "post",
            "AIMS360_PUBLISHLINK_HOSTS": "api.aims360.rest, x.test",
        }
    )
    assert (res.output_format, res.publishlink_scope, res.status_method, res.publishlink_hosts) == (
        "CSV",
        "PeopleInOrganization",
        "POST",
        ["api.aims360.rest", "x.test"],
    )
    assert resource_from_env({}).base_url == "https://api.aims360.rest"
    settings = Aims360Settings.from_env({})
    assert (
        settings.sensor_interval_seconds,
        settings.stall_timeout_seconds,
        settings.refresh_interval_seconds,
        settings.max_attempts,
        settings.failure_cooldown_seconds,
    ) == (60, 1800.0, 86400.0, 3, 3600.0)


# -- polling without the sensor ------------------------------------------------------------
def test_wait_for_job_fails_with_the_status_text(aims, resource):
    aims.state.queue_lifecycles(
        JobLifecycle(queued_polls=0, progress=(), outcome="Failed", failure_text="View query failed")
    )
    job = resource.create_export_job(ORDERS)
    with pytest.raises(ExportJobFailed, match=f"AIMS360 job {job.job_id} Failed: View query failed"):
        resource.wait_for_job(job.job_id, timeout_seconds=5, first_poll_seconds=0.01)


def test_wait_for_job_gives_up_after_the_timeout(aims, resource):
    aims.state.queue_lifecycles(JobLifecycle(outcome="Stuck", progress=(30,)))
    job = resource.create_export_job(ORDERS)
    with pytest.raises(ExportJobFailed, match=r"did not complete within 0.3 s \(last status Queued \(30%\)\)"):
        resource.wait_for_job(job.job_id, timeout_seconds=0.3, first_poll_seconds=0.02, max_poll_seconds=0.05)


def test_time_driven_lifecycle_completes_without_polls_advancing_it(aims):
    aims.state.queue_lifecycles(JobLifecycle(step_seconds=0.05))
    res = make_resource(aims.url, status_method="POST")
    job = res.create_export_job(ORDERS)
    import time

    time.sleep(0.25)
    status = res.job_status(job.job_id)
    assert status.is_completed and aims.state.job(job.job_id).status_polls == 1
    assert aims.sandbox.stats.calls("/jobsmanagement/v1.0/backgroundjob", "POST")
