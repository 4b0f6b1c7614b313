"""Raw iBuildApp assets: ``raw/ibuildapp/time_entries`` (daily partitions on the start day)
and ``raw/ibuildapp/projects`` (full refresh).

Time entries have no updated-at filter (``ts/search`` filters by start time only), so an
approval or payment that lands after a day was loaded is picked up by re-reading that day:
the schedule re-materializes a trailing lookback window, and each run replaces its days.
"""

import json
from datetime import date
from typing import Any, Callable, Iterable, Iterator, Mapping

import dagster as dg

from ...ingest import (
    DATE_WINDOW_BACKFILL,
    HTTP_RETRY_POLICY,
    QUARANTINE_CHECK,  # noqa: F401 - re-exported: the check's name next to the assets
    RawSpec,
    build_raw_frame,
    daily_partitions,
    partition_window,
    permanent_errors_fail_fast,
    quarantine_check_result,
    quarantine_check_spec,
    raw_output,
)
from .models import Client, Project, Task, TimeEntry, User, epoch_to_utc, lenient
from .resource import IBuildAppResource, SearchResult, resource_from_env

VENDOR = "ibuildapp"
TIME_ENTRIES_KEY = dg.AssetKey(["raw", VENDOR, "time_entries"])
PROJECTS_KEY = dg.AssetKey(["raw", VENDOR, "projects"])

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
    # The users/tasks/projects side-table objects this entry joined, as served.
    "related_payload": "string",
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


def _record_id(record: Mapping[str, Any]) -> Any:
    return record.get("id")


def _task_ids(value: Any) -> list[str]:
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    return [str(item) for item in items if item is not None and not isinstance(item, (dict, list))]


def time_entry_spec(
    resource: IBuildAppResource, related: Mapping[str, Mapping[str, Mapping[str, Any]]], first: date, last: date
) -> RawSpec[TimeEntry]:
    users = related.get("users", {})
    tasks = related.get("tasks", {})
    projects = related.get("projects", {})

    def to_rows(entry: TimeEntry) -> Iterable[Mapping[str, Any]]:
        user_raw = users.get(entry.user_id)
        task_raw = tasks.get(entry.task_id) if entry.task_id else None
        user = lenient(User, user_raw)
        task = lenient(Task, task_raw)
        project_id = task.project if task and task.project else None
        if project_id is None and entry.model_extra and entry.model_extra.get("project_id") is not None:
            project_id = str(entry.model_extra["project_id"])
        project_raw = projects.get(project_id) if project_id else None
        project = lenient(Project, project_raw)
        related_payload = {"user": user_raw, "task": task_raw, "project": project_raw}
        yield {
            "record_key": entry.id,
            "work_date": resource.work_date(entry.start_time),
            "user_id": entry.user_id,
            "employee_name": user.display_name if isinstance(user, User) else None,
            "task_id": entry.task_id,
            "task_name": task.name if task else None,
            "project_id": project_id,
            "project_name": project.name if project else None,
            "client_id": project.client_id if project else None,
            "start_time": entry.start_time,
            "end_time": entry.end_time,
            "duration_seconds": entry.duration,
            "breaks": entry.breaks,
            "comments": entry.comments,
            "status": entry.status,
            "payment_status": entry.payment_status,
            "approve_date": entry.approve_date,
            "updated_at": entry.updated,
            "related_payload": json.dumps(related_payload, separators=(",", ":"), default=str),
        }

    def date_of(record: Mapping[str, Any]) -> date | None:
        day = _start_day(resource, record)
        return day if day is not None and first <= day <= last else None

    return RawSpec(
        model=TimeEntry,
        columns=TIME_ENTRY_COLUMNS,
        to_rows=to_rows,
        key_of=_record_id,
        date_column="work_date",
        date_of=date_of,
    )


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

    return RawSpec(model=Project, columns=PROJECT_COLUMNS, to_rows=to_rows, key_of=_record_id)


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


def _search_metadata(result: SearchResult, logins: int) -> dict[str, Any]:
    return {
        "search_pages": result.pages,
        "vendor_count": result.reported_count if result.reported_count is not None else -1,
        "duplicates_dropped": result.duplicates_dropped,
        "logins": logins,
    }


COMMON: dict[str, Any] = dict(
    group_name=VENDOR,
    pool=VENDOR,
    kinds={"python", "duckdb"},
    owners=["team:data-platform"],
    retry_policy=HTTP_RETRY_POLICY,
)


@dg.asset(
    key=TIME_ENTRIES_KEY,
    description=(
        "iBuildApp time entries (ts/search) by UTC day of start_time, with user, task and "
        "project names joined from the same calls. Re-read a trailing window to pick up "
        "late approvals: entries have no updated-at."
    ),
    partitions_def=daily_partitions(),
    backfill_policy=DATE_WINDOW_BACKFILL,
    metadata={"partition_expr": "work_date"},
    check_specs=[quarantine_check_spec(TIME_ENTRIES_KEY)],
    **COMMON,
)
def time_entries(
    context: dg.AssetExecutionContext, ibuildapp: IBuildAppResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    first, last = partition_window(context)
    before, logins_before = ibuildapp.metrics.snapshot(), ibuildapp.logins
    with permanent_errors_fail_fast():
        result = ibuildapp.search_time_entries(first, last)
    inside, outside = split_by_window(ibuildapp, result.records, first, last)
    raw = build_raw_frame(time_entry_spec(ibuildapp, result.related, first, last), inside, default_date=first)
    delta = ibuildapp.metrics.snapshot() - before
    context.log.info(
        f"iBuildApp ts/search {first}..{last}: {raw.records_served} entries in {result.pages} "
        f"page(s), {raw.quarantined} quarantined, {outside} outside the window"
    )
    yield raw_output(
        raw,
        delta,
        window_first=first.isoformat(),
        window_last=last.isoformat(),
        outside_window_dropped=outside,
        **_search_metadata(result, ibuildapp.logins - logins_before),
    )
    yield quarantine_check_result(TIME_ENTRIES_KEY, raw)


@dg.asset(
    key=PROJECTS_KEY,
    description="iBuildApp projects (project/search, full refresh) with client and task names.",
    check_specs=[quarantine_check_spec(PROJECTS_KEY)],
    **COMMON,
)
def projects(
    context: dg.AssetExecutionContext, ibuildapp: IBuildAppResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    before, logins_before = ibuildapp.metrics.snapshot(), ibuildapp.logins
    with permanent_errors_fail_fast():
        result = ibuildapp.search_projects()
    raw = build_raw_frame(project_spec(result.related), result.records)
    delta = ibuildapp.metrics.snapshot() - before
    context.log.info(
        f"iBuildApp project/search: {raw.records_served} projects in {result.pages} page(s), "
        f"{raw.quarantined} quarantined"
    )
    yield raw_output(raw, delta, **_search_metadata(result, ibuildapp.logins - logins_before))
    yield quarantine_check_result(PROJECTS_KEY, raw)


ASSETS = (time_entries, projects)


def definitions(resource_factory: Callable[[], IBuildAppResource] = resource_from_env) -> dg.Definitions:
    return dg.Definitions(assets=list(ASSETS), resources={VENDOR: resource_factory()})
