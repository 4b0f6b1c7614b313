"""Fuzzing the AIMS360 payload handling (issue 9): random JSON and mutated view rows through
the view-row model, ``build_raw_frame`` (via ``view_frame``, which builds the view's
``RawSpec``), the warehouse write and ``conform.py``; random bodies through the export
parser; random job answers through the job models. Nothing may raise except the parser's
documented ``MalformedBody`` / ``VendorRejected`` (which the client turns into a clear run
failure) and pydantic's ``ValidationError`` (a job row that cannot be ours)."""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb
import pydantic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import json_values
from timesheet_assets.conformed.schema import PROJECT_COLUMNS, TIMESHEET_COLUMNS
from timesheet_assets.http import MalformedBody, VendorRejected
from timesheet_assets.ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN
from timesheet_assets.vendors.aims360.assets import view_frame
from timesheet_assets.vendors.aims360.conform import conform_projects, conform_timesheets
from timesheet_assets.vendors.aims360.models import BackgroundJob, ExportJob, ViewRow, job_rows
from timesheet_assets.vendors.aims360.resource import parse_export

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "",
            " ",
            "0007",
            "1e999",
            "-0",
            "2024-02-30",
            "9999-12-31",
            "0001-01-01T00:00:00+01:00",
            "2024-05-01T10:00:00+99:99",
            "2024-05-01 12:00:00.5+02:00",
            "true",
            "FALSE",
            "NaN",
            "99999999999999999999",
            "\ud800",
            "a\x00b",
            "e5",
            "+E-3",
            ".5",
            "5.",
        ]
    )
)
JSON = json_values(SCALARS, key_size=8)

VALID_ROW = {
    "Order No": "0000001",
    "Customer": "Diaz Apparel",
    "Buyer": "Rosa Diaz",
    "Order Date": "2024-05-03",
    "Start Ship": "2024-05-13",
    "Total Qty": 2301,
    "Total Amount": 20248.52,
    "Rush": False,
    "Notes": "Hold, credit check",
    "Last Modified": "2024-05-03T18:33:00Z",
}


@st.composite
def mutated_row(draw) -> dict[str, Any]:
    """A valid view row with keys dropped, values nulled, types swapped, numbers made huge or
    negative or written as strings, and unknown keys added."""
    row = dict(VALID_ROW)
    for key in list(row):
        action = draw(st.sampled_from(["keep", "keep", "drop", "null", "json", "string", "number"]))
        if action == "drop":
            del row[key]
        elif action == "null":
            row[key] = None
        elif action == "json":
            row[key] = draw(JSON)
        elif action == "string":
            row[key] = str(row[key])
        elif action == "number":
            row[key] = draw(st.integers(min_value=-(10**25), max_value=10**25) | st.floats())
    for key, value in draw(st.dictionaries(st.text(max_size=10), JSON, max_size=3)).items():
        row.setdefault(key, value)
    return row


RECORDS = st.lists(mutated_row() | JSON, max_size=8)
WAREHOUSE = duckdb.connect()  # one in-memory database for every example (connecting is slow)


def _json_or_nan(text: str) -> Any:
    return json.loads(text)  # the payload is JSON text (NaN/Infinity as Python writes them)


@FUZZ
@given(RECORDS)
def test_view_rows_never_raise_every_record_is_kept_or_quarantined_and_conform_has_its_columns(records):
    raw, names = view_frame(records)
    frame = raw.frame

    assert raw.records_served == len(records) == len(frame)
    assert raw.quarantined == sum(1 for r in records if type(r) is not dict)
    assert raw.valid_rows + raw.quarantined == len(records)
    assert list(frame[KEY_COLUMN]) == [str(i) for i in range(1, len(records) + 1)]
    for record, reason, payload in zip(records, frame[QUARANTINE_COLUMN], frame[PAYLOAD_COLUMN]):
        if type(record) is dict:
            assert reason is None or (isinstance(reason, float) and math.isnan(reason)) or str(reason) == "<NA>"
        else:
            assert isinstance(reason, str) and reason  # quarantined with the reason
        assert isinstance(_json_or_nan(payload), (dict, list, str, int, float, bool, type(None)))
    expected = {KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN, INGESTED_COLUMN, *names.values()}
    assert set(frame.columns) == expected
    # The frame is writable to the warehouse as it stands.
    WAREHOUSE.execute("CREATE OR REPLACE TEMP TABLE t AS SELECT * FROM frame")
    assert WAREHOUSE.execute("SELECT count(*) FROM t").fetchone()[0] == len(records)
    assert list(conform_timesheets(frame).columns) == list(TIMESHEET_COLUMNS)
    assert list(conform_projects(frame).columns) == list(PROJECT_COLUMNS)


@FUZZ
@given(JSON)
def test_view_row_model_accepts_any_object_and_refuses_everything_else_with_a_validation_error(value):
    try:
        row = ViewRow.model_validate(value)
    except pydantic.ValidationError:
        assert not isinstance(value, dict)
    else:
        assert isinstance(value, dict) and row.model_extra == value


@FUZZ
@given(
    st.binary(max_size=200)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.lists(st.lists(SCALARS.map(str), max_size=4), max_size=4).map(
        lambda rows: "\r\n".join(",".join(r) for r in rows).encode("utf-8", "surrogatepass")
    )
)
def test_export_parser_returns_rows_or_a_malformed_or_rejected_body(body):
    for output_format, content_type in (
        ("JSON", None),
        ("JSON", "application/json"),
        ("CSV", "text/csv"),
        ("CSV", "text/plain"),
        ("Excel", None),
    ):
        try:
            export = parse_export(body, output_format, content_type)
        except (MalformedBody, VendorRejected):
            continue
        assert isinstance(export.records, list)
        view_frame(export.records)  # and whatever it parsed types without raising


JOB_KEYS = [
    "jobId",
    "jobID",
    "jobStatus",
    "jobStatusText",
    "percentCompleted",
    "publishLink",
    "publishLinkAccessScope",
    "completedDate",
    "purgeDateTime",
    "purgeDays",
    "canReRun",
    "value",
]


@FUZZ
@given(JSON | st.dictionaries(st.sampled_from(JOB_KEYS), JSON, max_size=8))
def test_job_answers_validate_or_raise_a_validation_error_and_never_break_the_sensor_helpers(body):
    for row in job_rows(body):
        try:
            job = BackgroundJob.model_validate(row)
        except pydantic.ValidationError:
            continue
        job.describe()
        job.purge_deadline()
        assert job.is_completed + job.is_failed + job.is_pending == 1
    try:
        ExportJob.model_validate(body)
    except pydantic.ValidationError:
        pass
