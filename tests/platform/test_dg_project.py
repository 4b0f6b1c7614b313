"""The repository is a ``dg`` project: ``dg check defs`` loads the code location and
``dg list defs`` shows exactly what the Definitions object holds; each vendor folder's
``definitions.py`` builds its resource from the documented environment variables."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.support.vendor_variables import VENDOR_VARIABLES
from timesheet_assets import definitions as top_level
from timesheet_assets.location import CODE_LOCATION, DEFINITIONS_ATTRIBUTE, DEFINITIONS_MODULE
from timesheet_assets.vendors.aims360.definitions import aims360_resource
from timesheet_assets.vendors.aims360.resource import Aims360Resource
from timesheet_assets.vendors.aimsio.definitions import aimsio_resource
from timesheet_assets.vendors.aimsio.resource import AimsioResource
from timesheet_assets.vendors.ajera.definitions import ajera_resource
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.blikk.definitions import blikk_resource
from timesheet_assets.vendors.blikk.resource import BlikkResource
from timesheet_assets.vendors.ibuildapp.definitions import ibuildapp_resource
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource

ROOT = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).parent / "dg"


def run_dg(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home), "VIRTUAL_ENV": str(Path(sys.executable).parents[1])}
    return subprocess.run([str(DG), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("dagster_home")
    checked = run_dg("check", "defs", home=home)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    result = run_dg("list", "defs", "--json", home=home)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_the_project_config_names_one_code_location_everywhere():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["tool"]["dg"]["project"]
    assert pyproject["tool"]["dg"]["directory_type"] == "project"
    assert project["root_module"] == "timesheet_assets"
    assert project["code_location_target_module"] == DEFINITIONS_MODULE
    names = {project["code_location_name"], pyproject["tool"]["dagster"]["code_location_name"], CODE_LOCATION}
    for workspace in (ROOT / "workspace.yaml", ROOT / "deploy" / "workspace.yaml"):
        for entry in yaml.safe_load(workspace.read_text())["load_from"]:
            origin = entry.get("python_module") or entry.get("grpc_server")
            names.add(origin["location_name"])
    assert names == {"timesheet_assets"}


def test_the_module_exposes_lazy_definitions():
    defs = getattr(top_level, DEFINITIONS_ATTRIBUTE)
    # Built when Dagster loads them, not on import: a ``@dg.definitions`` function.
    assert not isinstance(defs, dg.Definitions)
    assert isinstance(defs(), dg.Definitions)


def test_dg_lists_what_the_definitions_hold(listed):
    defs = top_level.build_definitions()
    graph = defs.resolve_asset_graph()
    assert {a["asset_key"] for a in listed["assets"]} == {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {(c["asset_key"], c["name"]) for c in listed["asset_checks"]} == {
        (k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys
    }
    assert {j["name"] for j in listed["jobs"]} == {j.name for j in defs.jobs}
    assert {s["name"] for s in listed["schedules"]} == {s.name for s in defs.schedules}
    assert {s["name"] for s in listed["sensors"]} == {s.name for s in defs.sensors}
    assert {r["name"] for r in listed["resources"]} == set(defs.resources)
    # The UI's link to each asset's code: the compute function's file and line.
    for asset in listed["assets"]:
        references = graph.get(dg.AssetKey.from_user_string(asset["asset_key"])).metadata["dagster/code_references"]
        (reference,) = references.code_references
        assert asset["source"] == f"{Path(reference.file_path).relative_to(ROOT)}:{reference.line_number}"


ENVIRONMENTS = {
    "nothing set": {},
    "everything set": {
        name: "https://example.test/" if name.endswith("BASE_URL") else "x" for name in VENDOR_VARIABLES
    },
    "blank counts as unset": {"AIMSIO_BASE_URL": " ", "AIMS360_ACCESS_TOKEN": "", "IBUILDAPP_TOKEN": "  "},
}


def field_values(resource: dg.ConfigurableResource) -> dict:
    return {name: getattr(resource, name) for name in type(resource).model_fields}


@pytest.mark.parametrize("environ", ENVIRONMENTS.values(), ids=ENVIRONMENTS.keys())
@pytest.mark.parametrize(
    "build, cls",
    [
        (aimsio_resource, AimsioResource),
        (ajera_resource, AjeraResource),
        (aims360_resource, Aims360Resource),
        (blikk_resource, BlikkResource),
        (ibuildapp_resource, IBuildAppResource),
    ],
    ids=lambda value: getattr(value, "vendor_label", None) or "",
)
def test_each_vendor_folder_builds_its_resource_from_the_documented_variables(build, cls, environ):
    """What a vendor's ``definitions.py`` spells out is what the resource class declares
    (``env_required``/``env_optional``, which the sandboxes' ``from_values`` use too)."""
    built = build(environ)
    expected = cls(**cls.env_settings(environ))
    assert field_values(built) == field_values(expected)
    env_vars = {value.env_var_name for value in field_values(built).values() if isinstance(value, dg.EnvVar)}
    declared = {**cls.env_required, **cls.env_optional}.values()
    assert env_vars == {name for name in declared if name in cls.env_required.values() or environ.get(name, "").strip()}
