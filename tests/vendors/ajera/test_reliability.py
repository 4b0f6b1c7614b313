"""Ajera under faults and bad payloads, over real HTTP on loopback, through Dagster.

Fault matrix (issue 9): each fault the sandbox can inject either ends in a complete run with
every row exactly once (keys compared with the sandbox's data) or in a clear failure naming
vendor, endpoint path, Ajera method, status and attempt count that leaves the warehouse as it
was. Bad and drifting payloads: unknown fields are kept in the payload, missing optional fields
become nulls, wrong types and impossible values are quarantined (never dropped), a malformed
page fails the run.

Every Ajera method shares one URL (``POST /AjeraAPI.ashx?{id}``), so the sandbox's
``path_contains`` knob cannot aim a fault at one method. ``MethodFaults`` (test-only, wrapped
around the unchanged sandbox app) reads the ``Method`` of each request and hands the sandbox's
own fault machinery a one-entry script for the requests a test names.

Already covered elsewhere and not repeated: one each of 503/truncate/429/reset on the first
request (test_errors.py::test_transient_faults_are_retried_and_the_window_is_complete), an
error envelope under HTTP 200 failing at once (test_errors_entry_under_http_200_...), a session
expiring mid-run and parallel calls refused together (test_session.py), a non-numeric hours
cell and a week GetTimesheets leaves out (test_timesheets.py::test_invalid_or_missing_...).

Step retries: the assets carry ``HTTP_RETRY_POLICY`` (2 retries, 30 s apart). These tests swap
in one retry without delay on the same assets, so they stay fast and still show which failures
reach the step retry policy (outages) and which fail at once (permanent answers).
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from tests.support.step_retries import use_quick_step_retries
from timesheet_assets.ingest import QUARANTINE_CHECK
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.ajera import sandbox as ajera_sandbox
from timesheet_assets.vendors.ajera.assets import ajera_projects, ajera_timesheets
from timesheet_assets.vendors.ajera.conform import conform_projects, conform_timesheets
from timesheet_assets.vendors.ajera.sandbox import ajera_state, day_cells, touch_timesheets

from .conftest import resource_for, small_config

CONFIG = small_config()  # 40 timesheets over 21 days, 6 projects
FIRST, LAST = CONFIG.first_date, CONFIG.anchor_date
TIMESHEETS = ["raw", "ajera", "timesheets"]
PROJECTS = ["raw", "ajera", "projects"]
ASSETS = [ajera_timesheets, ajera_projects]
# Small batches and pages so faults can hit a later page or batch: 1 ListTimesheets + 4
# GetTimesheets, 2 ListProjects pages + 2 GetProjects, inside one session.
OPTIONS: dict[str, Any] = dict(timesheet_batch_size=10, page_size=4, project_batch_size=4, backoff_cap_seconds=0.05)
LOGICAL = {
    "CreateAPISession": 1,
    "ListTimesheets": 1,
    "GetTimesheets": 4,
    "ListProjects": 2,
    "GetProjects": 2,
    "EndAPISession": 1,
}
ATTEMPTS = 3  # max_attempts in the runs that are meant to fail


# -- the test-only fault hook ------------------------------------------------------------------
@dataclass
class Seen:
    method: str | None
    fault: Any
    at: float
    status: int | None = None
    retry_after: str | None = None


class MethodFaults:
    """ASGI wrapper around the Ajera sandbox: ``plan = {"GetTimesheets": [503, None, "reset"]}``
    gives the next requests of that method those faults (``None`` lets one through), using the
    sandbox's own fault knobs; ``seen`` records every request's method, fault and status."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state  # SandboxServer.sandbox and ajera_state() read it
        self.plan: dict[str, list[Any]] = {}
        self.seen: list[Seen] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        try:
            method = json.loads(body).get("Method")
        except (ValueError, AttributeError):
            method = None
        queue = self.plan.get(method)
        seen = Seen(method=method, fault=queue.pop(0) if queue else None, at=time.time())
        self.seen.append(seen)
        if seen.fault is not None:
            # No await between here and the sandbox middleware's draw: the fault is this request's.
            self.state.sandbox.knobs.update(script=[seen.fault])
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def recording_send(message):
            if message["type"] == "http.response.start":
                seen.status = message["status"]
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
                seen.retry_after = headers.get("retry-after")
            await send(message)

        await self.app(scope, replay, recording_send)

    def calls(self, method: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method]


# -- helpers -------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def quick_step_retries(monkeypatch) -> dg.RetryPolicy:
    """The real policy (asserted here) with one retry and no delay."""
    return use_quick_step_retries(monkeypatch, ASSETS)


@pytest.fixture
def faulty_server(serve_app):
    def start(config=CONFIG) -> tuple[SandboxServer, MethodFaults]:
        hook = MethodFaults(ajera_sandbox.create_app(config))
        return serve_app(hook), hook

    return start


def run(server, warehouse, assets=ASSETS, **options: Any) -> dg.ExecuteInProcessResult:
    """One run (ephemeral Dagster instance) over the whole window."""
    return materialize(
        list(assets),
        {"ajera": resource_for(server, **{**OPTIONS, **options})},
        warehouse,
        first=FIRST,
        last=LAST,
        raise_on_error=False,
    )


def events(result: dg.ExecuteInProcessResult, kind: str) -> list[Any]:
    return [e for e in result.all_events if e.event_type_value == kind]


VENDOR_FAILURE = re.compile(r"Ajera POST \S+ failed with .*")


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The vendor error of each step failure and retry request of the run (as the event log
    shows it, causes included)."""
    messages = []
    for event in events(result, "STEP_FAILURE") + events(result, "STEP_UP_FOR_RETRY"):
        found = VENDOR_FAILURE.search(event.event_specific_data.error.to_string())
        assert found, event.event_specific_data.error.to_string()
        messages.append(found.group(0))
    return messages


def sorted_table(warehouse: str, name: str) -> pd.DataFrame:
    return read_table(warehouse, name).sort_values("record_key").reset_index(drop=True)


def project_keys(server) -> set[str]:
    return {str(p["ProjectKey"]) for p in ajera_state(server).dataset.projects}


def assert_every_row_exactly_once(server, warehouse: str) -> None:
    timesheets = read_table(warehouse, "ajera.timesheets")
    assert timesheets["record_key"].is_unique
    assert set(timesheets["record_key"]) == set(day_cells(ajera_state(server).dataset, FIRST, LAST))
    assert timesheets["quarantine_reason"].isna().all()
    projects = read_table(warehouse, "ajera.projects")
    assert projects["record_key"].is_unique
    assert set(projects["record_key"]) == project_keys(server)


def metadata_sum(result, name: str) -> float:
    return sum(materialization_metadata(result, key)[name] for key in (TIMESHEETS, PROJECTS))


# -- 1a. faults the run rides out ----------------------------------------------------------------
# (plan per Ajera method, sandbox knobs, resource options)
RECOVERED: dict[str, tuple[dict[str, list[Any]], dict[str, Any], dict[str, Any]]] = {
    # Half of all requests (sessions included) refused, no Retry-After: the client's own
    # backoff; two calls in flight.
    "429-storm": ({}, dict(status_rates={429: 0.5}, retry_after=None, seed=9), dict(max_attempts=10)),
    "502-burst": ({"GetTimesheets": [502, 502, 502]}, {}, dict(max_in_flight=1)),
    "503-burst": ({"ListProjects": [None, 503, 503, 503]}, dict(retry_after="0"), {}),
    "read-timeout": (
        {"ListTimesheets": ["timeout"], "GetProjects": [None, "timeout", "timeout"]},
        dict(timeout_seconds=1.0),
        dict(timeout_seconds=0.3),
    ),
    "reset-mid-body": ({"GetTimesheets": [None, "reset", "reset"], "ListProjects": ["reset"]}, {}, {}),
    "truncated-json": (
        {
            "CreateAPISession": ["truncate"],
            "ListProjects": [None, "truncate"],
            "GetTimesheets": ["truncate", "truncate"],
        },
        {},
        {},
    ),
}


@pytest.mark.parametrize("fault", list(RECOVERED))
def test_transient_fault_run_completes_with_every_row_once(faulty_server, warehouse, fault):
    plan, knobs, options = RECOVERED[fault]
    server, hook = faulty_server()
    hook.plan = copy.deepcopy(plan)
    server.sandbox.knobs.update(**knobs)

    result = run(server, warehouse, **options)

    assert result.success
    assert not events(result, "STEP_UP_FOR_RETRY")
    assert_every_row_exactly_once(server, warehouse)
    faulted = [s for s in hook.seen if s.fault is not None or s.status == 429]
    assert sum(server.sandbox.stats.faults_injected.values()) == len(faulted) >= 3
    assert all(not queue for queue in hook.plan.values())  # every planned fault was served
    # Each fault cost exactly one retry of that call and nothing else: no call was lost or
    # repeated (EndAPISession runs at teardown, outside the assets' metadata).
    for method, logical in LOGICAL.items():
        calls = hook.calls(method)
        assert len(calls) - sum(1 for s in calls if s in faulted) == logical, method
    in_assets = [s for s in faulted if s.method != "EndAPISession"]
    assert metadata_sum(result, "retries") == len(in_assets)
    if fault == "429-storm":
        assert metadata_sum(result, "rate_limited") == len(in_assets) >= 8


def test_429_retry_after_http_date_is_honoured(faulty_server, warehouse):
    """The wait comes from the ``Retry-After`` HTTP-date (the client's own backoff is capped at
    0.05 s here): no request reaches Ajera before that date, whichever method it is. Ajera documents no body wait hint
    (like Blikk's ``waitInSeconds``) and its 429 body carries none: N/A for this vendor."""
    server, hook = faulty_server()
    hook.plan = {"GetTimesheets": [None, 429]}
    server.sandbox.knobs.update(retry_after="http-date", wait_hint_seconds=2.0)

    result = run(server, warehouse, assets=[ajera_timesheets], max_in_flight=1)

    assert result.success
    [refused] = [s for s in hook.seen if s.status == 429]
    assert refused.method == "GetTimesheets" and refused.retry_after.endswith(" GMT")
    not_before = parsedate_to_datetime(refused.retry_after).timestamp()
    later = [s for s in hook.seen if s.at > refused.at]
    assert later and all(s.at >= not_before for s in later)
    metadata = materialization_metadata(result, TIMESHEETS)
    assert (metadata["rate_limited"], metadata["retries"]) == (1, 1)
    # The wait is the date's (1-2 s away), counted as a rate-limit wait; no own backoff.
    assert metadata["seconds_waited_rate_limit"] >= 1.0 and metadata["seconds_waited_backoff"] == 0
    timesheets = read_table(warehouse, "ajera.timesheets")
    assert set(timesheets["record_key"]) == set(day_cells(ajera_state(server).dataset, FIRST, LAST))


def test_session_expiring_repeatedly_while_session_creation_itself_fails(faulty_server, warehouse):
    """Token expiry mid-run combined with faults on the re-authentication: every session serves
    two calls, and the first re-creation meets a 503 and then a truncated answer. Each of the 9
    data calls lands once; every refusal re-created the session exactly once."""
    server, hook = faulty_server()
    hook.plan = {"CreateAPISession": [None, 503, "truncate"]}
    server.sandbox.knobs.update(token_expiry_after_calls=2, retry_after="0")

    result = run(server, warehouse, max_in_flight=1)

    assert result.success
    assert_every_row_exactly_once(server, warehouse)
    reauthentications = metadata_sum(result, "reauthentications")
    assert reauthentications == 4  # sessions of 2 calls for 9 data calls: 5 sessions
    # One more session was issued inside the truncated answer; the client never saw it.
    assert server.sandbox.tokens.issued == 1 + reauthentications + 1
    assert len(hook.calls("CreateAPISession")) == 5 + 2  # two attempts lost to the faults
    data_calls = [s for s in hook.seen if s.method not in ("CreateAPISession", "EndAPISession")]
    assert len(data_calls) == 9 + reauthentications  # each refused call repeated once
    assert all(s.status == 200 for s in data_calls)
    assert ajera_state(server).calls("EndAPISession") == 1


# -- 1b. faults that outlast the retries: clear failure, warehouse untouched ---------------------
@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """One sandbox and warehouse, loaded once cleanly; then the sandbox's data changes
    (late edits, a renamed project), so any write by a failing run would show."""
    with ExitStack() as stack:
        hook = MethodFaults(ajera_sandbox.create_app(CONFIG))
        server = SandboxServer(hook).start()
        stack.callback(server.stop)
        warehouse = str(tmp_path_factory.mktemp("ajera-reliability") / "warehouse.duckdb")
        result = run(server, warehouse)
        assert result.success
        before = {name: sorted_table(warehouse, name) for name in ("ajera.timesheets", "ajera.projects")}
        state = ajera_state(server)
        assert touch_timesheets(state, fraction=0.5)
        state.dataset.projects[0]["Description"] = "Renamed after the clean load"
        yield SimpleNamespace(server=server, hook=hook, warehouse=warehouse, before=before)


@pytest.fixture
def fresh(loaded) -> Iterator[SimpleNamespace]:
    yield loaded
    loaded.hook.plan = {}
    loaded.server.sandbox.knobs.clear()


def assert_warehouse_unchanged(loaded: SimpleNamespace) -> None:
    for name, before in loaded.before.items():
        pd.testing.assert_frame_equal(sorted_table(loaded.warehouse, name), before)


def twice(*faults: Any) -> list[Any]:
    """The same faults for the first step attempt and for the step retry."""
    return [*faults, *faults]


# (asset, plan, knobs, options, failure message, step retried?)
FAILURES: dict[str, tuple[Any, dict[str, list[Any]], dict[str, Any], dict[str, Any], str, bool]] = {
    "500": (
        ajera_timesheets,
        {"GetTimesheets": [None, 500]},
        {},
        {},
        "Ajera POST /AjeraAPI.ashx failed with HTTP 500 after 1 attempt: GetTimesheets: sandbox fault",
        False,
    ),
    "503-outlasting-retries": (
        ajera_projects,
        {"GetProjects": twice(*[503] * ATTEMPTS)},
        dict(retry_after="0"),
        {},
        "Ajera POST /AjeraAPI.ashx failed with HTTP 503 after 3 attempts: GetProjects: sandbox fault",
        True,
    ),
    "429-storm-outlasting-retries": (
        ajera_timesheets,
        {"ListTimesheets": twice(*[429] * ATTEMPTS)},
        dict(retry_after="0"),
        {},
        "Ajera POST /AjeraAPI.ashx failed with HTTP 429 after 3 attempts: ListTimesheets: sandbox fault",
        True,
    ),
    "read-timeout": (
        ajera_projects,
        {"ListProjects": twice(None, *["timeout"] * ATTEMPTS)},
        dict(timeout_seconds=0.6),
        dict(timeout_seconds=0.2),
        "Ajera POST /AjeraAPI.ashx failed with no response after 3 attempts: ListProjects: ReadTimeout",
        True,
    ),
    "reset-mid-body": (
        ajera_timesheets,
        {"GetTimesheets": twice(None, *["reset"] * ATTEMPTS)},
        {},
        {},
        "Ajera POST /AjeraAPI.ashx failed with no response after 3 attempts: GetTimesheets: RemoteProtocolError",
        True,
    ),
    "truncated-json": (
        ajera_projects,
        {"ListProjects": twice(None, *["truncate"] * ATTEMPTS)},
        {},
        {},
        "Ajera POST /AjeraAPI.ashx failed with HTTP 200 after 3 attempts: ListProjects: response body is not "
        "valid JSON",
        True,
    ),
    "session-refused-after-recreation": (
        ajera_timesheets,
        {},
        dict(token_expiry_after_calls=0),
        {},
        "Ajera POST /AjeraAPI.ashx failed with HTTP 200 after 2 attempts: ListTimesheets: ResponseCode 401: "
        "Invalid or expired session token. (after re-authentication)",
        False,
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_persistent_fault_fails_clearly_and_leaves_warehouse_as_it_was(fresh, case):
    asset, plan, knobs, options, message, step_retried = FAILURES[case]
    fresh.hook.plan = copy.deepcopy(plan)
    fresh.server.sandbox.knobs.update(**knobs)

    result = run(fresh.server, fresh.warehouse, assets=[asset], max_attempts=ATTEMPTS, max_in_flight=1, **options)

    assert not result.success
    messages = failure_messages(result)
    assert len(messages) == (2 if step_retried else 1)  # outages reach the step retry, the rest fail at once
    assert all(m.startswith(message) for m in messages), messages
    assert all(not queue for queue in fresh.hook.plan.values())
    assert_warehouse_unchanged(fresh)


# -- 2. bad and drifting payloads ----------------------------------------------------------------
def _in_window_keys(server) -> list[int]:
    """Timesheets with day-rows in the window and at least one project line, by key."""
    dataset = ajera_state(server).dataset
    with_rows = {int(k.split(":")[0]) for k in day_cells(dataset, FIRST, LAST)}
    return sorted(k for k in with_rows if dataset.timesheets[k]["detail"]["Project"]["Detail"])


def test_unknown_fields_are_kept_and_missing_optional_fields_become_nulls(faulty_server, warehouse):
    server, _ = faulty_server()
    state = ajera_state(server)
    drifted, trimmed = _in_window_keys(server)[:2]
    # Unknown fields at every level Ajera might add them.
    week = state.dataset.timesheets[drifted]
    week["list"]["Region"] = "Pacific NW"
    week["detail"]["ApprovalRoute"] = ["Supervisor", "Accounting"]
    week["detail"]["Project"]["Subtotals"] = {"Billable": 12}
    week["detail"]["Project"]["Detail"][0]["Billing Rate Code"] = "R2"
    state.dataset.projects[1]["ContractType"] = {"Kind": "Fixed Fee", "Cap": 125000}
    # Optional fields left out.
    week = state.dataset.timesheets[trimmed]
    for name in ("Employee", "Timesheet Total", "Paid", "Rejected"):
        del week["list"][name]
    for line in week["detail"]["Project"]["Detail"]:
        for name in ("Phase Description", "Activity", "Employee Type Key"):
            del line[name]
    bare = state.dataset.projects[2]
    for name in ("InvoiceGroups", "ProjectManager", "ActualStartDate", "EstimatedStartDate"):
        bare.pop(name)

    result = run(server, warehouse)

    assert result.success
    assert_every_row_exactly_once(server, warehouse)
    checks = {(c.asset_key.path[-1], c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        ("timesheets", QUARANTINE_CHECK): True,
        ("projects", QUARANTINE_CHECK): True,
        ("timesheets", "timesheet_totals_reconcile"): True,
    }
    timesheets = read_table(warehouse, "ajera.timesheets")
    payloads = [json.loads(p) for p in timesheets.loc[timesheets["timesheet_key"] == drifted, "payload"]]
    assert all(p["Timesheet"]["Region"] == "Pacific NW" for p in payloads)
    assert all(p["TimesheetExtra"] == {"ApprovalRoute": ["Supervisor", "Accounting"]} for p in payloads)
    project_payloads = [p for p in payloads if p["Section"] == "Project"]
    assert all(p["SectionExtra"] == {"Subtotals": {"Billable": 12}} for p in project_payloads)
    assert any(p["Detail"].get("Billing Rate Code") == "R2" for p in project_payloads)
    projects = read_table(warehouse, "ajera.projects").set_index("record_key")
    assert json.loads(projects.loc["101", "payload"])["ContractType"] == {"Kind": "Fixed Fee", "Cap": 125000}

    rows = timesheets[timesheets["timesheet_key"] == trimmed]
    listed = state.dataset.timesheets[trimmed]["list"]
    assert set(rows["employee_name"]) == {f"{listed['First Name']} {listed['Last Name']}"}
    assert rows["paid"].isna().all() and rows["rejected"].isna().all()
    project_rows = rows[rows["section"] == "project"]
    assert len(project_rows) and project_rows[["phase_description", "activity", "employee_type_key"]].isna().all().all()
    conformed = conform_timesheets(timesheets).set_index("entry_id")
    assert conformed.loc[list(project_rows["record_key"]), "task"].isna().all()
    row = projects.loc[str(bare["ProjectKey"])]
    assert row[["client_key", "client_name", "project_manager", "start_date"]].isna().all()
    conformed_projects = conform_projects(read_table(warehouse, "ajera.projects")).set_index("project_id")
    assert conformed_projects.loc[str(bare["ProjectKey"]), ["customer_id", "manager_name", "start_date"]].isna().all()


def test_wrong_types_and_impossible_values_are_quarantined_and_counted(faulty_server, warehouse, monkeypatch):
    server, _ = faulty_server()
    state = ajera_state(server)
    wrong_type, too_many_hours, impossible_date = corrupted = set(_in_window_keys(server)[:3])
    cells = day_cells(state.dataset, FIRST, LAST)  # before the corruption (ground truth)
    state.dataset.timesheets[wrong_type]["list"]["Employee Key"] = "E-20"
    state.dataset.timesheets[too_many_hours]["detail"]["Project"]["Detail"][0]["D2 Overtime"] = 30
    state.dataset.timesheets[impossible_date]["detail"]["TimesheetDate"] = "2025-02-30T00:00:00"
    bad_projects = {
        str(state.dataset.projects[3]["ProjectKey"]): "EstimatedStartDate",
        str(state.dataset.projects[4]["ProjectKey"]): "Status",
    }
    state.dataset.projects[3].update(ActualStartDate=None, EstimatedStartDate="2024-13-01")
    state.dataset.projects[4]["Status"] = 7
    allowed, list_timesheets, paged = ajera_sandbox.METHODS["ListTimesheets"]

    def with_a_stray_entry(st, call):
        content = list_timesheets(st, call)
        return {"Timesheets": [*content["Timesheets"], "not a timesheet"]}

    monkeypatch.setitem(ajera_sandbox.METHODS, "ListTimesheets", (allowed, with_a_stray_entry, paged))

    result = run(server, warehouse)

    assert result.success
    timesheets = read_table(warehouse, "ajera.timesheets")
    bad = timesheets[timesheets["quarantine_reason"].notna()]
    reasons = bad.groupby(bad["record_key"].str.split(":").str[0])["quarantine_reason"].first()
    assert set(reasons.index) == {str(k) for k in corrupted} | {"unkeyed"}
    assert "Employee Key" in reasons[str(wrong_type)] and "valid integer" in reasons[str(wrong_type)]
    assert "D2 Overtime" in reasons[str(too_many_hours)] and "between -24 and 24" in reasons[str(too_many_hours)]
    assert "TimesheetDate" in reasons[str(impossible_date)]
    assert reasons["unkeyed"] == "ListTimesheets record is not a JSON object"
    assert bad["payload"].str.len().gt(10).all()
    assert bad["work_date"].map(lambda d: FIRST <= pd.Timestamp(d).date() <= LAST).all()
    # Nothing dropped: every served week is quarantined, or valid with all its day-rows landed
    # (a valid week may have no hours inside the window, and then no rows).
    dataset = state.dataset
    valid_cells = {k for k in cells if int(k.split(":")[0]) not in corrupted}
    good = timesheets[timesheets["quarantine_reason"].isna()]
    assert set(good["record_key"]) == valid_cells and good["record_key"].is_unique
    served = len(dataset.timesheets) + 1
    meta = materialization_metadata(result, TIMESHEETS)
    assert (meta["records_served"], meta["quarantined_in_run"]) == (served, 4)
    weeks_with_rows = {int(k.split(":")[0]) for k in valid_cells}
    weeks_without_hours = set(dataset.timesheets) - corrupted - weeks_with_rows
    assert good["timesheet_key"].nunique() + len(weeks_without_hours) + meta["quarantined_in_run"] == served
    assert set(conform_timesheets(timesheets)["entry_id"]) == valid_cells

    projects = read_table(warehouse, "ajera.projects").set_index("record_key")
    quarantined = projects[projects["quarantine_reason"].notna()]
    assert {k: field in quarantined.loc[k, "quarantine_reason"] for k, field in bad_projects.items()} == {
        k: True for k in bad_projects
    }
    assert len(projects) == len(dataset.projects)  # valid + quarantined = served
    assert materialization_metadata(result, PROJECTS)["quarantined"] == 2
    assert len(conform_projects(read_table(warehouse, "ajera.projects"))) == len(dataset.projects) - 2

    checks = {c.asset_key.path[-1]: c for c in result.get_asset_check_evaluations() if c.check_name == QUARANTINE_CHECK}
    assert not checks["timesheets"].passed and not checks["projects"].passed
    assert checks["timesheets"].severity == dg.AssetCheckSeverity.WARN
    assert checks["timesheets"].metadata["quarantined"].value == 4
    assert checks["projects"].metadata["quarantined"].value == 2


MALFORMED = {
    # Content that is not an object used to read as "no timesheets" and would have replaced
    # the window with nothing.
    "content-not-an-object": (
        ajera_timesheets,
        "ListTimesheets",
        lambda content: "<html>maintenance</html>",
        "Ajera POST /AjeraAPI.ashx failed with HTTP 200 after 1 attempt: ListTimesheets: malformed answer: "
        "Content is str, not an object",
    ),
    "record-list-not-a-list": (
        ajera_projects,
        "ListProjects",
        lambda content: {"Projects": {"ProjectKey": 100}},
        "Ajera POST /AjeraAPI.ashx failed with HTTP 200 after 1 attempt: ListProjects: malformed answer: "
        "Content.Projects is not a list",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_page_fails_clearly_and_leaves_warehouse_as_it_was(fresh, monkeypatch, case):
    asset, method, malform, message = MALFORMED[case]
    allowed, handler, _ = ajera_sandbox.METHODS[method]
    pages = Counter()

    def later_pages_malformed(st, call):
        pages[method] += 1
        content = handler(st, call)
        return content if pages[method] == 1 and method == "ListProjects" else malform(content)

    # Served unpaged (no PageCount): the first short page is confirmed by asking for page 2.
    monkeypatch.setitem(ajera_sandbox.METHODS, method, (allowed, later_pages_malformed, None))

    result = run(fresh.server, fresh.warehouse, assets=[asset], max_attempts=ATTEMPTS, max_in_flight=1)

    assert not result.success
    assert failure_messages(result) == [message]  # once: no client retry, no step retry
    assert_warehouse_unchanged(fresh)
