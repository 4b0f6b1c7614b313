"""How every vendor resource reads the docs/contracts.md environment variables (``VendorResource``)."""

import dagster as dg
import pytest

from tests.support.vendor_variables import VENDOR_VARIABLES
from timesheet_assets.vendors.aims360.resource import Aims360Resource
from timesheet_assets.vendors.aimsio.resource import AimsioResource
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.blikk.resource import BlikkResource
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource

RESOURCES = (AimsioResource, AjeraResource, Aims360Resource, BlikkResource, IBuildAppResource)


@pytest.mark.parametrize("cls", RESOURCES, ids=lambda c: c.vendor_label)
def test_required_variables_always_and_optional_ones_only_when_set(cls):
    unset = cls.env_settings({})
    assert set(unset) == set(cls.env_required)
    everything = {name: "x" for name in {**cls.env_required, **cls.env_optional}.values()}
    full = cls.env_settings(everything)
    assert set(full) == set(cls.env_required) | set(cls.env_optional)
    # Read at run time, never stored in the definitions.
    assert all(isinstance(value, dg.EnvVar) for value in full.values())
    assert {v.env_var_name for v in full.values()} == set(everything)
    # Blank counts as unset.
    assert set(cls.env_settings({name: "  " for name in everything})) == set(cls.env_required)


def test_every_design_variable_is_declared():
    declared = {name for cls in RESOURCES for name in {**cls.env_required, **cls.env_optional}.values()}
    assert declared == set(VENDOR_VARIABLES)


def test_from_values_builds_the_resource_from_a_variable_mapping():
    resource = BlikkResource.from_values(
        {"BLIKK_BASE_URL": "http://127.0.0.1:9/", "BLIKK_APP_ID": "id", "BLIKK_APP_SECRET": "s"},
        requests_per_second=1.0,
    )
    assert (resource.base_url, resource.app_id, resource.app_secret) == ("http://127.0.0.1:9/", "id", "s")
    assert resource.requests_per_second == 1.0
