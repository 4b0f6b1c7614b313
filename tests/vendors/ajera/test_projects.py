"""raw/ajera/projects: ListProjects pages, GetProjects batches, conformed mapping."""

from __future__ import annotations

import json
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
    assert (meta["rows"], meta["list_requests"], meta["detail_requests"], meta["projects_missing_detail"]) == (
        23,
        3,
        3,
        0,
    )

    conformed = conform_projects(raw).set_index("project_id")
    source = {p["ProjectKey"]: p for p in state.dataset.projects}
    assert set(conformed.index) == {str(k) for k in source}
    first = source[100]
    row = conformed.loc["100"]
    assert (row["source_system"], row["project_code"], row["name"]) == ("ajera", first["ID"], first["Description"])
    # API version 2 answers the client on the flat InvoiceGroups list, linked by ProjectKey.
    client = first["InvoiceGroups"][0]["Client"]
    assert (row.customer_id, row.customer_name) == ("500", client["Description"])
    manager = first["ProjectManager"]
    assert row.manager_name == f"{manager['FirstName']} {manager['LastName']}"
    assert row.start_date == date.fromisoformat(first["ActualStartDate"])
    # "2025-… 12:15:00.000 GMT+00:00 (Coordinated Universal Time)", as Ajera writes it.
    assert row.source_updated_at == pd.Timestamp(first["LastModifiedDate"][:19], tz="UTC")
    payload = json.loads(raw.set_index("record_key").loc["100", "payload"])
    assert payload["InvoiceGroups"][0]["ClientKey"] == 500 and payload["InvoiceGroups"][0]["ProjectKey"] == 100
    by_status = {p["Status"] for p in source.values()}
    assert len(by_status) >= 4
    for key, project in source.items():
        assert conformed.loc[str(key), "status"] == EXPECTED_STATUS[project["Status"]]


EXPECTED_STATUS = {
    "Preliminary": "planned",
    "Marketing": "planned",
    "Active": "active",
    "Hold": "active",
    "WorkHold": "active",
    "BillingHold": "active",
    "Closed": "completed",
}


def test_every_documented_project_status_has_a_conformed_status():
    """The ``FilterByStatus`` values of ListProjects (Deltek's project page), each mapped."""
    documented = ["Preliminary", "Active", "Hold", "WorkHold", "BillingHold", "Closed", "Marketing"]
    assert list(project_status(pd.Series(documented))) == [EXPECTED_STATUS[s] for s in documented]
    assert set(EXPECTED_STATUS) == set(documented)


def test_version_1_nested_projects_read_the_same(ajera_server, warehouse, instance):
    """A session of API version 1 gets each project with its invoice groups (and their client)
    nested: the same client, manager and dates land."""
    config = small_config(projects=5)
    server = ajera_server(config)
    state = ajera_state(server)
    for version in (1, 2):
        materialize(
            [ajera_projects], {"ajera": resource_for(server, api_version=version)}, warehouse, instance=instance
        )
        raw = read_table(warehouse, "ajera.projects").set_index("record_key")
        for project in state.dataset.projects:
            row = raw.loc[str(project["ProjectKey"])]
            client = project["InvoiceGroups"][0]["Client"]
            assert (row.client_key, row.client_name) == (str(client["ClientKey"]), client["Description"])
            assert (
                row.project_manager
                == f"{project['ProjectManager']['FirstName']} {project['ProjectManager']['LastName']}"
            )
            assert row.status == project["Status"]


def test_listed_project_missing_from_get_projects_keeps_its_list_record(ajera_server, warehouse, instance):
    server = ajera_server(small_config(projects=4))
    state = ajera_state(server)
    missing = state.dataset.projects[2]
    state.hidden_projects.add(missing["ProjectKey"])
    result = materialize([ajera_projects], {"ajera": resource_for(server)}, warehouse, instance=instance)
    raw = read_table(warehouse, "ajera.projects").set_index("record_key")
    assert len(raw) == 4 and raw["quarantine_reason"].isna().all()
    kept = raw.loc[str(missing["ProjectKey"])]
    assert (kept.project_number, kept.description, kept.status) == (
        missing["ID"],
        missing["Description"],
        missing["Status"],
    )
    assert pd.isna(kept.client_name)  # the list record has no client
    assert materialization_metadata(result, ["raw", "ajera", "projects"])["projects_missing_detail"] == 1


def test_project_status_mapping_is_case_and_space_tolerant():
    statuses = pd.Series(
        ["Active", " inactive", "PRELIMINARY", "Work Hold", "billing_hold", "Cancelled", None, "Whatever"]
    )
    assert list(project_status(statuses)) == [
        "active",
        "completed",
        "planned",
        "active",
        "active",
        "cancelled",
        "unknown",
        "unknown",
    ]
