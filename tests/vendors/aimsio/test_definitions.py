"""The Aimsio plugin loads into the code location with the names users rely on."""

from __future__ import annotations

import dagster as dg

from timesheet_assets.vendors.aimsio import PLUGIN
from timesheet_assets.vendors.aimsio.conform import conform_job_orders, conform_timecards
from timesheet_assets.vendors.aimsio.resource import PORTAL_URL, AimsioResource

TIMECARDS = dg.AssetKey(["raw", "aimsio", "timecards"])
JOB_ORDERS = dg.AssetKey(["raw", "aimsio", "job_orders"])


def test_plugin_wiring():
    assert PLUGIN.name == "aimsio"
    assert PLUGIN.timesheets == (TIMECARDS, conform_timecards)
    assert PLUGIN.projects == (JOB_ORDERS, conform_job_orders)
    assert PLUGIN.timesheets_daily_partitioned is False


def test_definitions_are_loadable_with_the_asset_conventions():
    defs = PLUGIN.definitions()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert set(graph.get_all_asset_keys()) == {TIMECARDS, JOB_ORDERS}
    for assets_def in defs.assets:
        assert assets_def.op.pool == "aimsio"
    for key in (TIMECARDS, JOB_ORDERS):
        node = graph.get(key)
        assert node.group_name == "aimsio"
        assert node.metadata["primary_key"] == "record_key"
        assert node.partitions_def is None
        assert node.owners == ["team:data-platform"]
        assert {"python", "duckdb"} <= set(node.kinds)


def test_the_code_location_builds_with_only_aimsio_enabled():
    from timesheet_assets.definitions import build_definitions

    defs = build_definitions(("aimsio",))
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw/aimsio/timecards", "raw/aimsio/job_orders", "conformed/timesheets"} <= keys


def test_base_url_defaults_to_the_portal_unless_set(monkeypatch):
    monkeypatch.delenv("AIMSIO_BASE_URL", raising=False)
    assert AimsioResource.from_env().base_url == PORTAL_URL
    monkeypatch.setenv("AIMSIO_BASE_URL", "https://sandbox.aimsio.com/")
    monkeypatch.setenv("AIMSIO_USERNAME", "someone")
    monkeypatch.setenv("AIMSIO_PASSWORD", "something-secret")
    resource = AimsioResource.from_env()
    with dg.build_resources({"aimsio": resource}) as built:
        assert built.aimsio.base_url == "https://sandbox.aimsio.com/"
        assert built.aimsio.username == "someone"
