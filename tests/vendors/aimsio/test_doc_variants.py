"""Choices the Aimsio document leaves open, as another implementation of the same document
may make them: every test serves a doc-conformant variant over real HTTP and checks what
landed in the raw table and the conformed rows."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.dagster_helpers import materialization_metadata, read_table
from timesheet_assets.http import VendorHTTPError
from timesheet_assets.vendors.aimsio.conform import conform_timecards
from timesheet_assets.vendors.aimsio.resource import AimsioResource
from timesheet_assets.vendors.aimsio.sandbox import DOC_EXAMPLE_TIMECARD

from .support import API, JOB_ORDERS_ASSET, TIMECARDS_KEY, config, run_raw, start, unthrottled

TIMECARDS_TABLE = "aimsio.timecards"


def _land(serve_app, warehouse, instance, bodies: dict[str, dict]):
    """Serve ``bodies`` (guid -> GET-single body) from the sandbox, materialize the raw
    timecards through Dagster and return the raw table (by key) and its conformed rows."""
    server, store = start(serve_app, config(0))
    for guid, body in bodies.items():
        store.put_timecard({**body, "timeCardGuid": guid})
    result = run_raw(server, warehouse, instance, resource=unthrottled(server))
    raw = read_table(warehouse, TIMECARDS_TABLE)
    conformed = conform_timecards(raw).set_index("entry_id")
    raw["work_date"] = [pd.Timestamp(d).date() for d in raw["work_date"]]  # DuckDB DATE reads back as Timestamp
    return raw.set_index("record_key"), conformed, result


@pytest.mark.parametrize(
    "body",
    [b"null", b'{"value": null}', b"{}", None],
    ids=["null", "value-null", "empty-object", "204-no-content"],
)
def test_an_empty_listing_in_any_empty_shape_is_a_run_with_nothing_to_fetch(serve_app, body):
    """The document shows no empty answer; an account without open timecards may say so with
    ``null``, ``{"value": null}``, ``{}`` or 204 as well as ``[]``."""
    details: list[str] = []
    listed: list[str] = []

    async def listing(request):
        listed.append(request.url.path)
        if body is None:
            return Response(status_code=204)
        return Response(body, media_type="application/json;charset=UTF-8")

    async def detail(request):
        details.append(request.path_params["guid"])
        return JSONResponse({})

    server = serve_app(
        Starlette(
            routes=[
                Route(f"{API}/CurrentTimeCard", listing),
                Route(f"{API}/CurrentTimeCard/{{guid}}", detail),
            ]
        )
    )
    resource = AimsioResource(base_url=server.url, username="u", password="pw")
    fetched = resource.fetch_timecards(known={"stored-card": 1_700_000_000_000})
    assert fetched.listing.stubs == [] and fetched.listing.unusable == []
    assert len(listed) == 1 and details == []  # read at once, not retried as a bad body


def test_an_object_without_the_value_array_still_fails_the_run(serve_app):
    """Leniency for empty answers must not let an error object pass as "no records"."""

    async def listing(request):
        return JSONResponse({"value": "maintenance"})

    server = serve_app(Starlette(routes=[Route(f"{API}/CurrentTimeCard", listing)]))
    resource = AimsioResource(base_url=server.url, username="u", password="pw")
    with pytest.raises(VendorHTTPError, match="HTTP 200 after 1 attempt: expected a JSON array"):
        resource.fetch_timecards()


def test_empty_strings_in_flag_fields_read_as_not_stated(serve_app, warehouse, instance):
    """``""`` instead of ``null`` for a boolean must not quarantine an otherwise good record."""
    blank_flags = {
        **DOC_EXAMPLE_TIMECARD,
        "timeCardIsBillable": "",
        "timeCardIsDeleted": " ",
        "timeCardIsExportedToIntegration": "",
    }
    raw, conformed, result = _land(serve_app, warehouse, instance, {"blank-flags": blank_flags})
    assert materialization_metadata(result, TIMECARDS_KEY)["quarantined"] == 0
    row = raw.loc["blank-flags"]
    assert pd.isna(row["quarantine_reason"])
    assert all(pd.isna(row[c]) for c in ("is_billable", "is_deleted", "is_exported"))
    line = conformed.loc["blank-flags"]
    assert line["total_hours"] == 10.0
    assert pd.isna(line["billable_hours"])  # unknown, not 0
    assert line["status"] == "submitted"


def test_time_zone_names_are_matched_whatever_their_case(serve_app, warehouse, instance):
    # 2025-04-22 03:00 UTC is still 2025-04-21 (22:00) in Winnipeg.
    late_evening_in_winnipeg = 1745290800000
    bodies = {
        f"zone-{n}": {**DOC_EXAMPLE_TIMECARD, "timeCardRecordDate": late_evening_in_winnipeg, "timeCardTimeZone": name}
        for n, name in enumerate(("America/Winnipeg", "america/winnipeg", "AMERICA/WINNIPEG"))
    }
    raw, conformed, _ = _land(serve_app, warehouse, instance, bodies)
    assert set(raw["work_date"]) == {date(2025, 4, 21)}
    assert set(raw["work_date_time_zone"]) == {"America/Winnipeg"}
    assert set(conformed["work_date"]) == {date(2025, 4, 21)}


@pytest.mark.parametrize(
    ("zone", "record_date", "work_date", "instant_utc"),
    [
        ("America/Winnipeg", "2025-04-21", date(2025, 4, 21), "2025-04-21T05:00:00+00:00"),
        ("America/Winnipeg", "2025-04-21T00:30:00", date(2025, 4, 21), "2025-04-21T05:30:00+00:00"),
        ("Asia/Tokyo", "2025-04-21T23:00:00.250", date(2025, 4, 21), "2025-04-21T14:00:00.250000+00:00"),
        # With an offset the instant is fixed; the zone then only picks the local date.
        ("America/Winnipeg", "2025-04-22T03:00:00Z", date(2025, 4, 21), "2025-04-22T03:00:00+00:00"),
        (None, "2025-04-21", date(2025, 4, 21), "2025-04-21T00:00:00+00:00"),
    ],
)
def test_a_record_date_without_an_offset_is_local_time_in_the_records_zone(
    serve_app, warehouse, instance, zone, record_date, work_date, instant_utc
):
    """The document sends epoch ms; a date-only or offset-less timestamp names the record's
    local day and time, so reading it as UTC would move the work date by a day."""
    body = {
        **DOC_EXAMPLE_TIMECARD,
        "timeCardTimeZone": zone,
        "timeCardRecordDate": record_date,
        "timeCardCreatedAt": record_date,
    }
    raw, conformed, _ = _land(serve_app, warehouse, instance, {"iso-date": body})
    row = raw.loc["iso-date"]
    assert row["work_date"] == work_date
    assert row["record_date"].isoformat() == instant_utc
    assert row["created_at"].isoformat() == instant_utc
    assert conformed.loc["iso-date", "work_date"] == work_date
    assert json.loads(row["payload"])["timeCardRecordDate"] == record_date  # kept verbatim


@pytest.mark.parametrize(
    "payroll_status",
    ["CLOSED", "closed", {"status": "CLOSED"}, {"name": "Closed", "guid": "p-1"}, {"Value": "PAID"}],
    ids=["text", "lower-case", "object-status", "object-name", "object-value"],
)
def test_a_payroll_period_status_of_any_shape_is_read(serve_app, warehouse, instance, payroll_status):
    """The schema types ``timeCardPayrollPeriodStatus`` as ``any``: a plain value or an object
    naming it are both readings of the document."""
    body = {**DOC_EXAMPLE_TIMECARD, "timeCardPayrollPeriodStatus": payroll_status}
    raw, conformed, _ = _land(serve_app, warehouse, instance, {"closed-period": body})
    assert conformed.loc["closed-period", "status"] == "paid"
    assert raw.loc["closed-period", "payroll_period_status"].lower() in {"closed", "paid"}


def test_an_exported_timecard_is_not_read_as_approved(serve_app, warehouse, instance):
    """``timeCardIsExportedToIntegration`` says an integration exported the card; the document
    has no approval field. An open payroll period with the flag set stays ``submitted``; the
    flag is kept in raw, and only a closed payroll period makes a line ``paid``."""
    bodies = {
        "exported-open": {
            **DOC_EXAMPLE_TIMECARD,
            "timeCardIsExportedToIntegration": True,
            "timeCardPayrollPeriodStatus": "OPEN",
        },
        "exported-no-period": {**DOC_EXAMPLE_TIMECARD, "timeCardIsExportedToIntegration": "true"},
        "not-exported-closed": {**DOC_EXAMPLE_TIMECARD, "timeCardPayrollPeriodStatus": "CLOSED"},
    }
    raw, conformed, _ = _land(serve_app, warehouse, instance, bodies)
    assert list(raw.loc[list(bodies), "is_exported"]) == [True, True, False]
    assert dict(conformed.loc[list(bodies), "status"]) == {
        "exported-open": "submitted",
        "exported-no-period": "submitted",
        "not-exported-closed": "paid",
    }


def test_job_order_dates_without_an_offset_keep_their_day_in_the_job_orders_zone(serve_app, warehouse, instance):
    server, store = start(serve_app, config(0, projects=1))
    guid = next(iter(store.job_orders))
    store.job_orders[guid].update(
        jobOrderTimeZone="America/Edmonton", jobOrderStartDate="2025-04-21", jobOrderEndDate="2025-05-02T00:00:00"
    )
    run_raw(server, warehouse, instance, assets=[JOB_ORDERS_ASSET], resource=unthrottled(server))
    row = read_table(warehouse, "aimsio.job_orders").set_index("record_key").loc[guid]
    assert pd.Timestamp(row["start_date"]).date() == date(2025, 4, 21)
    assert pd.Timestamp(row["end_date"]).date() == date(2025, 5, 2)
    assert pd.isna(row["quarantine_reason"])
