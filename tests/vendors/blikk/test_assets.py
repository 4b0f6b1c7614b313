"""The Blikk raw assets materialized through Dagster against the sandbox on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta

import dagster as dg
import pytest
from starlette.responses import Response

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.conformed.schema import PROJECT_STATUSES, TIMESHEET_STATUSES
from timesheet_assets.vendors.blikk.assets import blikk_projects, blikk_time_reports
from timesheet_assets.vendors.blikk.conform import conform_projects, conform_time_reports
from timesheet_assets.vendors.blikk.resource import (
    ABSENCE_PROJECTS_PATH,
    TIME_REPORTS_PATH,
    USERS_PATH,
    BlikkResource,
)
from timesheet_assets.vendors.blikk.sandbox import expected_projects, expected_timesheets

TIME_REPORTS = ["raw", "blikk", "time_reports"]
PROJECTS = ["raw", "blikk", "projects"]


def _run_time_reports(sandbox, warehouse, first=None, last=None, *, resource=None, **kwargs):
    return materialize(
        [blikk_time_reports],
        {"blikk": resource or sandbox.resource()},
        warehouse,
        first=first or sandbox.config.first_date,
        last=last or sandbox.config.anchor_date,
        **kwargs,
    )


def _check(result, name):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def test_thirty_day_backfill_lands_every_report_once_at_the_documented_rate(blikk, warehouse):
    sandbox = blikk(time_records=2100, days=30)
    cfg = sandbox.config
    server_ids = {str(r["id"]) for r in sandbox.data.time_reports}

    first_run = _run_time_reports(sandbox, warehouse)
    table = read_table(warehouse, "blikk.time_reports")
    assert len(table) == 2100
    assert table["record_key"].is_unique and set(table["record_key"]) == server_ids
    assert table["work_date"].dt.date.between(cfg.first_date, cfg.anchor_date).all()

    # One windowed query for the whole 30-day range: 21 pages of 100, one token, one user list.
    pages = sandbox.stats.calls(TIME_REPORTS_PATH)
    assert len(pages) == 21
    assert {c.query.count(f"filter.from={cfg.first_date}") for c in pages} == {1}
    assert {c.query.count(f"filter.to={cfg.anchor_date}") for c in pages} == {1}
    assert sandbox.stats.count("/v1/Auth/Token") == 1 and sandbox.stats.count(USERS_PATH) == 1

    metadata = materialization_metadata(first_run, TIME_REPORTS)
    assert metadata["rows_in_run"] == 2100 and metadata["quarantined_in_run"] == 0
    assert metadata["requests"] == 23 and metadata["retries"] == 0
    assert metadata["rate_limited"] == 0
    # Spacing 23 requests under 4/s means waiting on the limiter for most of 5+ seconds.
    assert metadata["seconds_waited_rate_limit"] > 4.0
    assert metadata["list_requests"] == 21 and metadata["list_complete"] is True
    assert _check(first_run, "list_read_complete").passed

    second_run = _run_time_reports(sandbox, warehouse)
    assert second_run.success
    again = read_table(warehouse, "blikk.time_reports")
    assert len(again) == 2100 and again["record_key"].is_unique

    # 46 requests over two runs, every one inside 4 per second: not a single 429.
    assert sandbox.stats.requests >= 40
    assert 429 not in sandbox.statuses()
    assert sandbox.stats.rate_exceeded == 0

    conformed = conform_time_reports(again)
    expected = expected_timesheets(cfg, cfg.first_date, cfg.anchor_date)
    assert len(conformed) == expected["lines"] == 2100
    assert conformed["total_hours"].sum() == pytest.approx(expected["total_hours"])
    assert conformed["entry_id"].is_unique
    assert set(conformed["status"]) <= set(TIMESHEET_STATUSES)
    assert set(conformed["status"]) == {"approved", "submitted", "draft"}
    # Names missing on the report's user reference come from the user registry.
    assert conformed["employee_name"].notna().all()
    assert (conformed["overtime_hours"] > 0).any()
    assert (conformed["regular_hours"] + conformed["overtime_hours"] == conformed["total_hours"]).all()
    assert conformed["project_id"].str.startswith("internal:").any()
    assert conformed["project_id"].str.startswith("absence:").any()


def test_injected_429s_and_503s_are_waited_out_and_every_row_lands(blikk, warehouse):
    sandbox = blikk(time_records=300)
    # Retry-After as an HTTP date, the body saying {"waitInSeconds": 1}.
    sandbox.knobs.update(script=[429, 503, "truncate"], path_contains=TIME_REPORTS_PATH, retry_after="http-date")
    result = _run_time_reports(sandbox, warehouse)
    assert result.success
    table = read_table(warehouse, "blikk.time_reports")
    assert len(table) == 300 and table["record_key"].is_unique

    assert sandbox.stats.faults_injected == {"429": 1, "503": 1, "truncate": 1}
    metadata = materialization_metadata(result, TIME_REPORTS)
    assert metadata["retries"] == 3
    assert metadata["rate_limited"] == 1 and metadata["server_errors"] == 1
    assert metadata["seconds_waited_backoff"] >= 1.0
    assert sandbox.stats.rate_exceeded == 0


def test_token_expiring_mid_run_is_renewed_once(blikk, warehouse, instance, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox = blikk(time_records=300)
    tokens = sandbox.server.sandbox.tokens

    def expire_after_page_two(path, page, body):
        if path == TIME_REPORTS_PATH and page == 2:
            sandbox.data.page_hooks.remove(expire_after_page_two)
            tokens.expire_all()

    sandbox.data.page_hooks.append(expire_after_page_two)
    result = _run_time_reports(sandbox, warehouse, instance=instance)
    assert result.success
    assert len(read_table(warehouse, "blikk.time_reports")) == 300
    assert sandbox.stats.count("/v1/Auth/Token") == 2
    assert sandbox.statuses().count(401) == 1
    assert materialization_metadata(result, TIME_REPORTS)["reauthentications"] == 1
    event_text = "\n".join(str(record) for record in instance.all_logs(result.run_id))
    assert "credentials expired, re-authenticating once" in event_text
    bearer_tokens = {c.headers["authorization"][7:] for c in sandbox.stats.calls(TIME_REPORTS_PATH)}
    assert len(bearer_tokens) == 2
    for secret in (*bearer_tokens, sandbox.env["BLIKK_APP_SECRET"]):
        assert secret not in event_text and secret not in caplog.text


def test_bad_credentials_fail_the_run_naming_blikk_and_the_status_without_secrets(
    blikk, warehouse, instance, monkeypatch, caplog
):
    sandbox = blikk(time_records=10)
    app_id, app_secret = "blikk-app-Quokka-4412", "Zebra-Secret-7781-xq"
    monkeypatch.setenv("BLIKK_APP_ID", app_id)
    monkeypatch.setenv("BLIKK_APP_SECRET", app_secret)
    resource = BlikkResource(
        base_url=sandbox.server.url, app_id=dg.EnvVar("BLIKK_APP_ID"), app_secret=dg.EnvVar("BLIKK_APP_SECRET")
    )
    caplog.set_level(logging.DEBUG)
    result = _run_time_reports(sandbox, warehouse, resource=resource, instance=instance, raise_on_error=False)

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    assert (
        "Blikk POST /v1/Auth/Token failed with HTTP 401 after 1 attempt: "
        "Invalid application id or secret" in failure.message
    )
    # Rejected credentials are not retried: not by the client, not by the step retry policy.
    assert sandbox.stats.count("/v1/Auth/Token") == 1
    assert sandbox.stats.count(TIME_REPORTS_PATH) == 0

    basic = base64.b64encode(f"{app_id}:{app_secret}".encode()).decode()
    event_text = "\n".join(str(record) for record in instance.all_logs(result.run_id))
    assert "HTTP 401" in event_text
    for secret in (app_id, app_secret, basic):
        assert secret not in event_text
        assert secret not in caplog.text
        assert secret not in str(failure)


def test_forbidden_time_reports_fail_at_once_with_the_vendor_message(blikk, warehouse):
    sandbox = blikk(time_records=10)
    sandbox.data.denied_permissions = {"Timereport_Read"}
    result = _run_time_reports(sandbox, warehouse, raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "Blikk GET /v1/Core/TimeReports failed with HTTP 403" in message
    assert "permissions required: Timereport_Read" in message
    assert sandbox.stats.count(TIME_REPORTS_PATH) == 1


def test_invalid_records_are_quarantined_with_the_reason_and_counted(blikk, warehouse):
    sandbox = blikk(time_records=300)
    day = sandbox.config.first_date + timedelta(days=3)
    template = sandbox.data.time_reports[0]
    sandbox.data.put_raw_time_report({**template, "id": 90001, "date": day.isoformat(), "hours": "eight"})
    sandbox.data.put_raw_time_report({**template, "id": 90002, "date": day.isoformat(), "user": None})

    result = _run_time_reports(sandbox, warehouse)
    table = read_table(warehouse, "blikk.time_reports").set_index("record_key")
    assert len(table) == 302
    bad = table.loc[["90001", "90002"]]
    assert bad["quarantine_reason"].tolist() == [
        "hours: Input should be a valid number, unable to parse string as a number",
        "user: Input should be a valid dictionary or instance of NameRef",
    ]
    assert (bad["work_date"].dt.date == day).all()
    assert '"hours":"eight"' in bad.loc["90001", "payload"]
    assert table.drop(index=["90001", "90002"])["quarantine_reason"].isna().all()

    metadata = materialization_metadata(result, TIME_REPORTS)
    assert metadata["quarantined_in_run"] == 2 and metadata["rows_in_run"] == 302 and metadata["records_served"] == 302
    check = _check(result, "no_quarantined_records")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert len(conform_time_reports(table.reset_index())) == 300


def test_rerunning_a_window_replaces_exactly_its_partitions(blikk, warehouse):
    sandbox = blikk(time_records=300)
    cfg = sandbox.config
    _run_time_reports(sandbox, warehouse)
    before = read_table(warehouse, "blikk.time_reports").set_index("record_key")

    first, last = cfg.anchor_date - timedelta(days=4), cfg.anchor_date
    in_window = [r for r in sandbox.data.time_reports if first.isoformat() <= r["date"] <= last.isoformat()]
    edited, deleted = in_window[0]["id"], in_window[1]["id"]
    sandbox.data.edit_time_reports([edited], add_hours=1.5)
    sandbox.data.delete_time_reports([deleted])
    added = sandbox.data.add_time_report(last, hours=2.25)["id"]
    sandbox.stats.reset()

    _run_time_reports(sandbox, warehouse, first, last)
    after = read_table(warehouse, "blikk.time_reports").set_index("record_key")
    assert sandbox.stats.count(TIME_REPORTS_PATH) == 1  # ~50 reports: one page
    assert len(after) == 300 and after.index.is_unique
    assert str(deleted) not in after.index
    assert after.loc[str(added), "hours"] == 2.25
    assert after.loc[str(edited), "hours"] == before.loc[str(edited), "hours"] + 1.5
    assert after.loc[str(edited), "updated_at"] > before.loc[str(edited), "created_at"]
    outside = before[before["work_date"].dt.date < first].drop(columns=["ingested_at"])
    kept = after.loc[outside.index].drop(columns=["ingested_at"])
    assert kept.equals(outside)


def test_names_stay_empty_when_the_user_registry_is_forbidden(blikk, warehouse):
    sandbox = blikk(time_records=300)
    sandbox.data.denied_permissions = {"User_Read"}
    nameless = {str(r["id"]) for r in sandbox.data.time_reports if not r["user"]["name"]}
    assert nameless
    result = _run_time_reports(sandbox, warehouse)
    assert result.success
    table = read_table(warehouse, "blikk.time_reports")
    assert len(table) == 300
    assert set(table.loc[table["employee_name"].isna(), "record_key"]) == nameless
    assert sandbox.statuses(USERS_PATH) == [403]
    assert materialization_metadata(result, TIME_REPORTS)["user_names_looked_up"] is False


def test_projects_and_project_registries_are_fully_refreshed(blikk, warehouse):
    sandbox = blikk(time_records=300, projects=12)
    first = materialize([blikk_projects], {"blikk": sandbox.resource()}, warehouse)
    metadata = materialization_metadata(first, PROJECTS)
    assert metadata["rows"] == expected_projects(sandbox.config) == 12 + 3 + 3
    assert metadata["registries_refused"] == "none"

    removed = str(sandbox.data.projects.pop()["id"])
    sandbox.data.changed()
    materialize([blikk_projects], {"blikk": sandbox.resource()}, warehouse)
    table = read_table(warehouse, "blikk.projects")
    assert len(table) == 17 and removed not in set(table["record_key"]) and table["record_key"].is_unique
    conformed = conform_projects(table).set_index("project_id")
    assert set(conformed["status"]) <= set(PROJECT_STATUSES)
    assert {"active", "completed"} <= set(conformed["status"])
    assert conformed.loc["internal:1", ["name", "status"]].tolist() == ["Internal meetings", "active"]
    assert conformed.loc["absence:3", "status"] == "completed"
    assert conformed.loc[conformed.index.str.isdigit(), "customer_name"].notna().all()

    # Every project a time report is booked on exists in the conformed projects.
    materialize(
        [blikk_time_reports],
        {"blikk": sandbox.resource()},
        warehouse,
        first=sandbox.config.first_date,
        last=sandbox.config.anchor_date,
    )
    timesheets = conform_time_reports(read_table(warehouse, "blikk.time_reports"))
    booked = set(timesheets["project_id"].dropna())
    assert {"internal:1", "absence:1"} <= booked
    assert booked - {removed} <= set(conformed.index)


def test_a_forbidden_project_registry_is_skipped_not_fatal(blikk, warehouse):
    sandbox = blikk(time_records=10, projects=5)
    sandbox.data.denied_permissions = {"AbsenceProject_Read"}
    result = materialize([blikk_projects], {"blikk": sandbox.resource()}, warehouse)
    assert result.success
    table = read_table(warehouse, "blikk.projects")
    assert sorted(table["project_type"].value_counts().items()) == [("internal", 3), ("project", 5)]
    assert materialization_metadata(result, PROJECTS)["registries_refused"] == "absence"


def test_optional_registries_missing_on_the_server_are_skipped_not_fatal(blikk, warehouse):
    # A deployment without the admin endpoints answers 404 ("the resource URL does not
    # exist"); only the enrichment they feed is lost, the core lists still land.
    sandbox = blikk(time_records=120, projects=5)
    missing = {USERS_PATH, ABSENCE_PROJECTS_PATH}

    def not_deployed(path, page, body):
        return Response(b"", status_code=404) if path in missing else None

    sandbox.data.page_hooks.append(not_deployed)
    nameless = {str(r["id"]) for r in sandbox.data.time_reports if not r["user"]["name"]}
    assert nameless

    reports = _run_time_reports(sandbox, warehouse)
    projects = materialize([blikk_projects], {"blikk": sandbox.resource()}, warehouse)

    assert reports.success and projects.success
    table = read_table(warehouse, "blikk.time_reports")
    assert len(table) == 120
    assert set(table.loc[table["employee_name"].isna(), "record_key"]) == nameless
    assert materialization_metadata(reports, TIME_REPORTS)["user_names_looked_up"] is False
    assert sandbox.statuses(USERS_PATH) == [404]
    project_table = read_table(warehouse, "blikk.projects")
    assert sorted(project_table["project_type"].value_counts().items()) == [("internal", 3), ("project", 5)]
    assert materialization_metadata(projects, PROJECTS)["registries_refused"] == "absence"
    assert sandbox.statuses(ABSENCE_PROJECTS_PATH) == [404]
