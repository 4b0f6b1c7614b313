"""``raw/ajera/projects``: every project, every run (``ListProjects`` pages, then
``GetProjects`` in batches). A full list each run also shows deletions; ``LastModifiedDate`` is
kept as ``last_modified_at`` (see docs/vendors/ajera.md for why the modified-date filter is not
used to read fewer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...ingest import RawSpec
from ...ingest.records import KEY_COLUMN
from .models import Project
from .records import lenient_key, project_keys
from .resource import AjeraResource

PROJECT_COLUMNS: Mapping[str, str] = {
    "project_key": "Int64",
    "project_number": "string",
    "description": "string",
    "status": "string",
    "client_key": "string",
    "client_name": "string",
    "project_manager": "string",
    "start_date": "date",
    "end_date": "date",
    "last_modified_at": "datetime64[ns, UTC]",
}

PROJECT_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    KEY_COLUMN: "ProjectKey.",
    "project_key": "ProjectKey.",
    "project_number": "ID: the project number as shown in Ajera.",
    "description": "Description: the project's name.",
    "status": "The project's Status as Ajera sends it.",
    "client_key": "ClientKey of the project's client (else of its first invoice group's client).",
    "client_name": "The client's name.",
    "project_manager": "The project manager's name.",
    "start_date": "ActualStartDate, else EstimatedStartDate.",
    "end_date": "ActualCompletionDate, else EstimatedCompletionDate.",
    "last_modified_at": "LastModifiedDate (UTC).",
}


def _project_row(project: Project) -> list[dict[str, Any]]:
    return [
        {
            KEY_COLUMN: str(project.project_key),
            "project_key": project.project_key,
            "project_number": project.id,
            "description": project.description,
            "status": project.status,
            "client_key": project.customer_id,
            "client_name": project.customer_name,
            "project_manager": project.manager_name,
            "start_date": project.start_date,
            "end_date": project.end_date,
            "last_modified_at": project.updated_at,
        }
    ]


PROJECT_SPEC: RawSpec[Project] = RawSpec(
    model=Project,
    columns=PROJECT_COLUMNS,
    to_rows=_project_row,
    key_of=lambda record: record.get("ProjectKey", record.get("Project Key")),
    descriptions=PROJECT_COLUMN_DESCRIPTIONS,
)


def fetch_project_records(ajera: AjeraResource) -> tuple[list[Any], dict[str, int]]:
    """Every project's ``GetProjects`` record; a listed project the detail call does not return
    lands with its list record (fewer fields) rather than not at all."""
    listed, pages = ajera.list_projects()
    wanted = project_keys(listed)
    batches = ajera.get_projects(wanted)
    details: dict[int, Any] = {}
    for batch in batches:
        for record in batch:
            key = lenient_key(PROJECT_SPEC.key_of(record)) if isinstance(record, Mapping) else None
            if key is not None:
                details[key] = record
    records: list[Any] = []
    missing = 0
    for record in listed:
        key = lenient_key(PROJECT_SPEC.key_of(record)) if isinstance(record, Mapping) else None
        if key is not None and key in details:
            records.append(details[key])
        else:
            missing += key is not None
            records.append(record)
    stats = {
        "records_listed": len(listed),
        "list_requests": pages,
        "detail_requests": len(batches),
        "projects_missing_detail": missing,
    }
    return records, stats
