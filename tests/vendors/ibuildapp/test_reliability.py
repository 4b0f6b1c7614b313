"""iBuildApp under faults and bad payloads, over real HTTP on loopback, through Dagster.

Fault matrix (issue 9): every fault the sandbox can inject either ends in a complete run with
each row exactly once (keys compared with the sandbox's data) or in a clear failure naming
vendor, endpoint path, status and attempt count that leaves the warehouse as it was. Bad and
drifting payloads: extra fields are kept, missing optional fields become nulls, wrong types and
impossible values are quarantined (never dropped), a malformed page fails the run.

Already covered elsewhere and not repeated here: token expiry with HTTP 401 and with the
``status: ERROR`` envelope under HTTP 200 (test_errors.py::test_expired_token_triggers_exactly_
one_relogin), a token refused after the re-login, an ERROR envelope under HTTP 200, one 503
retried at the resource level, and ``"n/a"`` durations / missing ``user_id`` quarantined
(test_assets.py::test_invalid_records_are_quarantined_not_dropped).

Step retries: the assets carry ``HTTP_RETRY_POLICY`` (2 retries, 30 s apart). Tests that
exhaust the client's attempts swap in a 1-retry, no-delay policy on the same assets so they
stay fast while still showing which failures reach the step retry policy (outages) and which
fail at once (permanent answers).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import (
    failure_text,
    materialization_metadata,
    materialize,
    read_table,
    step_retries,
)
from tests.support.step_retries import use_quick_step_retries
from tests.vendors.ibuildapp.conftest import resource_for, small_config
from timesheet_assets.ingest import QUARANTINE_CHECK
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.ibuildapp import sandbox as ib_sandbox
from timesheet_assets.vendors.ibuildapp.assets import ASSETS, PROJECTS_KEY, TIME_ENTRIES_KEY, projects, time_entries
from timesheet_assets.vendors.ibuildapp.conform import conform_projects, conform_timesheets
from timesheet_assets.vendors.ibuildapp.sandbox import approve_pending, state_of

TIME_ENTRIES = ["raw", "ibuildapp", "time_entries"]
PROJECTS = ["raw", "ibuildapp", "projects"]
ENTRIES_TABLE = "ibuildapp.time_entries"
PROJECTS_TABLE = "ibuildapp.projects"
SIDE_TABLES_TABLE = "ibuildapp.time_entry_side_tables"
TS_PATH = "/api/tsdemo/ts/search"
PROJECT_PATH = "/api/tsdemo/project/search"
PAGE = 40  # small_config serves 120 entries: 3 pages, so faults can hit a page after the first
ATTEMPTS = 3  # max_attempts in the failing runs

CONFIG = small_config()
FIRST, LAST = CONFIG.first_date, CONFIG.anchor_date


# -- helpers -------------------------------------------------------------------------------------
@pytest.fixture
def quick_step_retries(monkeypatch) -> dg.RetryPolicy:
    """The real policy (asserted here) with its 30 s delay swapped for none and one retry."""
    return use_quick_step_retries(monkeypatch, ASSETS)


def run(server: SandboxServer, warehouse: str, assets=ASSETS, **resource_options: Any):
    """One run over the whole sandbox window (an ephemeral instance: nothing here reads the
    run history, and it halves the cost of a run)."""
    options: dict[str, Any] = dict(page_size=PAGE, backoff_cap_seconds=0.05)
    options.update(resource_options)
    return materialize(
        list(assets),
        {"ibuildapp": resource_for(server, **options)},
        warehouse,
        first=FIRST,
        last=LAST,
        raise_on_error=False,
    )


def table(warehouse: str, name: str) -> pd.DataFrame:
    return read_table(warehouse, name).sort_values("record_key").reset_index(drop=True)


def served_entry_keys(server: SandboxServer) -> list[str]:
    return sorted(str(e["id"]) for e in state_of(server.app).entries.values())


def served_project_keys(server: SandboxServer) -> list[str]:
    return sorted(str(p["id"]) for p in state_of(server.app).projects.values())


def assert_every_row_exactly_once(server: SandboxServer, warehouse: str) -> None:
    entries = read_table(warehouse, ENTRIES_TABLE)
    assert entries["record_key"].is_unique
    assert sorted(entries["record_key"]) == served_entry_keys(server)
    assert entries["quarantine_reason"].isna().all()
    project_rows = read_table(warehouse, PROJECTS_TABLE)
    assert project_rows["record_key"].is_unique
    assert sorted(project_rows["record_key"]) == served_project_keys(server)


# -- 1a. faults the run rides out ----------------------------------------------------------------
# (knobs, resource options, how many faults hit ts/search). ``None`` in a script lets one
# request through, so the faults hit the second page, after the first one was read.
RECOVERED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # 40 % of all calls (login included) refused, no Retry-After: the client's own backoff.
    # Seed 7 gives 18 refusals over 15 logical calls (6 attempts allowed per call).
    "429-storm-all-endpoints": (
        dict(status_rates={429: 0.4}, retry_after=None, seed=7, path_contains="/api/"),
        dict(page_size=10),
    ),
    "500-burst": (dict(script=[None, 500, 500], path_contains="/ts/search"), {}),
    "502-burst": (dict(script=[None, 502, 502], path_contains="/ts/search"), {}),
    "503-burst": (dict(script=[None, 503, 503], retry_after="0", path_contains="/ts/search"), {}),
    "read-timeout": (
        dict(script=[None, "timeout", "timeout"], timeout_seconds=1.0, path_contains="/ts/search"),
        dict(timeout_seconds=0.25),
    ),
    "reset-mid-body": (dict(script=[None, "reset", "reset"], path_contains="/ts/search"), {}),
    "truncated-json": (dict(script=[None, "truncate", "truncate"], path_contains="/ts/search"), {}),
}


@pytest.mark.parametrize("fault", list(RECOVERED))
def test_transient_fault_run_completes_with_every_row_once(start_sandbox, warehouse, fault):
    knobs, options = RECOVERED[fault]
    server = start_sandbox(CONFIG)
    sandbox = server.sandbox
    sandbox.knobs.update(**knobs)

    result = run(server, warehouse, **options)

    assert result.success
    assert_every_row_exactly_once(server, warehouse)
    injected = sum(sandbox.stats.faults_injected.values())
    assert injected >= 2
    page = options.get("page_size", PAGE)
    entries_meta = materialization_metadata(result, TIME_ENTRIES)
    projects_meta = materialization_metadata(result, PROJECTS)
    assert entries_meta["rows_in_run"] == 120 and projects_meta["rows"] == 5
    # Each injected fault cost exactly one retry, nothing more (no duplicate pages either).
    assert entries_meta["retries"] + projects_meta["retries"] == injected
    assert entries_meta["list_duplicates_skipped"] == 0
    logical_calls = 1 + 1 + math.ceil(120 / page) + 1  # login + account check + entry pages + project page
    assert sandbox.stats.requests == logical_calls + injected
    if fault.startswith("429"):
        assert entries_meta["rate_limited"] + projects_meta["rate_limited"] == injected
        assert sandbox.stats.by_status[429] == injected


def test_429_retry_after_http_date_is_honoured(start_sandbox, warehouse):
    """The wait comes from the HTTP-date (1-2 s ahead), not the client's own backoff (capped
    at 0.05 s here). iBuildApp documents no body wait hint (``waitInSeconds`` and the like), so
    its 429 body carries none and there is none to test."""
    server = start_sandbox(CONFIG)
    server.sandbox.knobs.update(
        script=[None, 429], retry_after="http-date", wait_hint_seconds=2.0, path_contains="/ts/search"
    )
    result = run(server, warehouse, assets=[time_entries])
    assert result.success
    rejected = [r for r in server.sandbox.stats.calls("/ts/search") if r.status == 429]
    assert len(rejected) == 1
    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["rate_limited"] == 1 and metadata["retries"] == 1
    assert metadata["seconds_waited_rate_limit"] >= 0.5  # the date is 1-2 s ahead; own backoff <= 0.05 s
    entries = read_table(warehouse, ENTRIES_TABLE)
    assert sorted(entries["record_key"]) == served_entry_keys(server)


def test_tokens_expiring_after_every_call_relogin_each_time(start_sandbox, warehouse):
    """Token expiry mid-run, at its worst: each token serves one call, so every call after the
    first meets a dead token, logs in again once and repeats; no page is lost or read twice."""
    server = start_sandbox(CONFIG)
    server.sandbox.knobs.update(token_expiry_after_calls=1)
    result = run(server, warehouse)
    assert result.success
    assert_every_row_exactly_once(server, warehouse)
    logical_calls = 1 + math.ceil(120 / PAGE) + 1  # account check + entry pages + project page
    stats = server.sandbox.stats
    assert stats.count("/login") == logical_calls
    assert [r.status for r in stats.calls("/ts/search")].count(401) >= math.ceil(120 / PAGE) - 1
    metadata = [materialization_metadata(result, key) for key in (TIME_ENTRIES, PROJECTS)]
    assert sum(m["logins"] for m in metadata) == logical_calls
    assert sum(m["reauthentications"] for m in metadata) == logical_calls - 1


def test_refused_token_without_credentials_fails_without_step_retries(start_sandbox, warehouse, quick_step_retries):
    """A configured IBUILDAPP_TOKEN that expired, with nothing to log in with, is permanent:
    the run fails at once (no step retry) naming the variables that would fix it."""
    server = start_sandbox(CONFIG)
    result = run(server, warehouse, assets=[time_entries], token="tok-expired-5c2d", email=None, password=None)
    assert not result.success
    text = failure_text(result)
    assert "rejected the configured IBUILDAPP_TOKEN" in text and "IBUILDAPP_EMAIL" in text
    assert "tok-expired-5c2d" not in text
    assert step_retries(result) == 0
    # The first call (the account check) meets the refusal; nothing else is asked.
    assert server.sandbox.stats.requests == 1 and server.sandbox.stats.count("/login") == 0


# -- 1b. faults that outlast the retries: clear failure, warehouse untouched ---------------------
@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """One sandbox and warehouse, loaded once cleanly; the sandbox's data then changes
    (approvals, a renamed project), so any write by a later run would show in the tables."""
    server = SandboxServer(ib_sandbox.create_app(CONFIG)).start()
    warehouse = str(tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb")
    try:
        assert run(server, warehouse).success
        before = {name: table(warehouse, name) for name in (ENTRIES_TABLE, PROJECTS_TABLE)}
        state = state_of(server.app)
        assert approve_pending(state, 0.2) > 0
        state.projects[1]["name"] = "Renamed after the first load"
        yield SimpleNamespace(server=server, warehouse=warehouse, before=before)
    finally:
        server.stop()


@pytest.fixture
def fresh_knobs(loaded) -> Iterator[SimpleNamespace]:
    sandbox = loaded.server.sandbox
    sandbox.knobs.clear()
    sandbox.knobs.update(retry_after="0", timeout_seconds=1.0, wait_hint_seconds=None)
    sandbox.extra["transform_response"] = None
    sandbox.stats.reset()
    yield loaded
    sandbox.knobs.clear()
    sandbox.extra["transform_response"] = None


def assert_warehouse_unchanged(loaded: SimpleNamespace) -> None:
    for name, before in loaded.before.items():
        pd.testing.assert_frame_equal(table(loaded.warehouse, name), before)


def _page_two_fails(fault: Any, step_attempts: int) -> list[Any]:
    """Page 1 succeeds, then page 2 fails on every attempt, in each step attempt."""
    return ([None] + [fault] * ATTEMPTS) * step_attempts


# (fault, asset, expected status text, reaches the step retry policy)
EXHAUSTED = {
    "429-storm": (429, "ts", "HTTP 429", True),
    "500-burst": (500, "ts", "HTTP 500", True),  # "Try again later": an outage for iBuildApp
    "502-burst": (502, "ts", "HTTP 502", True),
    "503-burst": (503, "ts", "HTTP 503", True),
    "read-timeout": ("timeout", "ts", "no response", True),
    "reset-mid-body": ("reset", "ts", "no response", True),
    "truncated-json": ("truncate", "ts", "HTTP 200", True),
    "projects-reset-mid-body": ("reset", "projects", "no response", True),
}


@pytest.mark.parametrize("case", list(EXHAUSTED))
def test_persistent_fault_fails_clearly_and_leaves_warehouse_as_it_was(fresh_knobs, quick_step_retries, case):
    loaded = fresh_knobs
    fault, target, status_text, step_retried = EXHAUSTED[case]
    step_attempts = 2 if step_retried else 1
    asset, path = (time_entries, TS_PATH) if target == "ts" else (projects, PROJECT_PATH)
    script = _page_two_fails(fault, step_attempts) if target == "ts" else [fault] * ATTEMPTS * step_attempts
    loaded.server.sandbox.knobs.update(script=list(script), path_contains=path)

    result = run(
        loaded.server,
        loaded.warehouse,
        assets=[asset],
        max_attempts=ATTEMPTS,
        timeout_seconds=0.25,
    )

    assert not result.success
    text = failure_text(result)
    assert f"iBuildApp POST {path} failed with {status_text} after {ATTEMPTS} attempts" in text
    assert step_retries(result) == step_attempts - 1
    assert loaded.server.sandbox.stats.count(path) == len(script)
    assert loaded.server.sandbox.knobs.script == []
    assert_warehouse_unchanged(loaded)


# -- 2. bad and drifting payloads ----------------------------------------------------------------
def test_unknown_extra_fields_are_kept_in_payload(start_sandbox, warehouse):
    server = start_sandbox(CONFIG)
    state = state_of(server.app)
    for entry in state.entries.values():
        entry["geofence_id"] = 7
        entry["custom_fields"] = {"po_number": "PO-881"}
    for user in state.users.values():
        user["department"] = "Field Ops"
    for project in state.projects.values():
        project["budget_code"] = "BC-12"

    def drift(endpoint: str, params: dict, body: dict) -> dict:
        body["api_version"] = "1.1"  # unknown keys on the envelope and next to the records
        body["data"]["paging_hint"] = {"next": None}
        return body

    server.sandbox.extra["transform_response"] = drift
    result = run(server, warehouse)

    assert result.success
    assert_every_row_exactly_once(server, warehouse)
    entries = read_table(warehouse, ENTRIES_TABLE)
    assert entries["payload"].str.contains('"custom_fields":{"po_number":"PO-881"}', regex=False).all()
    assert entries["payload"].str.contains('"geofence_id":7', regex=False).all()
    users = read_table(warehouse, SIDE_TABLES_TABLE).query("side_table == 'users'")
    assert set(users["object_id"]) == set(entries["user_id"])
    assert users["payload"].str.contains('"department":"Field Ops"', regex=False).all()
    assert read_table(warehouse, PROJECTS_TABLE)["payload"].str.contains('"budget_code":"BC-12"').all()
    assert materialization_metadata(result, TIME_ENTRIES)["quarantined"] == 0
    assert len(conform_timesheets(entries)) == 120


OPTIONAL_ENTRY_KEYS = (
    "task_id",
    "end_time",
    "approve_date",
    "duration",
    "breaks",
    "comments",
    "status",
    "payment_status",
    "start_location",
    "end_location",
)
OPTIONAL_PROJECT_KEYS = (
    "description",
    "client_id",
    "duration_unit",
    "status",
    "planned_start_date",
    "actual_start_date",
    "planned_end_date",
    "actual_end_date",
    "estimated_duration",
    "actual_duration",
    "tasks",
)


def test_missing_optional_fields_become_nulls(start_sandbox, warehouse):
    server = start_sandbox(CONFIG)
    state = state_of(server.app)
    bare_entries = ["1", "2", "3"]
    for key in bare_entries:
        for name in OPTIONAL_ENTRY_KEYS:
            state.entries[int(key)].pop(name, None)
    state.entries[4].pop("duration")  # no duration: hours come from end - start
    for name in OPTIONAL_PROJECT_KEYS:
        state.projects[2].pop(name, None)
    for user in state.users.values():
        user.pop("last_name")

    result = run(server, warehouse)

    assert result.success
    assert_every_row_exactly_once(server, warehouse)
    entries = read_table(warehouse, ENTRIES_TABLE).set_index("record_key")
    bare = entries.loc[bare_entries]
    for column in (
        "task_id",
        "task_name",
        "project_id",
        "end_time",
        "approve_date",
        "duration_seconds",
        "breaks",
        "comments",
        "status",
        "payment_status",
    ):
        assert bare[column].isna().all(), column
    assert entries["employee_name"].notna().all()  # first name alone still names the person
    conformed = conform_timesheets(entries.reset_index()).set_index("entry_id")
    assert conformed.loc[bare_entries, "total_hours"].tolist() == [0.0, 0.0, 0.0]
    assert set(conformed.loc[bare_entries, "status"]) == {"unknown"}
    span = state.entries[4]["end_time"] - state.entries[4]["start_time"]
    assert conformed.loc["4", "total_hours"] == pytest.approx(span / 3600)
    project_rows = read_table(warehouse, PROJECTS_TABLE).set_index("record_key")
    assert project_rows.loc["2", ["client_id", "status", "planned_start_date", "task_names"]].isna().all()
    assert project_rows.loc["2", "task_count"] == 0
    conformed_projects = conform_projects(project_rows.reset_index()).set_index("project_id")
    assert conformed_projects.loc["2", "status"] == "unknown"
    assert pd.isna(conformed_projects.loc["2", "start_date"])
    assert materialization_metadata(result, TIME_ENTRIES)["quarantined"] == 0
    assert materialization_metadata(result, PROJECTS)["quarantined"] == 0


def test_wrong_types_and_impossible_values_are_quarantined_and_counted(start_sandbox, warehouse):
    server = start_sandbox(CONFIG)
    state = state_of(server.app)
    entries = state.entries
    entries[3]["duration"] = -3600
    entries[4]["duration"] = 40 * 86400  # a 40-day entry
    entries[5]["end_time"] = entries[5]["start_time"] - 600
    entries[6]["breaks"] = "several"
    entries[7]["approve_date"] = "next tuesday"
    entries[8]["end_time"] = 10**20  # overflows any date
    entries[9]["user_id"] = True
    entries[10]["duration"] = "NaN"
    entries[11].pop("duration", None)  # no duration, and an end 40 days after the start
    entries[11]["end_time"] = entries[11]["start_time"] + 40 * 86400
    in_window = entries[1]["start_time"]
    injected = [
        {"id": 9001, "user_id": 1, "start_time": "yesterday"},
        {"id": 9002, "user_id": 1, "start_time": 99999999999},  # year 5138
        {"id": {"nested": 1}, "user_id": 2, "start_time": in_window},
        "not an object",
    ]
    expected_reasons = {
        "3": "duration",
        "4": "duration",
        "5": "end_time is before start_time",
        "6": "breaks",
        "7": "approve_date",
        "8": "end_time",
        "9": "user_id",
        "10": "duration",
        "11": "more than 31 days after start_time",
        "9001": "start_time",
        "9002": "start_time",
        "{'nested': 1}": "id",
    }
    state.projects[1]["name"] = {"en": "Harbour"}
    state.projects[2]["planned_start_date"] = "soon"
    state.projects[3]["tasks"] = "1,2"

    def serve_extra(endpoint: str, params: dict, body: dict) -> dict:
        if endpoint == "ts/search" and params.get("offset") == 0:
            body["data"]["time_entries"].extend(copy.deepcopy(injected))
            body["count"] += len(injected)
        return body

    server.sandbox.extra["transform_response"] = serve_extra
    result = run(server, warehouse, page_size=500)

    assert result.success
    served = len(entries) + len(injected)
    raw = read_table(warehouse, ENTRIES_TABLE)
    valid = raw[raw["quarantine_reason"].isna()]
    bad = raw[raw["quarantine_reason"].notna()].set_index("record_key")
    assert len(valid) + len(bad) == len(raw) == served
    unkeyed = [k for k in bad.index if k.startswith("unkeyed:")]
    assert len(unkeyed) == 1 and "not a JSON object" in bad.loc[unkeyed[0], "quarantine_reason"]
    assert set(bad.index) - set(unkeyed) == set(expected_reasons)
    for key, reason in expected_reasons.items():
        assert reason in bad.loc[key, "quarantine_reason"], (key, bad.loc[key, "quarantine_reason"])
    assert "timestamp outside 1970..2099" in bad.loc["8", "quarantine_reason"]
    assert '"breaks":"several"' in bad.loc["6", "payload"]  # the record as served is kept
    assert bad["work_date"].dt.date.between(FIRST, LAST).all()  # lands in the run's window
    assert sorted(valid["record_key"]) == sorted(
        str(e["id"]) for e in entries.values() if str(e["id"]) not in expected_reasons
    )

    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["records_served"] == served and metadata["rows_in_run"] == served
    assert metadata["quarantined_in_run"] == len(bad) == len(expected_reasons) + 1
    project_meta = materialization_metadata(result, PROJECTS)
    assert project_meta["quarantined"] == 3 and project_meta["rows"] == 5
    project_rows = read_table(warehouse, PROJECTS_TABLE).set_index("record_key")
    assert project_rows["quarantine_reason"].notna().sum() == 3
    assert "name" in project_rows.loc["1", "quarantine_reason"]
    assert "planned_start_date" in project_rows.loc["2", "quarantine_reason"]
    assert "tasks" in project_rows.loc["3", "quarantine_reason"]

    checks = {c.asset_key: c for c in result.get_asset_check_evaluations() if c.check_name == QUARANTINE_CHECK}
    for key, count in ((TIME_ENTRIES_KEY, len(bad)), (PROJECTS_KEY, 3)):
        assert checks[key].passed is False
        assert checks[key].severity == dg.AssetCheckSeverity.WARN
        assert checks[key].metadata["quarantined"].value == count
    assert len(conform_timesheets(raw)) == len(valid)


# (how page 2 is broken, expected message, attempts, reaches the step retry policy)
MALFORMED: dict[str, tuple[Callable[[dict], Any], str, int, bool]] = {
    "records-not-a-list": (
        lambda body: {**body, "data": {**body["data"], "time_entries": "<html>maintenance</html>"}},
        "malformed page at offset 40: 'data.time_entries' is a string, expected a list",
        1,
        False,
    ),
    "data-not-an-object": (
        lambda body: {**body, "data": 42},
        "malformed page at offset 40: 'data' is a number, expected an object or a list",
        1,
        False,
    ),
    "records-missing-short-of-count": (
        lambda body: {**body, "data": {**body["data"], "time_entries": []}},
        "malformed page at offset 40: no records although count is 120",
        ATTEMPTS,
        True,
    ),
    "body-not-an-object": (lambda body: [body], "expected a JSON object", ATTEMPTS, True),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_page_fails_clearly_and_leaves_warehouse_as_it_was(fresh_knobs, quick_step_retries, case):
    loaded = fresh_knobs
    breaks, message, attempts, step_retried = MALFORMED[case]

    def break_page_two(endpoint: str, params: dict, body: dict) -> Any:
        return breaks(body) if endpoint == "ts/search" and params.get("offset") == PAGE else body

    loaded.server.sandbox.extra["transform_response"] = break_page_two
    result = run(loaded.server, loaded.warehouse, assets=[time_entries], max_attempts=ATTEMPTS)

    assert not result.success
    text = failure_text(result)
    plural = "attempt" if attempts == 1 else "attempts"
    assert f"iBuildApp POST {TS_PATH} failed with HTTP 200 after {attempts} {plural}: {message}" in text
    assert step_retries(result) == (1 if step_retried else 0)
    assert_warehouse_unchanged(loaded)
