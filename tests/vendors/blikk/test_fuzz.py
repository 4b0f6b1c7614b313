"""Fuzzing the Blikk models, raw specs, page parsing and conform mapping with hypothesis.

Whatever JSON Blikk serves — random values, or valid records with keys dropped, types swapped,
nulls, huge / negative / non-finite numbers, numbers as strings, dates near year 1 or 9999 —
the pipeline never raises: every record becomes one raw row, valid or quarantined with a
reason, and the conform functions return the conformed columns with their required values.
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import EXTREME_NUMBERS, PLAIN_SCALARS, json_values
from tests.support.raw_contract import assert_raw_contract
from timesheet_assets.conformed.schema import (
    PROJECT_COLUMNS,
    PROJECT_STATUSES,
    TIMESHEET_COLUMNS,
    TIMESHEET_STATUSES,
)
from timesheet_assets.http import MalformedBody, VendorRejected
from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.vendors.blikk.assets import (
    ABSENCE_PROJECT_SPEC,
    INTERNAL_PROJECT_SPEC,
    PROJECT_SPEC,
    combine_raw,
    split_by_window,
    time_report_spec,
)
from timesheet_assets.vendors.blikk.conform import conform_projects, conform_time_reports
from timesheet_assets.vendors.blikk.models import (
    AbsenceProject,
    ListEnvelope,
    Project,
    RegistryProject,
    TimeReport,
)
from timesheet_assets.vendors.blikk.resource import _parse_page
from timesheet_assets.vendors.blikk.sandbox import generate_data

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIRST, LAST = date(2025, 3, 1), date(2025, 3, 31)

_DATA = generate_data(SandboxConfig(anchor_date=LAST, days=31, time_records=40, projects=5))
# A report with every reference filled in, so the mutations have something to break.
REPORT = next(r for r in _DATA.time_reports if r["project"] and r["sentToAttestDate"] and r["breakMinutes"])
PROJECT = next(p for p in _DATA.projects if p["endDate"] and p["updated"])
INTERNAL = _DATA.internal_projects[-1]
ABSENCE = _DATA.absence_projects[0]

# Python's json decoder (what the client uses) accepts NaN and Infinity, so they are fair game.
SCALARS = PLAIN_SCALARS
JSON = json_values()
EDGE_NUMBERS = [*EXTREME_NUMBERS, 25, 24.0, 24.25, 1441, float("-inf"), "8,5"]
EDGE_TIMES = [
    "2025-13-45",
    "2025-02-30",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01 00:00:00 +05:00",
    "9999-12-31 23:59:59 -05:00",
    "9999-12-31T23:59:59-14:00",
    "2025-03-10 08:00:00 +00:00",
    "2025-03-10T08:00:00Z",
    "2025-03-10 08:00:00",
    "1899-12-31",
    "2201-01-01 00:00:00 +00:00",
    "20250310",
    "2025-03-10 25:61:00 +00:00",
    "yesterday",
    1743400000,
    "1743400000",
]
EDGE_OTHER = [
    None,
    "",
    " ",
    "abc",
    "\x00",
    [],
    {},
    [1, 2],
    {"id": 1},
    {"id": None},
    {"id": "x"},
    {"id": 10**30, "name": 5},
    {"id": True},
]
NASTY = st.sampled_from(EDGE_NUMBERS + EDGE_TIMES + EDGE_OTHER)
TIME_KEYS = {
    "date",
    "startDate",
    "endDate",
    "created",
    "updated",
    "createdDate",
    "updatedDate",
    "sentToAttestDate",
    "attestedDate",
    "expires",
}


def edge_value(key: str, value: Any) -> st.SearchStrategy[Any]:
    """An edge value of the field's own kind most of the time (so the rare crashing ones are
    actually hit), any edge value otherwise."""
    if key in TIME_KEYS:
        own = st.sampled_from(EDGE_TIMES)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        own = st.sampled_from(EDGE_NUMBERS)
    else:
        own = st.sampled_from(EDGE_OTHER)
    return st.one_of(own, own, NASTY)


@st.composite
def mutated(draw: st.DrawFn, template: dict[str, Any]) -> dict[str, Any]:
    """A valid record with up to six of its keys dropped, nulled, swapped for random JSON,
    replaced by an edge value, turned into a string, negated or blown up (nested references
    included); plus unknown extra keys."""
    record = dict(template)
    targets = draw(st.lists(st.sampled_from(sorted(template)), max_size=6, unique=True))
    for key in targets:
        value = template[key]
        action = draw(st.sampled_from(["drop", "null", "json", "edge", "edge", "edge", "str", "scale", "nested"]))
        if action == "drop":
            record.pop(key)
        elif action == "null":
            record[key] = None
        elif action == "json":
            record[key] = draw(JSON)
        elif action == "edge":
            record[key] = draw(edge_value(key, value))
        elif action == "str":
            record[key] = str(value)
        elif action == "scale":
            factor = draw(st.sampled_from([-1, 1000, 10**9, -(10**12), 10**20]))
            record[key] = value * factor if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        elif action == "nested" and isinstance(value, dict):
            inner = draw(st.sampled_from(sorted(value) or ["id"]))
            record[key] = {**value, inner: draw(edge_value(inner, value.get(inner)))}
    record.update(draw(st.dictionaries(st.text(max_size=6), JSON, max_size=2)))
    return record


def records_of(template: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.one_of(mutated(template), mutated(template), JSON), max_size=5)


@FUZZ
@given(records=records_of(REPORT), names=st.dictionaries(st.sampled_from(["1", "2", "5"]), st.text(max_size=8)))
def test_time_reports_fuzz_never_raises(records, names):
    kept, outside = split_by_window(records, FIRST, LAST)  # must not raise either
    assert len(kept) + outside == len(records)
    raw = build_raw_frame(time_report_spec(names), kept, default_date=FIRST)
    frame = assert_raw_contract(raw, kept, TimeReport)
    # Every row, quarantined or not, lands on a day of the run's window (a rerun replaces it).
    assert frame["work_date"].notna().all()
    assert all(FIRST <= day <= LAST for day in frame["work_date"])

    conformed = conform_time_reports(frame)
    assert list(conformed.columns) == list(TIMESHEET_COLUMNS)
    assert len(conformed) == len(frame) - raw.quarantined
    for column in ("source_system", "entry_id", "work_date", "employee_id", "status", "ingested_at"):
        assert conformed[column].notna().all(), column
    assert set(conformed["status"]) <= set(TIMESHEET_STATUSES)
    for column in ("regular_hours", "overtime_hours", "total_hours"):
        assert all(math.isfinite(h) and 0 <= h <= 24 for h in conformed[column]), column
    billable = conformed["billable_hours"].dropna()
    assert all(math.isfinite(h) and h >= 0 for h in billable)


PROJECT_KINDS = {
    "project": (PROJECT, PROJECT_SPEC, Project),
    "internal": (INTERNAL, INTERNAL_PROJECT_SPEC, RegistryProject),
    "absence": (ABSENCE, ABSENCE_PROJECT_SPEC, AbsenceProject),
}


@st.composite
def project_parts(draw: st.DrawFn) -> list[tuple[str, list[Any]]]:
    """Records for one or two of the three lists ``raw/blikk/projects`` combines."""
    kinds = draw(st.lists(st.sampled_from(list(PROJECT_KINDS)), min_size=1, max_size=2, unique=True))
    return [(kind, draw(records_of(PROJECT_KINDS[kind][0]))) for kind in kinds]


@FUZZ
@given(parts=project_parts())
def test_projects_fuzz_never_raises(parts):
    raws = []
    for kind, records in parts:
        _, spec, model = PROJECT_KINDS[kind]
        raws.append(build_raw_frame(spec, records))
        assert_raw_contract(raws[-1], records, model)
    raw = combine_raw(raws)
    frame = raw.frame
    assert raw.records_served == len(frame) == sum(len(records) for _, records in parts)

    conformed = conform_projects(frame)
    assert list(conformed.columns) == list(PROJECT_COLUMNS)
    assert len(conformed) == len(frame) - raw.quarantined
    for column in ("source_system", "project_id", "status", "ingested_at"):
        assert conformed[column].notna().all(), column
    assert set(conformed["status"]) <= set(PROJECT_STATUSES)


PAGE_BODY = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"items": st.one_of(st.lists(st.one_of(mutated(REPORT), JSON), max_size=3), JSON)},
        optional={
            key: st.one_of(st.integers(-5, 10**6), NASTY, JSON)
            for key in ("page", "pageSize", "itemCount", "totalItemCount", "totalPages", "objectName")
        },
    ),
)


@FUZZ
@given(
    body=PAGE_BODY,
    raw_bytes=st.one_of(st.none(), st.binary(max_size=40)),
    page=st.one_of(st.none(), st.integers(1, 5)),
    page_size=st.integers(1, 100),
)
def test_page_parsing_fails_only_with_client_errors(body, raw_bytes, page, page_size):
    """Any 200 answer to a list call parses into a paged list or raises one of the two errors
    the shared client turns into a retry (``MalformedBody``) or a clear failure
    (``VendorRejected``) — never anything else."""
    try:
        content = raw_bytes if raw_bytes is not None else json.dumps(body).encode()
    except ValueError:  # out-of-range floats json cannot write
        return
    response = httpx.Response(200, content=content, request=httpx.Request("GET", "https://x.test/"))
    try:
        parsed = _parse_page(response, page, page_size)
    except (MalformedBody, VendorRejected) as exc:
        assert str(exc)
    else:
        assert isinstance(parsed, ListEnvelope) and isinstance(parsed.items, list)
