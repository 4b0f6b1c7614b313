"""Fuzzing the Ajera models, raw frames, envelope reading and conform mapping with hypothesis.

Whatever JSON Ajera serves — random values, or valid records with keys dropped, types swapped,
nulls, huge / negative / non-finite numbers, numbers as strings — the pipeline never raises:
every served record is valid or quarantined with a reason, and the conform functions return the
conformed columns.

Projects go through the shared ``build_raw_frame(PROJECT_SPEC, records)``. Timesheets have no
``RawSpec`` (a week is validated as a whole and exploded into day-rows), so they go through the
vendor's ``fetch_timesheets`` bookkeeping and ``build_timesheet_frame`` — the same path the
asset takes.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import date, timedelta
from typing import Any

import duckdb
import httpx
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import json_values
from timesheet_assets.conformed.schema import PROJECT_COLUMNS, TIMESHEET_COLUMNS, TIMESHEET_STATUSES
from timesheet_assets.http import AuthExpired, MalformedBody, VendorRejected
from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.vendors.ajera.assets import (
    PROJECT_SPEC,
    TimesheetRejected,
    _validated_lines,
    build_timesheet_frame,
    line_records,
)
from timesheet_assets.vendors.ajera.conform import conform_projects, conform_timesheets
from timesheet_assets.vendors.ajera.envelope import read_envelope
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.ajera.sandbox import build_dataset, envelope

from .conftest import small_config

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONFIG = small_config()
FIRST, LAST = CONFIG.first_date, CONFIG.anchor_date
DATASET = build_dataset(CONFIG)
TIMESHEETS = list(DATASET.timesheets.values())
PROJECTS = DATASET.projects

# Python's json decoder (what the client uses) accepts NaN and Infinity, so they are fair game.
EDGE_NUMBERS = st.sampled_from(
    [0, -1, -24.5, 24.25, 1e308, -1e308, 2**63, 2**63 - 1, -(2**63) - 1, 10**30, 0.1, math.nan, math.inf, -math.inf]
)
EDGE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "eight",
        "8",
        "-3",
        "1e400",
        "NaN",
        "true",
        "null",
        "2025-02-30",
        "9999-12-31",
        "0001-01-01",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "2025-03-16T00:00:00",
        "Active",
        "\u0000",
        "ÿ" * 40,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | EDGE_NUMBERS
    | EDGE_TEXT
)
JSON = json_values(SCALARS, key_size=10)


def _swapped(value: Any) -> Any:
    """The same value in another JSON type."""
    if isinstance(value, bool):
        return "yes" if value else 0
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return {"items": value}
    if isinstance(value, dict):
        return list(value.values())
    return 0


@st.composite
def mutated(draw, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with some keys dropped, nulled, retyped or replaced by edge values."""
    out = copy.deepcopy(record)
    if not out:
        return out
    keys = draw(st.lists(st.sampled_from(sorted(out)), max_size=min(6, len(out)), unique=True))
    for key in keys:
        action = draw(st.sampled_from(["drop", "null", "swap", "edge", "random"]))
        if action == "drop":
            del out[key]
        elif action == "null":
            out[key] = None
        elif action == "swap":
            out[key] = _swapped(out[key])
        elif action == "edge":
            out[key] = draw(EDGE_NUMBERS | EDGE_TEXT)
        else:
            out[key] = draw(JSON)
    if draw(st.booleans()):
        out[draw(st.text(min_size=1, max_size=10))] = draw(JSON)  # unknown extra field
    return out


@st.composite
def mutated_detail(draw, detail: dict[str, Any]) -> Any:
    """A ``GetTimesheets`` record mutated at the top, in a section, or in one of its lines."""
    out = copy.deepcopy(detail)
    where = draw(st.sampled_from(["top", "section", "line", "line", "line", "random"]))
    if where == "random":
        return draw(JSON)
    if where == "top":
        return draw(mutated(out))
    section = draw(st.sampled_from(["Project", "Overhead"]))
    if where == "section":
        out[section] = draw(st.one_of(mutated(out[section]), JSON))
        return out
    lines = out[section]["Detail"]
    if lines:
        index = draw(st.integers(0, len(lines) - 1))
        lines[index] = draw(mutated(lines[index]))
    else:
        lines.append(draw(st.one_of(mutated(TIMESHEETS[0]["detail"]["Project"]["Detail"][0]), JSON)))
    return out


@st.composite
def served_timesheets(draw) -> tuple[list[Any], list[Any]]:
    """What ListTimesheets and GetTimesheets answer: some weeks intact, some mutated, some
    random, a duplicate now and then."""
    picks = draw(st.lists(st.sampled_from(TIMESHEETS), min_size=1, max_size=5))
    listed: list[Any] = []
    details: list[Any] = []
    for timesheet in picks:
        mode = draw(st.sampled_from(["intact", "list", "detail", "both", "random", "no-detail"]))
        list_record = copy.deepcopy(timesheet["list"])
        detail = copy.deepcopy(timesheet["detail"])
        if mode in ("list", "both"):
            list_record = draw(mutated(list_record))
        if mode in ("detail", "both"):
            detail = draw(mutated_detail(detail))
        if mode == "random":
            list_record = draw(JSON)
        listed.append(list_record)
        if mode != "no-detail":
            details.append(detail)
    if draw(st.booleans()):
        details.append(draw(JSON))  # something nobody asked for
    return listed, details


class ServedAjera(AjeraResource):
    """The resource's own fetch bookkeeping (dedupe, detail matching) over canned answers."""

    def list_timesheets(self, earliest: date, latest: date, employees=None) -> list[Any]:
        return SERVED["listed"]

    def get_timesheets(self, keys) -> list[list[Any]]:
        return [SERVED["details"]]


SERVED: dict[str, list[Any]] = {"listed": [], "details": []}
RESOURCE = ServedAjera(base_url="https://ajera.example.test/AjeraAPI.ashx", api_id="id", username="u", password="p")


_DUCKDB = duckdb.connect()


def duckdb_round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as conform sees it in a run: stored in DuckDB and read back."""
    _DUCKDB.register("frame", frame)
    try:
        return _DUCKDB.execute("SELECT * FROM frame").fetchdf()
    finally:
        _DUCKDB.unregister("frame")


def _timesheet_of(key: str) -> str:
    """The timesheet part of a raw record key (``147:P2:2012-09-11`` → ``147``)."""
    parts = key.split(":")
    return ":".join(parts[:2]) if parts[0] == "unkeyed" else parts[0].split("#")[0]


@FUZZ
@given(served_timesheets())
def test_timesheet_pipeline_never_raises_and_accounts_for_every_week(served):
    SERVED["listed"], SERVED["details"] = served
    fetch = RESOURCE.fetch_timesheets(FIRST, LAST)
    raw, weeks = build_timesheet_frame(fetch)
    frame = raw.frame

    assert raw.records_served == len(fetch.listed)
    # Classify every listed week independently: valid or rejected, never anything else.
    rejected = 0
    for listed in fetch.listed:
        key = listed.get("Timesheet Key") if isinstance(listed, dict) else None
        try:
            key = int(key) if key is not None else None
        except (TypeError, ValueError, OverflowError):
            key = None
        detail = fetch.details.get(key) if key is not None else None
        records = line_records(listed, detail) if isinstance(detail, dict) else []
        try:
            _validated_lines(listed, detail, records)
        except TimesheetRejected:
            rejected += 1
    assert raw.quarantined == rejected
    quarantined = frame[frame["quarantine_reason"].notna()]
    assert quarantined["quarantine_reason"].str.len().gt(0).all()
    assert quarantined["payload"].notna().all()
    assert quarantined["record_key"].map(_timesheet_of).nunique() == rejected
    assert frame["record_key"].notna().all() and frame["record_key"].is_unique
    assert frame["work_date"].map(lambda d: FIRST <= d <= LAST).all()
    valid = frame[frame["quarantine_reason"].isna()]
    hours = pd.concat([valid["regular_hours"], valid["overtime_hours"]])
    assert hours.map(math.isfinite).all()
    # Every valid week reports Ajera's numbers for the reconciliation, each day inside its week.
    assert len(weeks) == len(fetch.listed) - rejected
    assert all(
        week.week is None or set(week.cells) <= {week.week[0] + timedelta(days=i) for i in range(7)} for week in weeks
    )

    conformed = conform_timesheets(duckdb_round_trip(frame))
    assert list(conformed.columns) == list(TIMESHEET_COLUMNS)
    assert len(conformed) == len(valid)
    assert conformed["entry_id"].is_unique
    assert set(conformed["status"]) <= set(TIMESHEET_STATUSES)
    assert conformed["total_hours"].map(math.isfinite).all()


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.sampled_from(PROJECTS).flatmap(lambda p: mutated(p)),
            st.sampled_from(PROJECTS).map(copy.deepcopy),
            JSON,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_project_pipeline_never_raises_and_keeps_every_record(records):
    raw = build_raw_frame(PROJECT_SPEC, records)
    frame = raw.frame
    assert len(frame) == len(records) == raw.records_served  # one row per project record
    quarantined = frame[frame["quarantine_reason"].notna()]
    assert len(quarantined) == raw.quarantined
    assert quarantined["quarantine_reason"].str.len().gt(0).all()
    valid = frame[frame["quarantine_reason"].isna()]
    assert valid["project_key"].notna().all()
    conformed = conform_projects(duckdb_round_trip(frame))
    assert list(conformed.columns) == list(PROJECT_COLUMNS)
    assert len(conformed) == len(valid)
    assert conformed["project_id"].notna().all()


def _response(body: Any) -> httpx.Response:
    try:
        content = json.dumps(body).encode()
    except (TypeError, ValueError):
        content = b"{"
    return httpx.Response(200, content=content)


@FUZZ
@given(
    st.one_of(
        JSON,
        st.builds(
            lambda content, code, errors: envelope(content, code=code, errors=errors),
            JSON,
            st.one_of(st.sampled_from([200, 400, 401, 500]), st.integers()),
            st.one_of(st.none(), st.lists(JSON, max_size=3)),
        ),
    ),
    st.sampled_from(["ListTimesheets", "GetTimesheets", "ListProjects", "GetProjects"]),
)
def test_envelope_reading_only_raises_the_client_s_signals(body, method):
    """Any answer body either yields ``Content`` or raises one of the three exceptions the
    shared client knows how to handle (retry, re-authenticate once, fail with the message)."""
    records = {"ListTimesheets": "Timesheets", "GetTimesheets": "Timesheets"}.get(method, "Projects")
    try:
        result = read_envelope(method, _response(body), session_call=True, records=records)
    except (MalformedBody, AuthExpired, VendorRejected) as exc:
        assert str(exc).startswith(method)
        return
    assert isinstance(result, list)
