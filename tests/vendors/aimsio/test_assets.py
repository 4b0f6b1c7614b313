"""Raw Aimsio assets through Dagster, over HTTP against the sandbox: per-GUID change
detection, failure recovery, full refresh, quarantine, deletions and the conformed mapping."""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.conformed import assets as conformed
from timesheet_assets.storage import WarehouseIOManager
from timesheet_assets.vendors.aimsio import PLUGIN
from timesheet_assets.vendors.aimsio.conform import conform_job_orders, conform_timecards
from timesheet_assets.vendors.aimsio.sandbox import (
    DOC_EXAMPLE_TIMECARD,
    expected_projects,
    expected_timesheets,
)

from .support import (
    JOB_ORDERS,
    JOB_ORDERS_ASSET,
    TIMECARDS_ASSET,
    TIMECARDS_KEY,
    config,
    detail_calls,
    full_refresh_config,
    list_calls,
    run_raw,
    start,
    stored_versions,
    unthrottled,
)

TIMECARDS_TABLE = "aimsio.timecards"
JOB_ORDERS_TABLE = "aimsio.job_orders"


def _rows_by_key(warehouse: str) -> pd.DataFrame:
    return read_table(warehouse, TIMECARDS_TABLE).set_index("record_key")


def test_the_documents_example_timecard_conforms_to_its_exact_numbers(serve_app, warehouse, instance):
    server, store = start(serve_app, config(0))
    store.put_timecard(DOC_EXAMPLE_TIMECARD)
    result = run_raw(server, warehouse, instance)
    assert materialization_metadata(result, TIMECARDS_KEY)["quarantined"] == 0
    raw = read_table(warehouse, TIMECARDS_TABLE)
    assert len(raw) == 1
    assert json.loads(raw.loc[0, "payload"]) == DOC_EXAMPLE_TIMECARD
    conformed = conform_timecards(raw)
    row = conformed.iloc[0].to_dict()
    assert row["source_system"] == "aimsio"
    assert row["entry_id"] == "6344bf5e-3ed3-45a3-a8bf-59e86a8e2872"
    # 1745231400000 ms = 2025-04-21 10:30 UTC = 05:30 in America/Winnipeg.
    assert row["work_date"] == date(2025, 4, 21)
    assert row["employee_id"] == "9d45a547-33d0-4eda-acf7-c3095a8d20c4"
    assert row["project_id"] == "8dd33a3b-5843-4f9b-add9-60dbc47cd7f8"
    assert row["project_code"] == "2025-116"
    assert row["regular_hours"] == 0.0
    assert row["overtime_hours"] == 10.0  # "2.000" overtime + "8.000" double time
    assert row["total_hours"] == 10.0  # + "0.000" travel
    assert row["billable_hours"] == 0.0  # timeCardIsBillable: false
    assert row["status"] == "submitted"  # not exported, no payroll period
    assert row["notes"] == "OK"
    assert pd.isna(row["task"]) and pd.isna(row["employee_name"])
    assert raw.loc[0, "work_date_time_zone"] == "America/Winnipeg"


def test_a_first_batch_without_any_date_does_not_break_later_writes(serve_app, warehouse, instance):
    server, store = start(serve_app, config(0))
    fast = unthrottled(server)
    store.put_timecard({**DOC_EXAMPLE_TIMECARD, "timeCardGuid": "undated", "timeCardRecordDate": None})
    run_raw(server, warehouse, instance, resource=fast)
    store.put_timecard(DOC_EXAMPLE_TIMECARD)
    run_raw(server, warehouse, instance, resource=fast)
    raw = read_table(warehouse, TIMECARDS_TABLE).set_index("record_key")
    assert pd.isna(raw.loc["undated", "work_date"])
    # The first write created work_date from nulls only; the warehouse typed it on the second.
    with duckdb.connect(warehouse, read_only=True) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'timecards'"
            ).fetchall()
        )
    assert (types["work_date"], types["record_date"]) == ("DATE", "TIMESTAMP WITH TIME ZONE")
    conformed = conform_timecards(raw.reset_index())
    assert list(conformed["work_date"]) == [date(2025, 4, 21)]


def test_500_timecards_then_20_changes_then_none(serve_app, warehouse, instance):
    server, store = start(serve_app, config(500))
    first = run_raw(server, warehouse, instance)
    stats = server.sandbox.stats.summary()
    assert list_calls(server) == 1
    fetched = detail_calls(server)
    assert len(fetched) == 500 and set(fetched) == set(store.timecards)
    assert stats["requests"] == 501
    assert stats["timed_out"] == 0 and stats["refused_in_flight"] == 0
    assert stats["by_status"] == {"200": 501}
    assert stats["peak_in_flight"] <= 10
    meta = materialization_metadata(first, TIMECARDS_KEY)
    assert (meta["rows"], meta["requests"], meta["detail_requests"]) == (500, 501, 500)
    assert meta["newest_updated_at"] == max(store.timecard_updated.values())
    assert stored_versions(warehouse) == store.timecard_updated
    assert len(read_table(warehouse, TIMECARDS_TABLE)) == 500

    changed = store.mutate_timecards(20)
    server.sandbox.stats.reset()
    second = run_raw(server, warehouse, instance)
    assert list_calls(server) == 1
    assert sorted(detail_calls(server)) == sorted(changed)
    assert server.sandbox.stats.requests == 1 + 20
    meta = materialization_metadata(second, TIMECARDS_KEY)
    assert (meta["rows"], meta["unchanged_skipped"]) == (20, 480)
    assert stored_versions(warehouse) == store.timecard_updated
    table = _rows_by_key(warehouse)
    assert len(table) == 500  # upserted, not appended
    for guid in changed:
        assert table.loc[guid, "description"] == store.timecard(guid)["timeCarddescription"]
        assert table.loc[guid, "regular_hours"] == float(store.timecard(guid)["timeCardEmployeeRegularHours"])

    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance)
    assert server.sandbox.stats.requests == 1 and detail_calls(server) == []


def test_a_run_failing_mid_way_or_in_the_write_changes_nothing_and_the_next_run_recovers(
    serve_app, warehouse, instance
):
    server, store = start(serve_app, config(8))
    run_raw(server, warehouse, instance)
    versions = stored_versions(warehouse)
    changed = store.mutate_timecards(4)

    # Fetching fails on the third detail call.
    server.sandbox.knobs.update(script=[None] * 2 + [400], path_contains="/CurrentTimeCard/")
    failed = run_raw(server, warehouse, instance, raise_on_error=False)
    assert not failed.success
    assert "failed with HTTP 400" in failed.failure_data_for_node("raw__aimsio__timecards").error.message
    assert stored_versions(warehouse) == versions
    table = _rows_by_key(warehouse)
    assert not table["description"].fillna("").str.startswith("Revised").any()

    server.sandbox.knobs.clear()
    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance)
    assert list_calls(server) == 1 and sorted(detail_calls(server)) == sorted(changed)
    table = _rows_by_key(warehouse)
    assert all(table.loc[g, "description"] == store.timecard(g)["timeCarddescription"] for g in changed)
    versions = stored_versions(warehouse)
    assert versions == store.timecard_updated

    # The details arrive but the write fails: the stored versions stay too.
    fast = unthrottled(server)
    changed = store.mutate_timecards(3)
    server.sandbox.stats.reset()

    readable = WarehouseIOManager(database=warehouse)

    class RefusingWarehouse(dg.ConfigurableIOManager):
        """Reads the stored table like the warehouse, refuses every write."""

        def read_table(self, asset_key, columns=None):
            return readable.create_io_manager(None).read_table(asset_key, columns)

        def handle_output(self, context, obj):
            raise OSError("warehouse disk full")

        def load_input(self, context):
            raise NotImplementedError

    failed = run_raw(
        server,
        warehouse,
        instance,
        resource=fast,
        resources={"io_manager": RefusingWarehouse()},
        raise_on_error=False,
    )
    assert not failed.success
    assert sorted(detail_calls(server)) == sorted(changed)
    assert stored_versions(warehouse) == versions

    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance, resource=fast)
    assert sorted(detail_calls(server)) == sorted(changed)
    table = _rows_by_key(warehouse)
    assert all(table.loc[g, "description"] == store.timecard(g)["timeCarddescription"] for g in changed)
    assert stored_versions(warehouse) == store.timecard_updated


def test_full_refresh_quarantine_deletions_job_orders_and_the_conformed_mapping(serve_app, warehouse, instance):
    cfg = config(12, projects=4)
    server, store = start(serve_app, cfg)
    fast = unthrottled(server)
    broken = {**DOC_EXAMPLE_TIMECARD, "timeCardGuid": "broken-card", "timeCardRecordDate": None}
    store.put_timecard(broken)
    result = run_raw(server, warehouse, instance, resource=fast, assets=[TIMECARDS_ASSET, JOB_ORDERS_ASSET])
    meta = materialization_metadata(result, TIMECARDS_KEY)
    assert (meta["rows"], meta["quarantined"]) == (13, 1)
    check = result.get_asset_check_evaluations()
    by_asset = {e.asset_key.path[-1]: e.passed for e in check}
    assert by_asset == {"timecards": False, "job_orders": True}
    raw = read_table(warehouse, TIMECARDS_TABLE)
    quarantined = raw[raw["quarantine_reason"].notna()]
    assert list(quarantined["record_key"]) == ["broken-card"]
    assert "timeCardRecordDate is null" in quarantined.iloc[0]["quarantine_reason"]
    deleted_in_source = {g for g, b in store.timecards.items() if b["timeCardIsDeleted"]}
    assert set(raw.loc[raw["is_deleted"].fillna(False).astype(bool), "record_key"]) == deleted_in_source

    conformed = conform_timecards(raw)
    expected = expected_timesheets(cfg, cfg.first_date, cfg.anchor_date)
    assert len(conformed) == expected["lines"] == 12 - len(deleted_in_source)
    assert round(conformed["total_hours"].sum(), 3) == expected["total_hours"]
    assert conformed["entry_id"].is_unique
    projects = conform_job_orders(read_table(warehouse, JOB_ORDERS_TABLE))
    assert len(projects) == expected_projects(cfg)
    assert set(conformed["project_id"]) <= set(projects["project_id"])
    assert set(projects["status"]) <= {"planned", "active", "completed", "cancelled", "unknown"}

    # A deletion is a change like any other: fetched, kept and marked, not conformed.
    victim = next(g for g in store.timecards if g not in deleted_in_source and g != "broken-card")
    store.delete_timecard(victim)
    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance, resource=fast)
    assert detail_calls(server) == [victim]
    raw = read_table(warehouse, TIMECARDS_TABLE).set_index("record_key")
    assert bool(raw.loc[victim, "is_deleted"]) is True
    assert victim not in set(conform_timecards(raw.reset_index())["entry_id"])

    # Full refresh on demand: every detail again, still one row per GUID.
    server.sandbox.stats.reset()
    refreshed = run_raw(
        server,
        warehouse,
        instance,
        resource=fast,
        run_config=full_refresh_config("raw__aimsio__timecards"),
    )
    assert list_calls(server) == 1 and len(detail_calls(server)) == 13
    assert materialization_metadata(refreshed, TIMECARDS_KEY)["full_refresh"] is True
    assert len(read_table(warehouse, TIMECARDS_TABLE)) == 13

    # Job orders are incremental the same way.
    changed_jobs = store.mutate_job_orders(2)
    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance, resource=fast, assets=[JOB_ORDERS_ASSET])
    assert list_calls(server, JOB_ORDERS) == 1
    assert sorted(detail_calls(server, JOB_ORDERS)) == sorted(changed_jobs)
    assert stored_versions(warehouse, JOB_ORDERS_TABLE) == store.job_order_updated
    jobs = read_table(warehouse, JOB_ORDERS_TABLE).set_index("record_key")
    assert len(jobs) == cfg.projects
    assert all(jobs.loc[g, "name"].endswith("(revised)") for g in changed_jobs)


def test_conformed_assets_hold_the_expected_window(serve_app, warehouse, instance):
    cfg = config(14, projects=3, days=7)
    server, _ = start(serve_app, cfg)
    fast = unthrottled(server)
    first, last = date(2026, 3, 27), date(2026, 3, 30)
    assets = [
        TIMECARDS_ASSET,
        JOB_ORDERS_ASSET,
        conformed.build_conformed_projects([PLUGIN]),
        conformed.build_conformed_timesheets([PLUGIN]),
    ]
    run_raw(server, warehouse, instance, resource=fast, assets=[TIMECARDS_ASSET, JOB_ORDERS_ASSET])
    materialize(
        assets,
        {"aimsio": fast},
        warehouse,
        first=first,
        last=last,
        instance=instance,
        selection=[conformed.PROJECTS_KEY, conformed.TIMESHEETS_KEY],
    )
    timesheets = read_table(warehouse, "conformed.timesheets")
    expected = expected_timesheets(cfg, first, last)
    assert len(timesheets) == expected["lines"]
    assert round(timesheets["total_hours"].sum(), 3) == expected["total_hours"]
    assert set(timesheets["source_system"]) == {"aimsio"}
    assert len(read_table(warehouse, "conformed.projects")) == expected_projects(cfg)
