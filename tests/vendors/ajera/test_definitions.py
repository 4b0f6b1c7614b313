"""The Ajera plugin in the code location, its defaults, and the request pace it keeps."""

from __future__ import annotations

import dagster as dg

from timesheet_assets.definitions import build_definitions
from timesheet_assets.ingest import DATE_WINDOW_BACKFILL, daily_partitions
from timesheet_assets.sandbox.framework import RateRule
from timesheet_assets.vendors.ajera import PLUGIN
from timesheet_assets.vendors.ajera.assets import PROJECTS_KEY, TIMESHEETS_KEY, ajera_projects, ajera_timesheets
from timesheet_assets.vendors.ajera.conform import conform_projects, conform_timesheets
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.ajera.sandbox import ajera_state, day_cells

from .conftest import resource_for, small_config


def test_plugin_feeds_both_conformed_tables_from_daily_timesheets():
    assert PLUGIN.name == "ajera"
    assert PLUGIN.timesheets == (dg.AssetKey(["raw", "ajera", "timesheets"]), conform_timesheets)
    assert PLUGIN.projects == (dg.AssetKey(["raw", "ajera", "projects"]), conform_projects)
    assert PLUGIN.timesheets_daily_partitioned is True


def test_code_location_with_only_ajera_loads(monkeypatch):
    monkeypatch.setenv("TIMESHEET_VENDORS", "ajera")
    defs = build_definitions(("ajera",))
    dg.Definitions.validate_loadable(defs)
    dg.Definitions.validate_loadable(PLUGIN.definitions())
    graph = defs.resolve_asset_graph()
    assert {TIMESHEETS_KEY, PROJECTS_KEY} <= set(graph.get_all_asset_keys())
    resource = PLUGIN.definitions().resources["ajera"]
    assert isinstance(resource, AjeraResource)


def test_raw_assets_follow_the_conventions():
    for asset in (ajera_timesheets, ajera_projects):
        assert asset.group_names_by_key[asset.key] == "ajera"
        assert asset.op.pool == "ajera"
        assert asset.specs_by_key[asset.key].kinds == {"python", "duckdb"}
        assert asset.specs_by_key[asset.key].owners == ["team:data-platform"]
        assert asset.op.retry_policy is not None
    assert ajera_timesheets.partitions_def == daily_partitions()
    assert ajera_timesheets.backfill_policy == DATE_WINDOW_BACKFILL
    assert ajera_timesheets.specs_by_key[TIMESHEETS_KEY].metadata["partition_expr"] == "work_date"
    assert ajera_projects.partitions_def is None


def test_defaults_keep_a_conservative_pace_and_batch_widely(ajera_server):
    resource = AjeraResource(base_url="https://example.invalid/AjeraAPI.ashx", api_id="x", username="u", password="p")
    assert (resource.effective_rate, resource.effective_in_flight) == (5.0, 2)
    assert (resource.timesheet_batch_size, resource.project_batch_size, resource.api_version) == (50, 50, 2)

    # Against a sandbox that refuses more than 2 calls in flight or a 6th call within a second
    # (one call of slack for arrival jitter at exactly 5/s), the default pace is never refused.
    config = small_config(time_records=40)
    server = ajera_server(config, rate_rule=RateRule(max_requests=6, window_seconds=1.0, max_in_flight=2))
    paced = resource_for(server, requests_per_second=None, timesheet_batch_size=5)
    try:
        fetch = paced.fetch_timesheets(config.first_date, config.anchor_date)
    finally:
        paced.close()
    assert fetch.get_calls == 8
    stats = server.sandbox.stats
    assert stats.count() == 11
    assert stats.violations == 0 and stats.by_status == {200: 11}
    assert stats.peak_in_flight <= 2
    assert len(fetch.details) == len(ajera_state(server).dataset.timesheets)
    assert day_cells(ajera_state(server).dataset, config.first_date, config.anchor_date)
