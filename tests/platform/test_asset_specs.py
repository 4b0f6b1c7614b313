"""Every asset of the code location as users and Dagster see it — key, group, owners, kinds,
pool, partitions, upstream assets, checks, automation, freshness and the code it links to —
compared with the checked-in snapshot ``tests/platform/asset_specs.json``.

A change to any of these is a change users see (docs/contracts.md): make it on purpose, then
regenerate the snapshot and review its diff with the code's:

    UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/platform/test_asset_specs.py
"""

import ast
import json
import os
from pathlib import Path

import dagster as dg
import pytest

from timesheet_assets.definitions import build_definitions
from timesheet_assets.settings import VENDOR_NAMES

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("asset_specs.json")


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions(VENDOR_NAMES)


def partitions(node) -> dict | None:
    definition = node.partitions_def
    if definition is None:
        return None
    described = {"type": type(definition).__name__}
    if isinstance(definition, dg.TimeWindowPartitionsDefinition):
        described.update(
            cron_schedule=definition.cron_schedule,
            start=definition.start.isoformat(),
            timezone=definition.timezone,
            fmt=definition.fmt,
            end_offset=definition.end_offset,
        )
    return described


def code_reference(node) -> dict:
    (reference,) = node.metadata["dagster/code_references"].code_references
    return {"file": str(Path(reference.file_path).relative_to(ROOT)), "line": reference.line_number}


def describe(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    checks: dict[dg.AssetKey, list[str]] = {}
    for check in graph.asset_check_keys:
        checks.setdefault(check.asset_key, []).append(check.name)
    described = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        freshness = node.freshness_policy
        described[key.to_user_string()] = {
            "group": node.group_name,
            "owners": list(node.owners),
            "kinds": sorted(node.kinds),
            "pools": sorted(node.pools or ()),
            "partitions": partitions(node),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(checks.get(key, [])),
            "automation_condition": None if node.automation_condition is None else node.automation_condition.name,
            "freshness": None
            if freshness is None
            else {
                "warn_window_seconds": freshness.warn_window.to_timedelta().total_seconds(),
                "fail_window_seconds": freshness.fail_window.to_timedelta().total_seconds(),
            },
            # The line moves with every edit above it; the file is what the snapshot pins,
            # and test_every_asset_links_to_the_function_that_computes_it checks the line.
            "code": code_reference(node)["file"],
        }
    return described


def test_asset_specs_match_the_snapshot(defs):
    current = describe(defs)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), (
        "asset specs changed: if on purpose, regenerate with UPDATE_SNAPSHOTS=1 (see this module's docstring)"
    )


def test_every_asset_links_to_the_function_that_computes_it(defs):
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        reference = code_reference(node)
        source = (ROOT / reference["file"]).read_text()
        functions = [f for f in ast.walk(ast.parse(source)) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)]
        # Dagster points at where the compute function starts: its first decorator.
        at_line = [f for f in functions if min([f.lineno, *(d.lineno for d in f.decorator_list)]) == reference["line"]]
        assert at_line, f"{key.to_user_string()}: {reference} is not a function definition"
        assert any(
            isinstance(d, ast.Call) and getattr(d.func, "attr", getattr(d.func, "id", "")) in ("asset", "multi_asset")
            for d in at_line[0].decorator_list
        ), f"{key.to_user_string()}: {reference} is not an asset's function"
