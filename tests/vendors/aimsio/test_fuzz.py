"""Fuzzing the Aimsio models, raw-frame building and conform functions (issue 9).

Whatever JSON the API serves — random values, or the document's example with keys dropped,
nulled, swapped for other types, huge, negative, non-finite or numeric strings — building the
raw frame and conforming it never raises: every record is a valid row or a quarantined row
with a reason, and the conformed frame has exactly the conformed columns. The raw frame goes
through DuckDB first, as conform reads it in production.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from timesheet_assets.conformed.schema import PROJECT_COLUMNS, TIMESHEET_COLUMNS
from timesheet_assets.vendors.aimsio.assets import JOB_ORDER_SPEC, TIMECARD_SPEC, build_incremental_frame
from timesheet_assets.vendors.aimsio.conform import conform_job_orders, conform_timecards
from timesheet_assets.vendors.aimsio.models import JobOrder, ListStub, TimeCard
from timesheet_assets.vendors.aimsio.resource import ChangedRecords, Stub, StubListing, read_stubs
from timesheet_assets.vendors.aimsio.sandbox import DOC_EXAMPLE_TIMECARD, AimsioStore

from .support import config

_BOUNDED = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Validation alone costs microseconds: many examples. A frame + DuckDB + conform pass costs
# tens of milliseconds per batch: fewer examples of up to ten records each.
FUZZ_RECORDS = settings(max_examples=400, **_BOUNDED)
FUZZ_PIPELINE = settings(max_examples=100, **_BOUNDED)
FUZZ_SMALL = settings(max_examples=50, **_BOUNDED)
UPDATED_AT = 1_745_934_700_000
EXAMPLE_JOB_ORDER = next(iter(AimsioStore(config(0, projects=1)).job_orders.values()))

# -- strategies ----------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**22), max_value=10**22),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
tricky = st.one_of(
    scalars,
    st.sampled_from(
        [
            "",
            "  ",
            "NaN",
            "Infinity",
            "-Infinity",
            "-1",
            "-0.5",
            "1e400",
            "1e308",
            "0x10",
            "٣",
            "8.000",
            "2025-04-21T10:30:00Z",
            "2025-04-21",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00-12:00",
            "America/Winnipeg",
            "Mars/Olympus",
            "../../etc/passwd",
            "a" * 300,
            "\x00",
        ]
    ),
    st.sampled_from(
        [
            10**17,
            -(10**17),
            2**63,
            -(2**63),
            10**30,
            253402300799999,
            -62135596800000,
            1745231400000,
            1745231400000.5,
            -1,
            0,
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


stub_elements = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"dtype": st.sampled_from(["TimeCard", None, 3])},
        optional={
            "guid": st.one_of(st.sampled_from(["a", "b", "c", ""]), tricky),
            "id": st.one_of(st.integers(0, 3), tricky),
            "updatedAt": tricky,
        },
    ),
)


def _aliases(model: type) -> list[str]:
    names: list[str] = []
    for name, field in model.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None)
        names += list(choices) if choices else [field.alias or name]
    return names


@st.composite
def mutated(draw, base: dict[str, Any], modelled: list[str]) -> Any:
    """A valid record with some keys dropped, nulled, stringified or replaced by tricky values
    (mostly the keys the model reads), plus unknown extra keys."""
    keys = st.sampled_from(modelled) | st.sampled_from(list(base))
    record = dict(base)
    for key in draw(st.lists(keys, max_size=3, unique=True)):
        record.pop(key, None)
    for key in draw(st.lists(keys, max_size=3, unique=True)):
        record[key] = None
    for key in draw(st.lists(keys, max_size=3, unique=True)):
        if key in record:
            record[key] = str(record[key])
    for key in draw(st.lists(keys, max_size=4, unique=True)):
        record[key] = draw(tricky)
    record.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return record


def records_for(base: dict[str, Any], model: type) -> st.SearchStrategy[list[Any]]:
    modelled = _aliases(model)
    one = st.one_of(
        mutated(base, modelled),
        mutated(base, modelled),
        json_values,
        st.dictionaries(st.sampled_from(modelled), tricky, max_size=8),
    )
    # Several records per example: the frame and conform costs are per batch, not per record.
    return st.lists(one, min_size=1, max_size=10)


# -- checks --------------------------------------------------------------------------------------
_DUCKDB = duckdb.connect()


def through_duckdb(frame: pd.DataFrame) -> pd.DataFrame:
    """What the warehouse hands to conform: the frame written to and read back from DuckDB."""
    return _DUCKDB.execute("SELECT * FROM frame").fetchdf()


def fetched_for(records: list[Any]) -> ChangedRecords:
    stubs = [Stub(f"guid-{i}", UPDATED_AT + i, {}) for i in range(len(records))]
    return ChangedRecords(StubListing(stubs), stubs, records)


def expected_valid(model: type, record: Any) -> bool:
    """Whether the model accepts the record; anything but a ValidationError fails the test."""
    if type(record) is not dict:
        return False
    try:
        model.model_validate(record)
    except ValidationError:
        return False
    return True


def assert_rows_account_for_every_record(raw, records: list[Any], model: type) -> pd.DataFrame:
    frame = raw.frame
    assert raw.records_served == len(records) == len(frame)
    assert frame["record_key"].is_unique
    reasons = frame["quarantine_reason"]
    assert raw.quarantined == int(reasons.notna().sum())
    assert all(isinstance(r, str) and r for r in reasons.dropna())
    assert frame["payload"].notna().all()
    for record, reason in zip(records, reasons):
        if pd.isna(reason):
            assert expected_valid(model, record)
    return frame


@FUZZ_RECORDS
@given(
    card=st.one_of(mutated(DOC_EXAMPLE_TIMECARD, _aliases(TimeCard)), json_values),
    job=st.one_of(mutated(EXAMPLE_JOB_ORDER, _aliases(JobOrder)), json_values),
    stub=stub_elements,
)
def test_models_raise_nothing_but_validation_errors_and_valid_records_make_rows(card, job, stub):
    for spec, record in ((TIMECARD_SPEC, card), (JOB_ORDER_SPEC, job)):
        if expected_valid(spec.model, record):  # only a ValidationError may escape validation
            rows = list(spec.to_rows(spec.model.model_validate(record)))
            assert len(rows) == 1 and set(rows[0]) == set(spec.columns) - {"source_updated_at", "source_updated_at_ms"}
    if isinstance(stub, dict):
        expected_valid(ListStub, stub)
    read_stubs([stub])


@FUZZ_PIPELINE
@given(records=records_for(DOC_EXAMPLE_TIMECARD, TimeCard))
def test_any_timecard_json_is_a_valid_or_quarantined_row_and_conforms(records):
    raw = build_incremental_frame(TIMECARD_SPEC, fetched_for(records))
    frame = assert_rows_account_for_every_record(raw, records, TimeCard)
    out = conform_timecards(through_duckdb(frame))
    assert list(out.columns) == list(TIMESHEET_COLUMNS)
    usable = frame["quarantine_reason"].isna() & ~frame["is_deleted"].fillna(False).astype(bool)
    assert len(out) == int(usable.sum())
    assert out["work_date"].notna().all() and out["employee_id"].notna().all()
    for column in ("regular_hours", "overtime_hours", "total_hours"):
        assert all(math.isfinite(v) and v >= 0 for v in out[column]), column
    assert set(out["status"]) <= {"submitted", "paid"}


@FUZZ_SMALL
@given(records=records_for(EXAMPLE_JOB_ORDER, JobOrder))
def test_any_job_order_json_is_a_valid_or_quarantined_row_and_conforms(records):
    raw = build_incremental_frame(JOB_ORDER_SPEC, fetched_for(records))
    frame = assert_rows_account_for_every_record(raw, records, JobOrder)
    out = conform_job_orders(through_duckdb(frame))
    assert list(out.columns) == list(PROJECT_COLUMNS)
    usable = frame["quarantine_reason"].isna() & ~frame["is_deleted"].fillna(False).astype(bool)
    assert len(out) == int(usable.sum())
    assert set(out["status"]) <= {"planned", "active", "completed", "cancelled", "unknown"}


@FUZZ_SMALL
@given(elements=st.lists(stub_elements, max_size=8), data=st.data())
def test_any_list_page_yields_stubs_or_quarantined_rows_with_unique_keys(elements, data):
    listing = read_stubs(elements)
    identifiers = [s.identifier for s in listing.stubs]
    assert all(identifiers) and len(set(identifiers)) == len(identifiers)
    assert len(listing.stubs) + len(listing.unusable) <= len(elements)
    assert all(isinstance(reason, str) and reason for _, reason in listing.unusable)
    details = data.draw(
        st.lists(
            mutated(DOC_EXAMPLE_TIMECARD, _aliases(TimeCard)), min_size=len(listing.stubs), max_size=len(listing.stubs)
        )
    )
    fetched = ChangedRecords(listing, listing.stubs, details)
    raw = build_incremental_frame(TIMECARD_SPEC, fetched)
    frame = raw.frame
    assert raw.records_served == len(frame) == len(listing.stubs) + len(listing.unusable)
    assert frame["record_key"].is_unique  # an upsert never writes two rows under one key
    assert raw.quarantined >= len(listing.unusable)
    out = conform_timecards(through_duckdb(frame))
    assert list(out.columns) == list(TIMESHEET_COLUMNS)


@pytest.mark.parametrize(
    "value",
    [
        float("inf"),
        float("-inf"),
        float("nan"),
        "Infinity",
        "1e400",
        10**20,
        -(10**20),
        10**400,
        "0001-01-01T00:00:00-12:00",
        "9999-12-31T23:59:59+14:00",
    ],
)
def test_values_that_used_to_crash_the_asset_now_quarantine_the_record(value):
    """Found by the fuzz tests: these escaped as OverflowError/OSError (not validation errors)
    and failed the whole run, or (NaN, 1e400) reached the conformed hours."""
    for change in ({"timeCardRecordDate": value}, {"timeCardEmployeeRegularHours": value}):
        record = {**DOC_EXAMPLE_TIMECARD, **change}
        raw = build_incremental_frame(TIMECARD_SPEC, fetched_for([record]))
        assert raw.quarantined == 1, change
        assert conform_timecards(through_duckdb(raw.frame)).empty


@pytest.mark.parametrize("zone", ["a" * 300, "\x00", "../../etc/passwd", "Mars/Olympus"])
def test_an_unusable_time_zone_name_falls_back_to_utc(zone):
    """Found by the fuzz tests: a 300-character zone name raised ``OSError: File name too
    long`` from ``ZoneInfo``; any name that is not a zone means UTC, as documented."""
    record = {**DOC_EXAMPLE_TIMECARD, "timeCardTimeZone": zone}
    frame = build_incremental_frame(TIMECARD_SPEC, fetched_for([record])).frame
    assert pd.isna(frame.loc[0, "quarantine_reason"])
    assert frame.loc[0, "work_date_time_zone"] == "UTC"
