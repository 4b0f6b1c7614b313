"""All five vendors, raw and conformed, in one Dagster instance against the sandboxes, on
both warehouse backends (DuckDB file, PostgreSQL server)."""

from datetime import date, timedelta

import dagster as dg
import pytest

from tests.support.dagster_helpers import export_sandbox_env, materialize_definitions, query, range_tags, read_table
from tests.support.postgres import WAREHOUSE_BACKENDS, make_warehouse
from timesheet_assets.definitions import build_definitions
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.registry import sandbox_module, serve_sandboxes
from timesheet_assets.settings import VENDOR_NAMES

ANCHOR = date(2026, 3, 20)
CONFIG = SandboxConfig(seed=7, time_records=120, projects=8, employees=6, days=20, anchor_date=ANCHOR)
FIRST, LAST = ANCHOR - timedelta(days=9), ANCHOR


@pytest.fixture(scope="module")
def sandboxes():
    with serve_sandboxes(VENDOR_NAMES, CONFIG) as running:
        yield running


@pytest.fixture(params=WAREHOUSE_BACKENDS)
def warehouse(request, tmp_path, monkeypatch) -> str:
    return make_warehouse(request.param, tmp_path, monkeypatch)


@pytest.fixture
def vendor_env(sandboxes, monkeypatch):
    export_sandbox_env(sandboxes, monkeypatch)
    yield sandboxes


def run_all(defs, warehouse, instance, selection=None):
    return materialize_definitions(defs, warehouse, instance, FIRST, LAST, selection)


def expected(vendors=VENDOR_NAMES):
    lines, hours, projects = {}, {}, 0
    for vendor in vendors:
        module = sandbox_module(vendor)
        summary = module.expected_timesheets(CONFIG, FIRST, LAST)
        if summary["lines"]:
            lines[vendor] = summary["lines"]
            hours[vendor] = summary["total_hours"]
        projects += module.expected_projects(CONFIG)
    return lines, hours, projects


def test_all_vendors_land_in_the_conformed_model_and_every_check_passes(vendor_env, warehouse, instance):
    defs = build_definitions(VENDOR_NAMES)
    result = run_all(defs, warehouse, instance)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations), [
        (e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed
    ]

    lines, hours, project_count = expected()
    timesheets = read_table(warehouse, "conformed.timesheets")
    by_vendor = timesheets.groupby("source_system").size().to_dict()
    assert by_vendor == lines
    assert len(timesheets) == sum(lines.values())
    totals = timesheets.groupby("source_system")["total_hours"].sum().round(2).to_dict()
    assert totals == {v: round(h, 2) for v, h in hours.items()}
    assert timesheets.duplicated(["source_system", "entry_id"]).sum() == 0

    projects = read_table(warehouse, "conformed.projects")
    assert len(projects) == project_count
    assert projects.duplicated(["source_system", "project_id"]).sum() == 0

    # The same range again: every write replaces its window, nothing doubles.
    again = run_all(defs, warehouse, instance)
    assert again.success
    assert len(read_table(warehouse, "conformed.timesheets")) == len(timesheets)
    assert len(read_table(warehouse, "conformed.projects")) == len(projects)


# A healthy vendor beside the one that breaks is all re-execution needs (the whole code
# location runs in the first test).
REEXECUTED_VENDORS = ("ajera", "ibuildapp")


def e2e_job():
    defs = dg.Definitions.merge(
        build_definitions(REEXECUTED_VENDORS),
        dg.Definitions(jobs=[dg.define_asset_job("everything", selection=dg.AssetSelection.all())]),
    )
    return defs.resolve_job_def("everything")


# The code location's default executor is the in-process one (no executor choice to make).
IN_PROCESS = {"execution": {"config": {}}}


def test_reexecution_from_failure_completes_without_duplicates(vendor_env, warehouse, instance, monkeypatch):
    monkeypatch.setenv("TIMESHEET_WAREHOUSE", warehouse)
    broken = vendor_env["ibuildapp"].server.sandbox
    broken.knobs.update(status_rates={400: 1.0})
    job = dg.reconstructable(e2e_job)
    with dg.execute_job(
        job, instance, run_config=IN_PROCESS, tags=range_tags(FIRST, LAST), raise_on_error=False
    ) as first:
        assert not first.success
        failed_steps = {e.step_key for e in first.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE}
        assert any("ibuildapp" in step for step in failed_steps)
        first_run_id = first.run_id
    partial = read_table(warehouse, "ajera.timesheets")
    assert len(partial) > 0  # healthy vendors landed in the failed run

    broken.knobs.clear()
    options = dg.ReexecutionOptions.from_failure(first_run_id, instance)
    with dg.execute_job(
        job,
        instance,
        run_config=IN_PROCESS,
        reexecution_options=options,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    ) as retry:
        assert retry.success
        rerun_steps = {e.step_key for e in retry.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
    assert not any("ajera" in step for step in rerun_steps)  # only what failed or was skipped
    assert any("ibuildapp" in step for step in rerun_steps)

    lines, _, _ = expected(REEXECUTED_VENDORS)
    timesheets = read_table(warehouse, "conformed.timesheets")
    assert timesheets.groupby("source_system").size().to_dict() == lines
    assert timesheets.duplicated(["source_system", "entry_id"]).sum() == 0
    assert len(read_table(warehouse, "ajera.timesheets")) == len(partial)


def test_corrupted_raw_row_fails_the_hours_check(vendor_env, warehouse, instance):
    defs = build_definitions(("ajera",))
    assert run_all(defs, warehouse, instance).success
    key = query(
        warehouse,
        "SELECT record_key FROM ajera.timesheets WHERE quarantine_reason IS NULL AND work_date BETWEEN ? AND ? LIMIT 1",
        [FIRST, LAST],
    )[0][0]
    query(warehouse, "UPDATE ajera.timesheets SET regular_hours = -5 WHERE record_key = ?", [key])
    result = run_all(defs, warehouse, instance, selection=dg.AssetSelection.groups("conformed"))
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    hours = evaluations[("conformed/timesheets", "hours_between_0_and_24")]
    assert not hours.passed and hours.severity == dg.AssetCheckSeverity.WARN
    assert hours.metadata["rows"].value == 1
    blocking = [
        e for (asset, name), e in evaluations.items() if name in ("primary_key_unique", "required_columns_not_null")
    ]
    assert blocking and all(e.passed for e in blocking)
