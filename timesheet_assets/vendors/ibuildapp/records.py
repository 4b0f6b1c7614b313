"""iBuildApp records → raw rows, one record at a time: the raw tables' columns, the side-table
join, the reference path of ``raw/ibuildapp/time_entries`` (``time_entry_spec``; a run uses the
page-by-page path in ``entries.py``, which gives the same frame) and ``raw/ibuildapp/projects``
(``project_spec``), and each entry's start day in the resource's timezone."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from ...ingest import RawSpec
from .models import Client, Project, Task, TimeEntry, User, epoch_to_utc, lenient
from .resource import IBuildAppResource

TIME_ENTRY_COLUMNS: Mapping[str, str] = {
    "work_date": "date",
    "user_id": "string",
    "employee_name": "string",
    "task_id": "string",
    "task_name": "string",
    "project_id": "string",
    "project_name": "string",
    "client_id": "string",
    "start_time": "datetime64[ns, UTC]",
    "end_time": "datetime64[ns, UTC]",
    "duration_seconds": "Float64",
    "breaks": "Int64",
    "comments": "Int64",
    "status": "string",
    "payment_status": "string",
    "approve_date": "datetime64[ns, UTC]",
    "updated_at": "datetime64[ns, UTC]",
}

PROJECT_COLUMNS: Mapping[str, str] = {
    "name": "string",
    "description": "string",
    "category": "string",
    "status": "string",
    "client_id": "string",
    "client_name": "string",
    "duration_unit": "string",
    "planned_start_date": "datetime64[ns, UTC]",
    "actual_start_date": "datetime64[ns, UTC]",
    "planned_end_date": "datetime64[ns, UTC]",
    "actual_end_date": "datetime64[ns, UTC]",
    "estimated_duration": "Float64",
    "actual_duration": "Float64",
    "task_count": "Int64",
    "task_names": "string",
    "updated_at": "datetime64[ns, UTC]",
    "related_payload": "string",
}

TIME_ENTRY_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    "record_key": "The entry's id.",
    "work_date": "The day of start_time in IBUILDAPP_TIMEZONE (UTC when unset): the partition key.",
    "user_id": "user_id: who the time belongs to.",
    "employee_name": "The user's name from the search's users side table.",
    "task_id": "task_id: the task the time is booked on.",
    "task_name": "The task's name from the tasks side table.",
    "project_id": "The task's project (else the entry's own project_id, when it sends one).",
    "project_name": "The project's name from the projects side table.",
    "client_id": "The project's client_id.",
    "start_time": "start_time (epoch seconds) as a UTC timestamp.",
    "end_time": "end_time as a UTC timestamp; empty while the timer runs.",
    "duration_seconds": "duration: seconds worked.",
    "breaks": "breaks: how many breaks the entry has (not their length).",
    "comments": "comments: how many comments the entry has.",
    "status": "status as iBuildApp sends it (approval state).",
    "payment_status": "payment_status as iBuildApp sends it.",
    "approve_date": "approve_date as a UTC timestamp, once approved.",
    "updated_at": "updated as a UTC timestamp: the last change at iBuildApp.",
}

PROJECT_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    "record_key": "The project's id.",
    "name": "name.",
    "description": "description.",
    "category": "category.",
    "status": "status as iBuildApp sends it.",
    "client_id": "client_id.",
    "client_name": "The client's name from the search's clients side table.",
    "duration_unit": "duration_unit: the unit of estimated_duration and actual_duration.",
    "planned_start_date": "planned_start_date (UTC).",
    "actual_start_date": "actual_start_date (UTC).",
    "planned_end_date": "planned_end_date (UTC).",
    "actual_end_date": "actual_end_date (UTC).",
    "estimated_duration": "estimated_duration, in duration_unit.",
    "actual_duration": "actual_duration, in duration_unit.",
    "task_count": "How many tasks the project lists.",
    "task_names": "The names of those tasks, from the tasks side table, joined with '; '.",
    "updated_at": "updated (UTC): the last change at iBuildApp.",
    "related_payload": "The client and task objects the project's row was joined with, as served (JSON text).",
}


def _record_id(record: Mapping[str, Any]) -> Any:
    return record.get("id")


def _task_ids(value: Any) -> list[str]:
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    return [str(item) for item in items if item is not None and not isinstance(item, (dict, list))]


# The columns an entry takes from the side tables (``_joined``); the others it has by itself.
JOINED_COLUMNS = ("employee_name", "task_name", "project_id", "project_name", "client_id")
RECORD_COLUMNS: Mapping[str, str] = {
    name: dtype for name, dtype in TIME_ENTRY_COLUMNS.items() if name not in JOINED_COLUMNS
}
# The entry's own ``project_id`` (an undocumented extra some accounts send), used by the join
# when its task names no project; dropped once the join is done.
ENTRY_PROJECT = "_entry_project_id"


def _entry_project_id(entry: TimeEntry) -> str | None:
    extra = entry.model_extra
    return str(extra["project_id"]) if extra and extra.get("project_id") is not None else None


def _entry_fields(resource: IBuildAppResource, entry: TimeEntry) -> dict[str, Any]:
    """The columns one entry gives by itself (everything but the side-table join)."""
    return {
        "record_key": entry.id,
        "work_date": resource.work_date(entry.start_time),
        "user_id": entry.user_id,
        "task_id": entry.task_id,
        "start_time": entry.start_time,
        "end_time": entry.end_time,
        "duration_seconds": entry.duration,
        "breaks": entry.breaks,
        "comments": entry.comments,
        "status": entry.status,
        "payment_status": entry.payment_status,
        "approve_date": entry.approve_date,
        "updated_at": entry.updated,
    }


def _joined(
    related: Mapping[str, Mapping[str, Mapping[str, Any]]],
    user_id: str | None,
    task_id: str | None,
    entry_project_id: str | None,
) -> dict[str, Any]:
    """The columns an entry takes from the ``users``/``tasks``/``projects`` side tables: the
    names and the project (the task's, else the entry's own ``project_id``). The objects
    themselves are kept once per day by ``side_table_frame``."""
    user_raw = related.get("users", {}).get(user_id) if user_id is not None else None
    task_raw = related.get("tasks", {}).get(task_id) if task_id else None
    user = lenient(User, user_raw)
    task = lenient(Task, task_raw)
    project_id = task.project if task and task.project else None
    if project_id is None:
        project_id = entry_project_id
    project_raw = related.get("projects", {}).get(project_id) if project_id else None
    project = lenient(Project, project_raw)
    return {
        "employee_name": user.display_name if isinstance(user, User) else None,
        "task_name": task.name if task else None,
        "project_id": project_id,
        "project_name": project.name if project else None,
        "client_id": project.client_id if project else None,
    }


def time_entry_spec(
    resource: IBuildAppResource, related: Mapping[str, Mapping[str, Mapping[str, Any]]], first: date, last: date
) -> RawSpec[TimeEntry]:
    """Entries → raw rows one record at a time, side tables joined per row (the reference
    path; a run uses ``load_time_entries``, which gives the same frame page by page)."""

    def to_rows(entry: TimeEntry) -> Iterable[Mapping[str, Any]]:
        row = _entry_fields(resource, entry)
        row.update(_joined(related, entry.user_id, entry.task_id, _entry_project_id(entry)))
        yield row

    return RawSpec(
        model=TimeEntry,
        columns=TIME_ENTRY_COLUMNS,
        to_rows=to_rows,
        key_of=_record_id,
        date_column="work_date",
        date_of=_window_day(resource, first, last),
        descriptions=TIME_ENTRY_COLUMN_DESCRIPTIONS,
    )


def _window_day(resource: IBuildAppResource, first: date, last: date) -> Callable[[Mapping[str, Any]], date | None]:
    def date_of(record: Mapping[str, Any]) -> date | None:
        day = _start_day(resource, record)
        return day if day is not None and first <= day <= last else None

    return date_of


def project_spec(related: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> RawSpec[Project]:
    tasks = related.get("tasks", {})
    clients = related.get("clients", {})

    def to_rows(project: Project) -> Iterable[Mapping[str, Any]]:
        client_raw = clients.get(project.client_id) if project.client_id else None
        client = lenient(Client, client_raw)
        task_ids = _task_ids(project.tasks)
        task_models = [lenient(Task, tasks.get(t)) for t in task_ids]
        names = [t.name for t in task_models if t is not None and t.name]
        yield {
            "record_key": project.id,
            "name": project.name,
            "description": project.description,
            "category": project.category,
            "status": project.status,
            "client_id": project.client_id,
            "client_name": client.name if client else None,
            "duration_unit": project.duration_unit,
            "planned_start_date": project.planned_start_date,
            "actual_start_date": project.actual_start_date,
            "planned_end_date": project.planned_end_date,
            "actual_end_date": project.actual_end_date,
            "estimated_duration": project.estimated_duration,
            "actual_duration": project.actual_duration,
            "task_count": len(task_ids),
            "task_names": "; ".join(names) if names else None,
            "updated_at": project.updated,
            "related_payload": json.dumps(
                {"client": client_raw, "tasks": {t: tasks.get(t) for t in task_ids}},
                separators=(",", ":"),
                default=str,
            ),
        }

    return RawSpec(
        model=Project,
        columns=PROJECT_COLUMNS,
        to_rows=to_rows,
        key_of=_record_id,
        descriptions=PROJECT_COLUMN_DESCRIPTIONS,
    )


def _start_day(resource: IBuildAppResource, record: Any) -> date | None:
    if not isinstance(record, Mapping):
        return None
    try:
        start = epoch_to_utc(record.get("start_time"))
    except ValueError:
        return None
    return resource.work_date(start) if start is not None else None


def split_by_window(
    resource: IBuildAppResource, records: Iterable[Any], first: date, last: date
) -> tuple[list[Any], int]:
    """Entries whose start day is inside the window (unreadable ones too: they are
    quarantined on ``first``), and how many started outside it."""
    inside: list[Any] = []
    outside = 0
    for record in records:
        day = _start_day(resource, record)
        if day is not None and not first <= day <= last:
            outside += 1
            continue
        inside.append(record)
    return inside, outside
