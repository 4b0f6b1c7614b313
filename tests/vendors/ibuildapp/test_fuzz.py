"""Fuzzing the iBuildApp models, raw specs, page parsing and conform mapping with hypothesis.

Whatever JSON the vendor serves — random values, or valid records with keys dropped, types
swapped, nulls, huge / negative / non-finite numbers, numbers as strings — the pipeline never
raises: every record becomes one raw row, valid or quarantined with a reason, and the conform
functions return the conformed columns with their required values filled.
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
from tests.vendors.ibuildapp.conftest import small_config
from timesheet_assets.conformed.schema import (
    PROJECT_COLUMNS,
    PROJECT_STATUSES,
    TIMESHEET_COLUMNS,
    TIMESHEET_STATUSES,
)
from timesheet_assets.http import AuthExpired, MalformedBody, VendorRejected
from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.vendors.ibuildapp.assets import project_spec, split_by_window, time_entry_spec
from timesheet_assets.vendors.ibuildapp.conform import conform_projects, conform_timesheets
from timesheet_assets.vendors.ibuildapp.models import Project, TimeEntry
from timesheet_assets.vendors.ibuildapp.resource import (
    PROJECT_SIDE_TABLES,
    TIME_ENTRY_SIDE_TABLES,
    IBuildAppResource,
    page_parser,
    side_table,
)
from timesheet_assets.vendors.ibuildapp.sandbox import build_state

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIRST, LAST = date(2025, 3, 1), date(2025, 3, 31)

_STATE = build_state(small_config())
ENTRY = _STATE.entries[1]
PROJECT = _STATE.projects[1]
SIDE_TEMPLATES = {
    "users": _STATE.users[1],
    "tasks": _STATE.tasks[1],
    "projects": PROJECT,
    "clients": _STATE.clients[1],
}
RESOURCES = {
    zone: IBuildAppResource(base_url="https://timesheets.example.test", app_code="fuzz", token="tok", timezone=zone)
    for zone in ("UTC", "America/New_York", "Pacific/Kiritimati")
}

# Python's json decoder (what the client uses) accepts NaN and Infinity, so they are fair game.
SCALARS = PLAIN_SCALARS
JSON = json_values()
NASTY = st.sampled_from(
    [
        None,
        "",
        " ",
        "abc",
        *EXTREME_NUMBERS,
        "2025-13-45 25:61:00",
        1,
        False,
        [],
        {},
        [1, 2],
        {"id": 1},
        "1743400000",
        "2025-03-10 08:00:00",
        253402300800,
        -62135596800,
    ]
)


@st.composite
def mutated(draw: st.DrawFn, template: dict[str, Any]) -> dict[str, Any]:
    """A valid record with each key kept, dropped, nulled, swapped for random JSON, replaced by
    an edge value, turned into a string, negated or blown up; plus unknown extra keys."""
    record: dict[str, Any] = {}
    for key, value in template.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "null", "json", "nasty", "str", "scale"]))
        if action == "drop":
            continue
        if action == "keep":
            record[key] = value
        elif action == "null":
            record[key] = None
        elif action == "json":
            record[key] = draw(JSON)
        elif action == "nasty":
            record[key] = draw(NASTY)
        elif action == "str":
            record[key] = str(value)
        elif action == "scale":
            factor = draw(st.sampled_from([-1, 1000, 10**9, -(10**12)]))
            record[key] = value * factor if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    record.update(draw(st.dictionaries(st.text(max_size=6), JSON, max_size=2)))
    return record


def records_of(template: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.one_of(mutated(template), mutated(template), JSON), max_size=6)


def side_tables(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """A page's ``data`` holding side tables as objects keyed by id strings or as lists."""

    def table(name: str) -> st.SearchStrategy[Any]:
        item = st.one_of(mutated(SIDE_TEMPLATES[name]), JSON)
        return st.one_of(
            st.dictionaries(st.sampled_from(["1", "2", "3", "x"]), item, max_size=3), st.lists(item, max_size=3), JSON
        )

    return st.fixed_dictionaries({name: table(name) for name in names})


@FUZZ
@given(records=records_of(ENTRY), data=side_tables(TIME_ENTRY_SIDE_TABLES), zone=st.sampled_from(list(RESOURCES)))
def test_time_entries_fuzz_never_raises(records, data, zone):
    resource = RESOURCES[zone]
    related = {name: side_table(data, name) for name in TIME_ENTRY_SIDE_TABLES}
    split_by_window(resource, records, FIRST, LAST)  # must not raise either
    raw = build_raw_frame(time_entry_spec(resource, related, FIRST, LAST), records, default_date=FIRST)
    frame = assert_raw_contract(raw, records, TimeEntry)
    assert frame.loc[frame["quarantine_reason"].isna(), "work_date"].notna().all()
    assert frame.loc[frame["quarantine_reason"].notna(), "work_date"].notna().all()

    conformed = conform_timesheets(frame)
    assert list(conformed.columns) == list(TIMESHEET_COLUMNS)
    assert len(conformed) == len(frame) - raw.quarantined
    for column in ("source_system", "entry_id", "work_date", "employee_id", "status"):
        assert conformed[column].notna().all(), column
    assert set(conformed["status"]) <= set(TIMESHEET_STATUSES)
    hours = conformed["total_hours"]
    assert all(math.isfinite(h) and 0 <= h <= 31 * 24 for h in hours)


@FUZZ
@given(records=records_of(PROJECT), data=side_tables(PROJECT_SIDE_TABLES))
def test_projects_fuzz_never_raises(records, data):
    related = {name: side_table(data, name) for name in PROJECT_SIDE_TABLES}
    raw = build_raw_frame(project_spec(related), records)
    frame = assert_raw_contract(raw, records, Project)

    conformed = conform_projects(frame)
    assert list(conformed.columns) == list(PROJECT_COLUMNS)
    assert len(conformed) == len(frame) - raw.quarantined
    for column in ("source_system", "project_id", "status"):
        assert conformed[column].notna().all(), column
    assert set(conformed["status"]) <= set(PROJECT_STATUSES)


PAGE_BODY = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {
            "status": st.sampled_from(["SUCCESS", "ERROR", "error"]),
            "data": st.one_of(JSON, side_tables(("users",))),
            "count": st.one_of(st.integers(-5, 50), JSON),
        },
        optional={"message": JSON, "error_code": st.one_of(st.sampled_from([9, "9", 5]), JSON)},
    ),
)


@FUZZ
@given(body=PAGE_BODY, offset=st.integers(0, 60), raw_bytes=st.one_of(st.none(), st.binary(max_size=40)))
def test_page_parsing_fails_only_with_client_errors(body, offset, raw_bytes):
    """Any answer to a search call parses or raises one of the errors the shared client turns
    into a retry, a re-login or a clear failure — never anything else."""
    content = raw_bytes if raw_bytes is not None else json.dumps(body).encode()
    response = httpx.Response(200, content=content, request=httpx.Request("POST", "https://x.test/"))
    try:
        parsed = page_parser("time_entries", offset)(response)
    except (MalformedBody, VendorRejected, AuthExpired) as exc:
        assert str(exc)
    else:
        assert isinstance(parsed, dict)
