"""The vendor's contribution to the code location: plugin, assets, sensor, resource."""

from __future__ import annotations

import dagster as dg
import pytest

from timesheet_assets.definitions import build_definitions
from timesheet_assets.vendors.aims360 import PLUGIN
from timesheet_assets.vendors.aims360 import sandbox as aims_sandbox
from timesheet_assets.vendors.aims360.resource import Aims360ConfigError, Aims360Resource


@pytest.fixture
def env(monkeypatch):
    for name in list(aims_sandbox.sandbox_env("http://127.0.0.1:1")):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AIMS360_ACCESS_TOKEN", raising=False)
    return monkeypatch


def test_plugin_builds_loadable_definitions(env):
    assert (PLUGIN.name, PLUGIN.timesheets, PLUGIN.projects) == ("aims360", None, None)
    defs = PLUGIN.definitions()
    dg.Definitions.validate_loadable(defs)
    (asset,) = defs.assets
    spec = next(iter(asset.specs))
    assert spec.key == dg.AssetKey(["raw", "aims360", "orders_open_orders"])
    assert (spec.group_name, asset.op.pool, spec.partitions_def) == ("aims360", "aims360", None)
    assert set(spec.kinds) == {"python", "duckdb"}
    assert spec.owners == ["team:data-platform"]
    assert isinstance(defs.resources["aims360"], Aims360Resource)
    assert [s.name for s in defs.sensors] == ["aims360_export_sensor"]


def test_code_location_loads_with_only_aims360(env):
    for name, value in aims_sandbox.sandbox_env("http://127.0.0.1:8903").items():
        env.setenv(name, value)
    env.setenv("AIMS360_VIEWS", "Orders/Open Orders;Styles/All Styles")
    defs = build_definitions(("aims360",))
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for a in defs.assets for k in a.keys}
    assert {"raw/aims360/orders_open_orders", "raw/aims360/styles_all_styles"} <= keys


def test_malformed_views_setting_fails_at_load_naming_the_variable(env):
    env.setenv("AIMS360_VIEWS", "Orders Open Orders")
    with pytest.raises(Aims360ConfigError, match="AIMS360_VIEWS entry 1"):
        PLUGIN.definitions()
