"""Blikk under faults and bad payloads, over real HTTP on loopback, through Dagster.

Fault matrix (issue 9): every fault either ends in a complete run with each row exactly once
(keys compared with the sandbox's data) or in a clear failure naming vendor, endpoint path,
status and attempt count that leaves the warehouse as it was. Bad and drifting payloads:
unknown fields are kept, missing optional fields become nulls, wrong types and impossible
values are quarantined (never dropped), a malformed page fails the run.

Already covered elsewhere and not repeated here: one 429 with ``Retry-After`` as an HTTP date,
one 503 and one truncated body ridden out
(test_assets.py::test_injected_429s_and_503s_are_waited_out_and_every_row_lands), a token
expiring mid-run (test_assets.py::test_token_expiring_mid_run_is_renewed_once), bad
credentials and 403s (test_assets.py), ``"eight"`` hours and a null user quarantined
(test_assets.py::test_invalid_records_are_quarantined_with_the_reason_and_counted).

Speed: none of these tests is about the rate limiter (test_assets.py and test_resource.py
are), so the sandbox's 4/s limit is switched off and the resource runs at 50 requests/s with
backoffs capped at 0.05 s. The assets carry ``HTTP_RETRY_POLICY`` (2 step retries, 30 s
apart); tests that exhaust the client's attempts swap in a 1-retry, no-delay copy so they stay
fast while still showing which failures reach the step retry policy (outages) and which fail
at once (permanent answers).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from starlette.responses import Response

from tests.support.dagster_helpers import (
    failure_text,
    materialization_metadata,
    materialize,
    read_table,
    staging_tables,
    step_retries,
)
from tests.support.step_retries import use_quick_step_retries
from tests.vendors.blikk.conftest import ANCHOR, RunningBlikk
from timesheet_assets.ingest import QUARANTINE_CHECK, staged
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.blikk.assets import (
    PROJECTS_KEY,
    TIME_REPORTS_KEY,
    blikk_projects,
    blikk_time_reports,
)
from timesheet_assets.vendors.blikk.conform import conform_projects, conform_time_reports
from timesheet_assets.vendors.blikk.resource import (
    ABSENCE_PROJECTS_PATH,
    INTERNAL_PROJECTS_PATH,
    PROJECTS_PATH,
    TIME_REPORTS_PATH,
    TOKEN_PATH,
    USERS_PATH,
)
from timesheet_assets.vendors.blikk.sandbox import blikk_data, create_app

TIME_REPORTS = ["raw", "blikk", "time_reports"]
PROJECTS = ["raw", "blikk", "projects"]
REPORTS_TABLE = "blikk.time_reports"
PROJECTS_TABLE = "blikk.projects"
ASSETS = (blikk_time_reports, blikk_projects)
ATTEMPTS = 3  # max_attempts in the runs that use them up
FAST = dict(requests_per_second=50.0, backoff_cap_seconds=0.05)
# 300 reports at 100 a page: 3 pages, so a fault can hit page 2 after page 1 was read.
CONFIG = dict(time_records=300, days=30)


# -- helpers -------------------------------------------------------------------------------------
def relax(sandbox: RunningBlikk) -> RunningBlikk:
    """Switch the sandbox's 4/s limit off: these tests inject faults, not load."""
    sandbox.server.sandbox.rate_rule = None
    return sandbox


@pytest.fixture
def start(blikk) -> Callable[..., RunningBlikk]:
    return lambda **config: relax(blikk(**{**CONFIG, **config}))


@pytest.fixture
def quick_step_retries(monkeypatch) -> dg.RetryPolicy:
    """The real policy (asserted here) with its 30 s delay swapped for none and one retry."""
    return use_quick_step_retries(monkeypatch, ASSETS)


def run(sandbox: RunningBlikk, warehouse: str, assets=ASSETS, **options: Any) -> dg.ExecuteInProcessResult:
    """One run over the sandbox's whole window (both assets unless told otherwise)."""
    resource = sandbox.resource(**{**FAST, **options})
    return materialize(
        list(assets),
        {"blikk": resource},
        warehouse,
        first=sandbox.config.first_date,
        last=sandbox.config.anchor_date,
        raise_on_error=False,
    )


def served_report_keys(sandbox: RunningBlikk) -> list[str]:
    return sorted(str(r["id"]) for r in sandbox.data.time_reports)


def served_project_keys(sandbox: RunningBlikk) -> list[str]:
    data = sandbox.data
    return sorted(
        [str(p["id"]) for p in data.projects]
        + [f"internal:{p['id']}" for p in data.internal_projects]
        + [f"absence:{p['id']}" for p in data.absence_projects]
    )


def assert_every_row_exactly_once(sandbox: RunningBlikk, warehouse: str) -> None:
    reports = read_table(warehouse, REPORTS_TABLE)
    assert reports["record_key"].is_unique
    assert sorted(reports["record_key"]) == served_report_keys(sandbox)
    assert reports["quarantine_reason"].isna().all()
    projects = read_table(warehouse, PROJECTS_TABLE)
    assert projects["record_key"].is_unique
    assert sorted(projects["record_key"]) == served_project_keys(sandbox)
    assert projects["quarantine_reason"].isna().all()


def both(result: dg.ExecuteInProcessResult, name: str) -> float:
    return sum(materialization_metadata(result, key)[name] for key in (TIME_REPORTS, PROJECTS))


# Token, 3 report pages, 1 user page (some reports carry no user name), 1 page each of
# projects, internal projects and absence projects.
LOGICAL_CALLS = 1 + 3 + 1 + 3


# -- 1a. faults the run rides out ----------------------------------------------------------------
# (knobs, resource options). ``None`` in a script lets one request through, so the faults hit
# pages 2 and 3 (read in parallel) after page 1.
RECOVERED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # 35 % of all calls, the token request included, refused with {"waitInSeconds": 0.05} and
    # no Retry-After; seed 3 gives at most 3 refusals in a row (6 attempts allowed).
    "429-storm-all-endpoints": (
        dict(status_rates={429: 0.35}, retry_after=None, wait_hint_seconds=0.05, seed=3, path_contains="/v1/"),
        dict(page_size=25),
    ),
    "502-burst": (dict(script=[None, 502, 502], path_contains=TIME_REPORTS_PATH), {}),
    "503-burst-retry-after-0": (dict(script=[None, 503, 503], retry_after="0", path_contains=TIME_REPORTS_PATH), {}),
    "read-timeout": (
        dict(script=[None, "timeout", "timeout"], timeout_seconds=1.0, path_contains=TIME_REPORTS_PATH),
        dict(timeout_seconds=0.25),
    ),
    "reset-mid-body": (dict(script=[None, "reset", "reset"], path_contains=TIME_REPORTS_PATH), {}),
}


@pytest.mark.parametrize("fault", list(RECOVERED))
def test_transient_fault_run_completes_with_every_row_once(start, warehouse, fault):
    knobs, options = RECOVERED[fault]
    sandbox = start()
    sandbox.knobs.update(**knobs)

    result = run(sandbox, warehouse, **options)

    assert result.success
    assert_every_row_exactly_once(sandbox, warehouse)
    injected = sum(sandbox.stats.faults_injected.values())
    assert injected >= 2
    reports_meta = materialization_metadata(result, TIME_REPORTS)
    assert reports_meta["rows_in_run"] == 300 and reports_meta["list_complete"] is True
    assert reports_meta["list_duplicates_skipped"] == 0
    # Each injected fault cost exactly one retry, and no page was read twice.
    assert both(result, "retries") == injected
    page = options.get("page_size", 100)
    logical = LOGICAL_CALLS + (300 // page - 3)
    assert sandbox.stats.requests == logical + injected
    if fault.startswith("429"):
        assert both(result, "rate_limited") == injected == sandbox.stats.by_status[429]
        assert sandbox.stats.count(TOKEN_PATH) == 1 + [c.status for c in sandbox.stats.calls(TOKEN_PATH)].count(429)
    elif fault.startswith("5"):
        assert reports_meta["server_errors"] == injected
    else:
        assert reports_meta["transport_errors"] == injected


def test_429_wait_in_seconds_body_hint_is_honoured_without_retry_after(start, warehouse):
    """Blikk's 429 body says ``{"waitInSeconds": n}``; with no ``Retry-After`` header at all the
    client still waits those n seconds (1 here), not its own backoff (capped at 0.05 s here)."""
    sandbox = start()
    sandbox.knobs.update(script=[None, 429], retry_after=None, wait_hint_seconds=1.0, path_contains=TIME_REPORTS_PATH)

    result = run(sandbox, warehouse, assets=[blikk_time_reports])

    assert result.success
    assert sandbox.statuses(TIME_REPORTS_PATH).count(429) == 1
    metadata = materialization_metadata(result, TIME_REPORTS)
    assert metadata["rate_limited"] == 1 and metadata["retries"] == 1
    assert metadata["seconds_waited_rate_limit"] >= 1.0
    reports = read_table(warehouse, REPORTS_TABLE)
    assert sorted(reports["record_key"]) == served_report_keys(sandbox)


# -- 1b. faults that outlast the retries: clear failure, warehouse untouched ---------------------
@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """One sandbox and warehouse, loaded once cleanly; the sandbox's data then changes (edited
    reports, a renamed project), so any write by a later run would show in the tables."""
    config = SandboxConfig(anchor_date=ANCHOR, **CONFIG)
    app = create_app(config)
    server = SandboxServer(app).start()
    sandbox = relax(RunningBlikk(server=server, config=config, data=blikk_data(app)))
    warehouse = str(tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb")
    try:
        assert run(sandbox, warehouse).success
        before = {name: table(warehouse, name) for name in (REPORTS_TABLE, PROJECTS_TABLE)}
        assert len(before[REPORTS_TABLE]) == 300
        assert sandbox.data.edit_fraction(0.2)
        sandbox.data.projects[0]["title"] = "Renamed after the first load"
        sandbox.data.changed()
        yield SimpleNamespace(sandbox=sandbox, warehouse=warehouse, before=before)
    finally:
        server.stop()


@pytest.fixture
def fresh(loaded, monkeypatch) -> Iterator[SimpleNamespace]:
    # A page a chunk: a read that fails on page 2 has staged page 1 already.
    monkeypatch.setattr(staged, "CHUNK_RECORDS", 100)
    sandbox = loaded.sandbox
    sandbox.knobs.clear()
    sandbox.knobs.update(retry_after="0", wait_hint_seconds=0.01, timeout_seconds=1.0)
    sandbox.data.page_hooks.clear()
    sandbox.stats.reset()
    yield loaded
    sandbox.knobs.clear()
    sandbox.data.page_hooks.clear()


def table(warehouse: str, name: str) -> pd.DataFrame:
    return read_table(warehouse, name).sort_values("record_key").reset_index(drop=True)


def assert_warehouse_unchanged(loaded: SimpleNamespace) -> None:
    for name, before in loaded.before.items():
        pd.testing.assert_frame_equal(table(loaded.warehouse, name), before)
    # What a failed read staged went with it.
    assert staging_tables(loaded.warehouse) == []


# fault -> (path, client attempts per step attempt, "<status> after <n> attempt(s)<detail>",
# reaches the step retry policy). 502/503 bodies are empty, as the document shows them.
EXHAUSTED: dict[str, tuple[Any, str, int, str, bool]] = {
    "429-storm": (429, TIME_REPORTS_PATH, ATTEMPTS, "HTTP 429 after 3 attempts: rate limited, wait 0.01 s", True),
    "500-burst": (
        500,
        TIME_REPORTS_PATH,
        1,
        "HTTP 500 after 1 attempt: An unexpected error has occurred. — request id r-",
        False,
    ),
    "500-on-a-registry-after-projects-were-read": (
        500,
        ABSENCE_PROJECTS_PATH,
        1,
        "HTTP 500 after 1 attempt: An unexpected error has occurred. — request id r-",
        False,
    ),
    "502-burst": (502, TIME_REPORTS_PATH, ATTEMPTS, "HTTP 502 after 3 attempts", True),
    "503-burst": (503, TIME_REPORTS_PATH, ATTEMPTS, "HTTP 503 after 3 attempts", True),
    "read-timeout": ("timeout", TIME_REPORTS_PATH, ATTEMPTS, "no response after 3 attempts: ReadTimeout", True),
    "reset-mid-body": (
        "reset",
        TIME_REPORTS_PATH,
        ATTEMPTS,
        "no response after 3 attempts: RemoteProtocolError",
        True,
    ),
    "truncated-json": (
        "truncate",
        TIME_REPORTS_PATH,
        ATTEMPTS,
        "HTTP 200 after 3 attempts: response body is not valid JSON",
        True,
    ),
}


@pytest.mark.parametrize("case", list(EXHAUSTED))
def test_persistent_fault_fails_clearly_and_leaves_warehouse_as_it_was(fresh, quick_step_retries, case):
    loaded = fresh
    fault, path, attempts, message, step_retried = EXHAUSTED[case]
    step_attempts = 2 if step_retried else 1
    if path == TIME_REPORTS_PATH:
        # Page 1 succeeds, then page 2 fails on every attempt, in each step attempt.
        script, asset = ([None] + [fault] * attempts) * step_attempts, blikk_time_reports
    else:
        script, asset = [fault] * attempts * step_attempts, blikk_projects
    loaded.sandbox.knobs.update(script=script, path_contains=path)

    # One page in flight, so the scripted faults meet page 2 in order.
    result = run(
        loaded.sandbox, loaded.warehouse, assets=[asset], max_attempts=ATTEMPTS, timeout_seconds=0.25, max_in_flight=1
    )

    assert not result.success
    assert f"Blikk GET {path} failed with {message}" in failure_text(result)
    assert step_retries(result) == step_attempts - 1
    assert loaded.sandbox.stats.count(path) == len(script)
    assert loaded.sandbox.knobs.script == []
    if path == ABSENCE_PROJECTS_PATH:
        # Projects and internal projects were read in full; none of it lands.
        assert loaded.sandbox.stats.count(PROJECTS_PATH) == loaded.sandbox.stats.count(INTERNAL_PROJECTS_PATH) == 1
    assert_warehouse_unchanged(loaded)


def test_token_refused_again_after_renewal_fails_at_once(fresh, quick_step_retries):
    """Every token dead on arrival: one renewal, then a clear failure without step retries."""
    loaded = fresh
    loaded.sandbox.knobs.update(token_expiry_after_calls=0)
    result = run(loaded.sandbox, loaded.warehouse, assets=[blikk_time_reports])
    assert not result.success
    text = failure_text(result)
    assert f"Blikk GET {TIME_REPORTS_PATH} failed with HTTP 401 after 2 attempts: Invalid token" in text
    assert step_retries(result) == 0
    assert loaded.sandbox.stats.count(TOKEN_PATH) == 2
    assert loaded.sandbox.statuses(TIME_REPORTS_PATH) == [401, 401]
    assert_warehouse_unchanged(loaded)


# -- 2. bad and drifting payloads ----------------------------------------------------------------
def test_unknown_extra_fields_are_kept_in_payload(start, warehouse):
    sandbox = start()
    for report in sandbox.data.time_reports:
        report["geoFence"] = {"lat": 65.3, "lon": 21.5}
        report["user"] = {**report["user"], "employeeNumber": "E-17"}
    for project in sandbox.data.projects:
        project["budgetCode"] = "BC-12"
    for registry in (sandbox.data.internal_projects, sandbox.data.absence_projects):
        for entry in registry:
            entry["colour"] = "#ff0000"

    def drift(path, page, body):
        body["apiVersion"] = "1.1"  # unknown keys on the paged envelope too
        body["links"] = {"next": None}

    sandbox.data.page_hooks.append(drift)
    result = run(sandbox, warehouse)

    assert result.success
    assert_every_row_exactly_once(sandbox, warehouse)
    reports = read_table(warehouse, REPORTS_TABLE)
    assert reports["payload"].str.contains('"geoFence":{"lat":65.3,"lon":21.5}', regex=False).all()
    assert reports["payload"].str.contains('"employeeNumber":"E-17"', regex=False).all()
    projects = read_table(warehouse, PROJECTS_TABLE).set_index("record_key")
    plain = projects[projects["project_type"] == "project"]
    assert plain["payload"].str.contains('"budgetCode":"BC-12"', regex=False).all()
    assert projects.drop(plain.index)["payload"].str.contains('"colour":"#ff0000"', regex=False).all()
    assert both(result, "quarantined") == 0
    assert len(conform_time_reports(reports)) == 300


OPTIONAL_REPORT_KEYS = (
    "objectName",
    "clockStart",
    "clockEnd",
    "invoiceableHours",
    "breakMinutes",
    "cost",
    "rate",
    "discount",
    "comment",
    "internalComment",
    "sentToAttestDate",
    "attestedDate",
    "project",
    "internalProject",
    "absenceProject",
    "contact",
    "activity",
    "timeCode",
    "timeArticle",
    "costCenter",
    "invoiceId",
    "travelReportId",
    "allowanceReportId",
    "createdDate",
    "updatedDate",
)
OPTIONAL_PROJECT_KEYS = (
    "objectName",
    "orderNumber",
    "title",
    "status",
    "startDate",
    "endDate",
    "invoiceType",
    "location",
    "projectManager",
    "customer",
    "projectCollection",
    "createdBy",
    "updatedBy",
    "created",
    "updated",
)


def test_missing_optional_fields_become_nulls(start, warehouse):
    sandbox = start()
    bare = [r for r in sandbox.data.time_reports if r["user"]["name"]][:3]
    for report in bare:
        for key in OPTIONAL_REPORT_KEYS:
            report.pop(key, None)
        report["user"] = {"id": report["user"]["id"]}  # no name: looked up in the user registry
    bare_keys = [str(r["id"]) for r in bare]
    sandbox.data.projects[1] = {"id": sandbox.data.projects[1]["id"]}
    for key in ("isActive", "created", "updated", "createdBy", "updatedBy"):
        sandbox.data.internal_projects[0].pop(key, None)
    users = {str(u["id"]): f"{u['firstName']} {u['lastName']}" for u in sandbox.data.users}

    result = run(sandbox, warehouse)

    assert result.success
    assert_every_row_exactly_once(sandbox, warehouse)
    reports = read_table(warehouse, REPORTS_TABLE).set_index("record_key")
    rows = reports.loc[bare_keys]
    for column in (
        "project_id",
        "internal_project_id",
        "absence_project_id",
        "contact_id",
        "activity_name",
        "time_code_name",
        "clock_start",
        "invoiceable_hours",
        "break_minutes",
        "comment",
        "sent_to_attest_at",
        "attested_at",
        "invoice_id",
        "created_at",
        "updated_at",
    ):
        assert rows[column].isna().all(), column
    assert not rows["sent_to_attest"].any() and not rows["attested"].any()
    conformed = conform_time_reports(reports.reset_index()).set_index("entry_id").loc[bare_keys]
    assert conformed["project_id"].isna().all() and conformed["billable_hours"].isna().all()
    assert conformed["task"].isna().all() and conformed["source_updated_at"].isna().all()
    assert set(conformed["status"]) == {"draft"}
    assert conformed["employee_name"].tolist() == [users[str(r["user"]["id"])] for r in bare]
    assert conformed["total_hours"].tolist() == [float(r["hours"]) for r in bare]

    projects = conform_projects(read_table(warehouse, PROJECTS_TABLE)).set_index("project_id")
    bare_project = projects.loc[str(sandbox.data.projects[1]["id"])]
    assert bare_project["status"] == "unknown"
    assert (
        bare_project[
            ["project_code", "name", "customer_id", "start_date", "end_date", "manager_name", "source_updated_at"]
        ]
        .isna()
        .all()
    )
    assert projects.loc["internal:1", "status"] == "unknown"
    assert both(result, "quarantined") == 0


def test_wrong_types_and_impossible_values_are_quarantined_and_counted(start, warehouse):
    sandbox = start()
    reports = sandbox.data.time_reports
    broken = {  # index in the sandbox's list -> (change, field the reason must name)
        0: ({"hours": -2.0}, "hours"),
        1: ({"hours": 30}, "hours"),  # one report is one day
        2: ({"hours": "NaN"}, "hours"),
        3: ({"invoiceableHours": -1}, "invoiceableHours"),
        4: ({"breakMinutes": 10**20}, "breakMinutes"),  # used to overflow the Int64 column
        5: ({"createdDate": "9999-12-31 23:59:59 -05:00"}, "createdDate"),  # used to overflow
        6: ({"updatedDate": "yesterday"}, "updatedDate"),
        7: ({"user": {"id": "abc", "name": "X"}}, "user.id"),
        8: ({"project": [19, "Maintenance"]}, "project"),
        9: ({"cost": "Infinity"}, "cost"),
    }
    for index, (change, _) in broken.items():
        reports[index].update(change)
    expected = {str(reports[i]["id"]): field for i, (_, field) in broken.items()}
    first = sandbox.config.first_date
    injected = [  # served on page 1 next to the sandbox's own records
        {"id": 9001, "date": "2025-02-30", "hours": 1, "user": {"id": 2}},
        {"id": 9002, "date": "yesterday", "hours": 1, "user": {"id": 2}},
        {"id": 9003, "date": first.isoformat(), "hours": "eight", "user": {"id": 2}},
        {"date": first.isoformat(), "hours": 1, "user": {"id": 2}},  # no id
        "not an object",
        42,
    ]
    expected.update({"9001": "date", "9002": "date", "9003": "hours"})

    def serve_extra(path, page, body):
        if path == TIME_REPORTS_PATH and page == 1:
            body["items"].extend(copy.deepcopy(injected))

    sandbox.data.page_hooks.append(serve_extra)
    sandbox.data.projects[0]["title"] = {"sv": "Bygget"}
    sandbox.data.projects[1]["startDate"] = "soon"
    sandbox.data.projects[2]["status"] = "Ongoing"  # text where an object belongs
    sandbox.data.internal_projects[0]["isActive"] = "maybe"
    bad_projects = {
        str(sandbox.data.projects[0]["id"]): "title",
        str(sandbox.data.projects[1]["id"]): "startDate",
        str(sandbox.data.projects[2]["id"]): "status",
        "internal:1": "isActive",
    }

    result = run(sandbox, warehouse)

    assert result.success
    served = len(reports) + len(injected)
    raw = read_table(warehouse, REPORTS_TABLE)
    valid = raw[raw["quarantine_reason"].isna()]
    bad = raw[raw["quarantine_reason"].notna()].set_index("record_key")
    assert len(valid) + len(bad) == len(raw) == served  # nothing dropped
    unkeyed = sorted(k for k in bad.index if k.startswith("unkeyed:"))
    assert len(unkeyed) == 3
    assert sum("not a JSON object" in bad.loc[k, "quarantine_reason"] for k in unkeyed) == 2
    assert set(bad.index) - set(unkeyed) == set(expected)
    for key, field in expected.items():
        assert bad.loc[key, "quarantine_reason"].startswith(field), (key, bad.loc[key, "quarantine_reason"])
    assert '"breakMinutes":100000000000000000000' in bad.loc[str(reports[4]["id"]), "payload"]
    assert bad["work_date"].notna().all()
    assert bad["work_date"].dt.date.between(first, sandbox.config.anchor_date).all()  # rerun replaces them
    assert sorted(valid["record_key"]) == sorted(str(r["id"]) for r in reports if str(r["id"]) not in expected)

    metadata = materialization_metadata(result, TIME_REPORTS)
    assert metadata["records_served"] == metadata["rows_in_run"] == served
    assert metadata["quarantined_in_run"] == len(bad) == len(expected) + 3
    project_rows = read_table(warehouse, PROJECTS_TABLE).set_index("record_key")
    project_bad = project_rows[project_rows["quarantine_reason"].notna()]
    assert set(project_bad.index) == set(bad_projects)
    for key, field in bad_projects.items():
        assert project_bad.loc[key, "quarantine_reason"].startswith(field)
    assert materialization_metadata(result, PROJECTS)["quarantined"] == 4

    checks = {c.asset_key: c for c in result.get_asset_check_evaluations() if c.check_name == QUARANTINE_CHECK}
    for key, count in ((TIME_REPORTS_KEY, len(bad)), (PROJECTS_KEY, 4)):
        assert checks[key].passed is False
        assert checks[key].severity == dg.AssetCheckSeverity.WARN
        assert checks[key].metadata["quarantined"].value == count
    assert len(conform_time_reports(raw)) == len(valid)
    assert len(conform_projects(project_rows.reset_index())) == len(project_rows) - 4


# (how page 2 is broken, expected message, client attempts, reaches the step retry policy)
MALFORMED: dict[str, tuple[Callable[[dict], Any], str, int, bool]] = {
    "items-not-a-list": (
        lambda body: {**body, "items": "<html>maintenance</html>"},
        "HTTP 200 after 1 attempt: list response is not a paged list (no 'items' array)",
        1,
        False,
    ),
    "body-a-json-array": (
        lambda body: [body],
        "HTTP 200 after 1 attempt: list response is not a paged list",
        1,
        False,
    ),
    "paging-fields-not-numbers": (
        lambda body: {**body, "totalPages": "many"},
        "HTTP 200 after 1 attempt: list response has invalid paging fields (totalPages)",
        1,
        False,
    ),
    "html-under-200": (
        lambda body: Response(b"<html><body>Service restarting</body></html>", media_type="text/html"),
        f"HTTP 200 after {ATTEMPTS} attempts: response body is not valid JSON",
        ATTEMPTS,
        True,
    ),
    "items-null-although-count-says-more": (
        lambda body: {**body, "items": None},
        f"HTTP 200 after {ATTEMPTS} attempts: page 2 holds 0 items where its totalItemCount 300 at "
        "pageSize 100 means 100",
        ATTEMPTS,
        True,
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_page_fails_clearly_and_leaves_warehouse_as_it_was(fresh, quick_step_retries, case):
    loaded = fresh
    breaks, message, attempts, step_retried = MALFORMED[case]

    def break_page_two(path, page, body):
        return breaks(body) if path == TIME_REPORTS_PATH and page == 2 else None

    loaded.sandbox.data.page_hooks.append(break_page_two)
    result = run(loaded.sandbox, loaded.warehouse, assets=[blikk_time_reports], max_attempts=ATTEMPTS, max_in_flight=1)

    assert not result.success
    text = failure_text(result)
    assert f"Blikk GET {TIME_REPORTS_PATH} failed with {message}" in text
    assert step_retries(result) == (1 if step_retried else 0)
    step_attempts = 2 if step_retried else 1
    assert loaded.sandbox.stats.count(TIME_REPORTS_PATH) == step_attempts * (1 + attempts)
    assert loaded.sandbox.stats.count(USERS_PATH) == 0  # the read stopped at the broken page
    assert_warehouse_unchanged(loaded)
