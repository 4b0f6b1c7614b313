"""Asset wiring, quarantine, the conform mapping and the benchmark contract."""

from __future__ import annotations

import importlib.util
import json
import math
from datetime import UTC
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tests.support.benchmark_rows import BENCHMARK_ROW_KEYS
from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from tests.vendors.ibuildapp.conftest import resource_for, small_config
from timesheet_assets.vendors.ibuildapp import PLUGIN
from timesheet_assets.vendors.ibuildapp.assets import ASSETS, PROJECTS_KEY, QUARANTINE_CHECK, TIME_ENTRIES_KEY
from timesheet_assets.vendors.ibuildapp.conform import conform_projects, conform_timesheets, entry_status
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource
from timesheet_assets.vendors.ibuildapp.sandbox import state_of

REPO = Path(__file__).resolve().parents[3]


def test_plugin_and_definitions(monkeypatch):
    for name, value in {
        "IBUILDAPP_BASE_URL": "https://timesheets.example.test",
        "IBUILDAPP_APP_CODE": "acme",
        "IBUILDAPP_EMAIL": "a@example.test",
        "IBUILDAPP_PASSWORD": "pw-123456",
    }.items():
        monkeypatch.setenv(name, value)
    assert PLUGIN.name == "ibuildapp" and PLUGIN.timesheets_daily_partitioned
    assert PLUGIN.timesheets[0] == TIME_ENTRIES_KEY == dg.AssetKey(["raw", "ibuildapp", "time_entries"])
    assert PLUGIN.projects[0] == PROJECTS_KEY == dg.AssetKey(["raw", "ibuildapp", "projects"])
    defs = PLUGIN.definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for key in (TIME_ENTRIES_KEY, PROJECTS_KEY):
        node = graph.get(key)
        assert node.group_name == "ibuildapp"
        assert node.pools == {"ibuildapp"}
        assert node.owners == ["team:data-platform"]
        assert {"python", "duckdb"} <= set(node.kinds)
    entries = graph.get(TIME_ENTRIES_KEY)
    assert isinstance(entries.partitions_def, dg.DailyPartitionsDefinition)
    assert entries.backfill_policy == dg.BackfillPolicy.single_run()
    assert entries.metadata["partition_expr"] == "work_date"
    assert graph.get(PROJECTS_KEY).partitions_def is None
    resource = defs.resources["ibuildapp"]
    assert isinstance(resource, IBuildAppResource)
    assert IBuildAppResource.default_requests_per_second == 5.0 and IBuildAppResource.default_max_in_flight == 2
    assert resource.login_path == "/api/{app_code}/login"


def test_code_location_builds_with_this_vendor(monkeypatch):
    if importlib.util.find_spec("timesheet_assets.conformed.definitions") is None:
        pytest.skip("the conformed module is not in this checkout yet")
    monkeypatch.setenv("TIMESHEET_VENDORS", "ibuildapp")
    from timesheet_assets.definitions import build_definitions

    defs = build_definitions(("ibuildapp",))
    keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    assert {TIME_ENTRIES_KEY, PROJECTS_KEY} <= keys


def test_plain_http_is_refused_off_loopback():
    resource = IBuildAppResource(base_url="http://timesheets.example.test", app_code="acme", token="tok-abcdef")
    with pytest.raises(ValueError, match="only https"):
        resource.open_client()


def test_unknown_timezone_is_refused():
    with pytest.raises(Exception, match="unknown timezone 'Mars/Olympus'"):
        IBuildAppResource(
            base_url="https://timesheets.example.test", app_code="acme", token="tok-abcdef", timezone="Mars/Olympus"
        )


def test_invalid_records_are_quarantined_not_dropped(start_sandbox, warehouse, instance):
    config = small_config(time_records=60)
    server = start_sandbox(config)
    entries = state_of(server.app).entries
    entries[5]["duration"] = "n/a"
    del entries[6]["user_id"]
    result = materialize(
        list(ASSETS),
        {"ibuildapp": resource_for(server)},
        warehouse,
        first=config.first_date,
        last=config.anchor_date,
        instance=instance,
    )
    raw = read_table(warehouse, "ibuildapp.time_entries").set_index("record_key")
    assert len(raw) == 60
    assert "duration" in raw.loc["5", "quarantine_reason"]
    assert "user_id" in raw.loc["6", "quarantine_reason"]
    assert raw["quarantine_reason"].notna().sum() == 2
    assert '"duration":"n/a"' in raw.loc["5", "payload"]
    assert config.first_date <= raw.loc["5", "work_date"].date() <= config.anchor_date
    metadata = materialization_metadata(result, ["raw", "ibuildapp", "time_entries"])
    assert metadata["quarantined_in_run"] == 2 and metadata["records_served"] == 60 and metadata["rows_in_run"] == 60
    checks = {(c.asset_key, c.check_name): c for c in result.get_asset_check_evaluations()}
    assert checks[(TIME_ENTRIES_KEY, QUARANTINE_CHECK)].passed is False
    assert checks[(TIME_ENTRIES_KEY, QUARANTINE_CHECK)].severity == dg.AssetCheckSeverity.WARN
    assert checks[(PROJECTS_KEY, QUARANTINE_CHECK)].passed is True
    conformed = conform_timesheets(raw.reset_index())
    assert len(conformed) == 58 and not {"5", "6"} & set(conformed["entry_id"])


def test_status_mapping():
    """The approval status alone: ``payment_status`` (the client invoice) never makes ``paid``;
    in-progress is ``submitted`` once the entry has ended and ``draft`` while it runs."""
    end = pd.Timestamp("2025-03-10 17:00", tz="UTC")
    status = pd.Series(["approved", "rejected", "in-progress", "in-progress", "approved", "done", None, " APPROVED"])
    end_time = pd.Series([end, end, end, pd.NaT, end, end, end, pd.NaT])
    assert entry_status(status, end_time).tolist() == [
        "approved",
        "rejected",
        "submitted",
        "draft",
        "approved",
        "unknown",
        "unknown",
        "approved",
    ]


def test_paid_invoice_keeps_the_approval_status_and_the_invoice_state_stays_raw():
    start = pd.Timestamp("2025-03-10 08:00", tz="UTC")
    raw = pd.DataFrame(
        {
            "record_key": ["1", "2"],
            "work_date": [start.date()] * 2,
            "user_id": ["1"] * 2,
            "start_time": [start] * 2,
            "end_time": [start + pd.Timedelta(hours=2)] * 2,
            "duration_seconds": [7200.0] * 2,
            "status": ["approved", "in-progress"],
            "payment_status": ["payed", "payed"],
            "quarantine_reason": [None] * 2,
            "ingested_at": [pd.Timestamp.now(tz="UTC")] * 2,
        }
    )
    assert conform_timesheets(raw)["status"].tolist() == ["approved", "submitted"]
    assert raw["payment_status"].tolist() == ["payed", "payed"]


def test_hours_fall_back_to_the_span_without_duration():
    start = pd.Timestamp("2025-03-10 08:00", tz="UTC")
    raw = pd.DataFrame(
        {
            "record_key": ["1", "2", "3"],
            "work_date": [start.date()] * 3,
            "user_id": ["1"] * 3,
            "start_time": [start] * 3,
            "end_time": [start + pd.Timedelta(hours=2), start + pd.Timedelta(hours=2), pd.NaT],
            "duration_seconds": [5400.0, None, None],
            "status": ["approved"] * 3,
            "payment_status": ["pending"] * 3,
            "quarantine_reason": [None] * 3,
            "ingested_at": [pd.Timestamp.now(tz="UTC")] * 3,
        }
    )
    assert conform_timesheets(raw)["total_hours"].tolist() == [1.5, 2.0, 0.0]


def test_project_mapping_and_empty_frames():
    raw = pd.DataFrame(
        {
            "record_key": ["1", "2", "3", "4", "5"],
            "name": list("abcde"),
            "status": ["new", "in-progress", "done", "cancelled", "archived"],
            "client_id": ["9"] * 5,
            "client_name": ["Bank West"] * 5,
            "planned_start_date": [pd.Timestamp("2025-01-01", tz="UTC")] * 5,
            "actual_start_date": [pd.NaT, pd.Timestamp("2025-01-03", tz="UTC"), pd.NaT, pd.NaT, pd.NaT],
            "planned_end_date": [pd.NaT] * 5,
            "actual_end_date": [pd.NaT] * 5,
            "quarantine_reason": [None] * 5,
            "ingested_at": [pd.Timestamp.now(tz="UTC")] * 5,
        }
    )
    projects = conform_projects(raw)
    assert projects["status"].tolist() == ["planned", "active", "completed", "cancelled", "unknown"]
    assert [str(d) for d in projects["start_date"]] == [
        "2025-01-01",
        "2025-01-03",
        "2025-01-01",
        "2025-01-01",
        "2025-01-01",
    ]
    assert projects["end_date"].isna().all()
    assert conform_timesheets(pd.DataFrame()).empty and conform_projects(pd.DataFrame()).empty


def test_benchmark_contract():
    spec = importlib.util.spec_from_file_location(
        "vendor_ibuildapp_benchmark", REPO / "benchmarks" / "vendor_ibuildapp.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.run_benchmark(120)
    assert [r["scenario"] for r in rows] == ["full", "no_change", "changed_1pct_lookback_reread"]
    for row in rows:
        assert set(row) == BENCHMARK_ROW_KEYS
        assert row["vendor"] == "ibuildapp"
        assert row["requests"] == 1 + math.ceil(120 / 500) + 1 == module.expected_requests(120)
        assert row["records"] == 120 + 12
        assert row["documented_limit_rps"] is None and row["utilisation_pct"] is None
        assert row["rate_violations"] == 0


def test_raw_to_conformed_end_to_end(start_sandbox, warehouse, instance):
    if importlib.util.find_spec("timesheet_assets.conformed.assets") is None:
        pytest.skip("the conformed module is not in this checkout yet")
    from timesheet_assets.conformed.assets import build_conformed_projects, build_conformed_timesheets
    from timesheet_assets.vendors.ibuildapp.sandbox import expected_projects, expected_timesheets

    config = small_config(time_records=300, days=10)
    server = start_sandbox(config)
    first, last = config.first_date, config.anchor_date
    result = materialize(
        [*ASSETS, build_conformed_timesheets([PLUGIN]), build_conformed_projects([PLUGIN])],
        {"ibuildapp": resource_for(server)},
        warehouse,
        first=first,
        last=last,
        instance=instance,
    )
    timesheets = read_table(warehouse, "conformed.timesheets")
    expected = expected_timesheets(config, first, last)
    assert len(timesheets) == expected["lines"] == 300
    assert timesheets["total_hours"].sum() == pytest.approx(expected["total_hours"])
    assert set(timesheets["source_system"]) == {"ibuildapp"}
    assert len(read_table(warehouse, "conformed.projects")) == expected_projects(config)
    failed = [
        (c.asset_key.to_user_string(), c.check_name) for c in result.get_asset_check_evaluations() if not c.passed
    ]
    assert failed == []


def test_side_table_rows_are_one_per_day_and_served_object():
    """Two valid entries of one user on one day give one user row; a quarantined entry adds
    nothing; an id the side table did not serve and a missing id give no row."""
    from datetime import date, datetime

    import pandas as pd

    from timesheet_assets.vendors.ibuildapp.assets import side_table_frame

    day1, day2 = date(2025, 3, 1), date(2025, 3, 2)
    entries = pd.DataFrame(
        {
            "work_date": [day1, day1, day2, day2],
            "user_id": ["7", "7", "7", "9"],
            "task_id": ["3", "3", None, "404"],
            "project_id": ["1", "1", None, "1"],
            "quarantine_reason": [None, None, None, "duration: too long"],
        }
    )
    related = {
        "users": {"7": {"id": 7, "first_name": "Ann", "department": "Field Ops"}, "9": {"id": 9}},
        "tasks": {"3": {"id": 3, "name": "Framing"}},
        "projects": {"1": {"id": 1, "name": "Depot"}},
    }
    frame = side_table_frame(entries, related, datetime(2025, 3, 3, tzinfo=UTC))
    rows = list(zip(frame["work_date"], frame["side_table"], frame["object_id"]))
    assert rows == [(day1, "projects", "1"), (day1, "tasks", "3"), (day1, "users", "7"), (day2, "users", "7")]
    assert frame["record_key"].tolist() == ["projects:1", "tasks:3", "users:7", "users:7"]
    assert json.loads(frame["payload"].iloc[2]) == related["users"]["7"]
    assert frame["ingested_at"].notna().all()
