"""The Blikk plugin as the code location loads it."""

from __future__ import annotations

import importlib.util

import dagster as dg
import pytest

from timesheet_assets.vendors.blikk import PLUGIN
from timesheet_assets.vendors.blikk.assets import PROJECTS_KEY, TIME_REPORTS_KEY
from timesheet_assets.vendors.blikk.resource import DEFAULT_BASE_URL, BlikkResource


def test_plugin_definitions_load_with_assets_checks_and_resource(monkeypatch):
    monkeypatch.delenv("BLIKK_BASE_URL", raising=False)
    definitions = PLUGIN.definitions()
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {TIME_REPORTS_KEY, PROJECTS_KEY}
    time_reports = graph.get(TIME_REPORTS_KEY)
    assert time_reports.partitions_def is not None
    assert time_reports.backfill_policy == dg.BackfillPolicy.single_run()
    assert time_reports.group_name == "blikk"
    assert graph.get(PROJECTS_KEY).partitions_def is None
    checks = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    assert checks == {
        (asset, name)
        for asset in (TIME_REPORTS_KEY, PROJECTS_KEY)
        for name in ("no_quarantined_records", "list_read_complete")
    } | {(TIME_REPORTS_KEY, "reported_hours_match_blikk")}
    assert PLUGIN.timesheets[0] == TIME_REPORTS_KEY and PLUGIN.projects[0] == PROJECTS_KEY
    assert PLUGIN.timesheets_daily_partitioned


def test_assets_and_the_reconciliation_check_share_the_blikk_pool():
    definitions = PLUGIN.definitions()
    for asset in definitions.assets:
        assert asset.op.pool == "blikk"
    assert [check.op.pool for check in definitions.asset_checks] == ["blikk"]


def test_base_url_defaults_to_production_and_follows_the_environment(monkeypatch):
    monkeypatch.delenv("BLIKK_BASE_URL", raising=False)
    assert BlikkResource.from_env().base_url == DEFAULT_BASE_URL == "https://publicapi.blikk.com/"
    monkeypatch.setenv("BLIKK_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("BLIKK_APP_ID", "id-1234")
    monkeypatch.setenv("BLIKK_APP_SECRET", "secret-1234")
    with dg.build_resources({"blikk": BlikkResource.from_env()}) as built:
        assert built.blikk.base_url == "http://127.0.0.1:9999"
        assert built.blikk.app_secret == "secret-1234"


@pytest.mark.skipif(
    importlib.util.find_spec("timesheet_assets.conformed.definitions") is None,
    reason="the conformed module is not there yet",
)
def test_code_location_builds_with_blikk_only(monkeypatch):
    from timesheet_assets.definitions import build_definitions

    monkeypatch.setenv("TIMESHEET_VENDORS", "blikk")
    dg.Definitions.validate_loadable(build_definitions(("blikk",)))
