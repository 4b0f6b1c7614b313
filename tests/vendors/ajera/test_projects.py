"""raw/ajera/projects: ListProjects pages, GetProjects batches, conformed mapping."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.vendors.ajera.assets import ajera_projects
from timesheet_assets.vendors.ajera.conform import conform_projects, project_status
from timesheet_assets.vendors.ajera.sandbox import ajera_state, expected_projects

from .conftest import resource_for, small_config


def test_projects_are_paged_batched_and_conformed(ajera_server, warehouse, instance):
    config = small_config(projects=23)
    server = ajera_server(config)
    state = ajera_state(server)
    resource = resource_for(server, page_size=10, project_batch_size=10)
    result = materialize([ajera_projects], {"ajera": resource}, warehouse, instance=instance)

    assert state.calls("ListProjects") == 3  # pages of 10, 10 and 3
    assert state.calls("GetProjects") == math.ceil(23 / 10)
    assert server.sandbox.stats.count() == 3 + 3 + 2
    raw = read_table(warehouse, "ajera.projects")
    assert len(raw) == expected_projects(config) == 23
    assert raw["quarantine_reason"].isna().all()
    meta = materialization_metadata(result, ["raw", "ajera", "projects"])
    assert (meta["rows"], meta["list_pages"], meta["get_projects_calls"], meta["projects_missing_detail"]) == (23, 3, 3, 0)

    conformed = conform_projects(raw).set_index("project_id")
    source = {p["ProjectKey"]: p for p in state.dataset.projects}
    assert set(conformed.index) == {str(k) for k in source}
    first = source[100]
    row = conformed.loc["100"]
    assert (row["source_system"], row["project_code"], row["name"]) == ("ajera", first["ID"], first["Description"])
    assert (row.customer_id, row.customer_name) == ("500", first["Client"]["Description"])
    assert row.manager_name == first["ProjectManager"]["Name"]
    assert row.start_date == date.fromisoformat(first["ActualStartDate"])
    assert row.source_updated_at == pd.Timestamp(first["LastModifiedDate"], tz="UTC")
    by_status = {p["Status"] for p in source.values()}
    assert {"Active", "Inactive", "Preliminary"} <= by_status
    for key, project in source.items():
        expected = {"Active": "active", "Inactive": "completed", "Preliminary": "planned", "Hold": "unknown"}
        assert conformed.loc[str(key), "status"] == expected[project["Status"]]


def test_listed_project_missing_from_get_projects_keeps_its_list_record(ajera_server, warehouse, instance):
    server = ajera_server(small_config(projects=4))
    state = ajera_state(server)
    missing = state.dataset.projects[2]
    state.hidden_projects.add(missing["ProjectKey"])
    result = materialize([ajera_projects], {"ajera": resource_for(server)}, warehouse, instance=instance)
    raw = read_table(warehouse, "ajera.projects").set_index("record_key")
    assert len(raw) == 4 and raw["quarantine_reason"].isna().all()
    kept = raw.loc[str(missing["ProjectKey"])]
    assert (kept.project_number, kept.description, kept.status) == (missing["ID"], missing["Description"], missing["Status"])
    assert pd.isna(kept.client_name)  # the list record has no client
    assert materialization_metadata(result, ["raw", "ajera", "projects"])["projects_missing_detail"] == 1


def test_project_status_mapping_is_case_and_space_tolerant():
    statuses = pd.Series(["Active", " inactive", "PRELIMINARY", "Hold", "Complete", "Cancelled", None, "Whatever"])
    assert list(project_status(statuses)) == [
        "active", "completed", "planned", "unknown", "completed", "cancelled", "unknown", "unknown",
    ]
