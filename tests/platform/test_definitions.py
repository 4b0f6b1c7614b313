"""The code location as users see it: the rules every asset follows (groups, pools, owners,
policies), schedules and sensors. Each asset's names, checks and partitions: the snapshot in
test_asset_specs.py."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from timesheet_assets.definitions import build_definitions
from timesheet_assets.ingest import HTTP_RETRY_POLICY
from timesheet_assets.schedules import RANGE_END, RANGE_START
from timesheet_assets.settings import VENDOR_NAMES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def defs():
    return build_definitions(VENDOR_NAMES)


def all_specs(defs):
    for assets_def in defs.assets:
        for key in assets_def.keys:
            yield key, assets_def, assets_def.specs_by_key[key]


def test_groups_pools_owners_kinds_and_descriptions(defs):
    for key, assets_def, spec in all_specs(defs):
        vendor = key.path[1] if key.path[0] == "raw" else None
        assert spec.group_name == (vendor or "conformed"), key
        assert spec.description, key
        assert spec.owners == ["team:data-platform"], key
        assert spec.kinds, key
        if vendor:
            assert assets_def.op.pool == vendor, key
            assert assets_def.op.retry_policy == HTTP_RETRY_POLICY, key


def test_schedules_are_off_by_default_and_the_changed_days_sensor_is_on(defs):
    for name in ("daily_refresh", "deep_refresh"):
        assert defs.resolve_schedule_def(name).default_status == dg.DefaultScheduleStatus.STOPPED
        assert defs.resolve_schedule_def(name).job_name == "refresh_all"
    assert defs.resolve_sensor_def("aims360_export_sensor").default_status == dg.DefaultSensorStatus.STOPPED
    # It only follows up what a refresh found, so it is on wherever the refreshes are.
    assert defs.resolve_sensor_def("reread_changed_days").default_status == dg.DefaultSensorStatus.RUNNING


def test_daily_refresh_rereads_each_vendors_lookback_window(defs, monkeypatch):
    monkeypatch.setenv("BLIKK_LOOKBACK_DAYS", "30")
    schedule = defs.resolve_schedule_def("daily_refresh")
    when = datetime(2026, 5, 20, 5, 0, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        requests = list(schedule.evaluate_tick(context).run_requests)
    by_vendor = {r.tags["timesheet_assets/vendor"]: r for r in requests}
    assert set(by_vendor) == {"aimsio", "ajera", "blikk", "ibuildapp"}  # AIMS360 runs from its sensor
    assert by_vendor["blikk"].tags[RANGE_START] == "2026-04-21" and by_vendor["blikk"].tags[RANGE_END] == "2026-05-20"
    assert by_vendor["ajera"].tags[RANGE_START] == "2026-05-07"  # default 14 days
    # Aimsio's raw tables are incremental; its run rebuilds the conformed lookback window.
    assert by_vendor["aimsio"].tags[RANGE_START] == "2026-05-07"
    assert {k.to_user_string() for k in by_vendor["ibuildapp"].asset_selection} == {
        "raw/ibuildapp/time_entries",
        "raw/ibuildapp/time_entry_side_tables",
        "raw/ibuildapp/projects",
        "conformed/timesheets",
        "conformed/projects",
    }
    assert len({r.run_key for r in requests}) == len(requests)


def test_unselected_vendor_is_simply_absent():
    defs = build_definitions(("blikk",))
    keys = {key.to_user_string() for a in defs.assets for key in a.keys}
    assert keys == {"raw/blikk/time_reports", "raw/blikk/projects", "conformed/timesheets", "conformed/projects"}
    dg.Definitions.validate_loadable(defs)


def test_dagster_cli_validates_the_code_location(tmp_path):
    import os

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "timesheet_assets.definitions"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_deep_refresh_rereads_each_windowed_vendors_long_window(defs, monkeypatch):
    monkeypatch.setenv("IBUILDAPP_DEEP_REFRESH_DAYS", "30")
    schedule = defs.resolve_schedule_def("deep_refresh")
    when = datetime(2026, 5, 24, 2, 0, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        requests = list(schedule.evaluate_tick(context).run_requests)
    by_vendor = {r.tags["timesheet_assets/vendor"]: r for r in requests}
    assert set(by_vendor) == {"ajera", "blikk", "ibuildapp"}  # Aimsio is not read by window
    assert by_vendor["blikk"].tags[RANGE_START] == "2026-01-25"  # 120 days by default
    assert by_vendor["ibuildapp"].tags[RANGE_START] == "2026-04-25"
    assert all(r.tags[RANGE_END] == "2026-05-24" for r in requests)
    assert all(dg.AssetKey(["conformed", "timesheets"]) in r.asset_selection for r in requests)


def test_changed_days_sensor_rereads_what_a_change_scan_found_once(instance):
    from timesheet_assets.schedules import DAYS_TO_REREAD

    defs = build_definitions(("blikk",))
    key = dg.AssetKey(["raw", "blikk", "time_reports"])
    found = ["2025-12-03", "2025-11-01", "2025-12-01"]
    for day in ("2026-01-05", "2026-01-06"):  # a range run reports the same days on each partition
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=key, partition=day, metadata={DAYS_TO_REREAD: found})
        )
    sensor = defs.resolve_sensor_def("reread_changed_days")
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        data = sensor.evaluate_tick(context)
    ranges = sorted((r.tags[RANGE_START], r.tags[RANGE_END]) for r in data.run_requests)
    assert ranges == [("2025-11-01", "2025-11-01"), ("2025-12-01", "2025-12-03")]
    assert all(
        dg.AssetKey(["conformed", "timesheets"]) in r.asset_selection and key in r.asset_selection
        for r in data.run_requests
    )
    with dg.build_sensor_context(instance=instance, cursor=data.cursor, definitions=defs) as context:
        assert not sensor.evaluate_tick(context).run_requests


def test_every_run_executes_its_steps_in_its_worker_and_refreshes_have_a_max_runtime(defs):
    """No step process to outlive a killed worker or to start per step, whichever way a run is
    launched; a stuck refresh is terminated by run monitoring."""
    from timesheet_assets.jobs import MAX_RUNTIME_TAG, REFRESH_MAX_RUNTIME_SECONDS

    asset_graph_job = defs.resolve_implicit_global_asset_job_def()
    assert asset_graph_job.executor_def.name == "in_process"
    refreshes = [job for job in defs.jobs if job.name.startswith("refresh_")]
    assert {job.name for job in refreshes} >= {"refresh_all", *(f"refresh_{v}" for v in VENDOR_NAMES if v != "aims360")}
    for job in refreshes:
        resolved = defs.resolve_job_def(job.name)
        assert resolved.executor_def.name == "in_process", job.name
        assert resolved.tags[MAX_RUNTIME_TAG] == str(REFRESH_MAX_RUNTIME_SECONDS), job.name


def test_refresh_ranges_never_start_before_the_first_partition(monkeypatch):
    monkeypatch.setenv("TIMESHEET_START_DATE", "2026-05-01")
    defs = build_definitions(("blikk",))
    when = datetime(2026, 5, 24, 2, 0, tzinfo=UTC)
    for name in ("daily_refresh", "deep_refresh"):
        with dg.build_schedule_context(scheduled_execution_time=when) as context:
            (request,) = defs.resolve_schedule_def(name).evaluate_tick(context).run_requests
        assert request.tags[RANGE_START] == ("2026-05-11" if name == "daily_refresh" else "2026-05-01")


def test_changed_days_before_the_first_partition_are_not_asked_for(instance, monkeypatch):
    from timesheet_assets.schedules import DAYS_TO_REREAD

    monkeypatch.setenv("TIMESHEET_START_DATE", "2025-11-15")
    defs = build_definitions(("blikk",))
    key = dg.AssetKey(["raw", "blikk", "time_reports"])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=key, partition="2026-01-05", metadata={DAYS_TO_REREAD: ["2025-11-01", "2025-12-01"]}
        )
    )
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        data = defs.resolve_sensor_def("reread_changed_days").evaluate_tick(context)
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in data.run_requests] == [("2025-12-01", "2025-12-01")]
