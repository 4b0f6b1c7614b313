"""Raw Ajera assets: ``raw/ajera/timesheets`` (daily partitions on work date) and
``raw/ajera/projects`` (full refresh).

Timesheets are weeks, the warehouse is daily. Every run lists the weeks that touch its window
(``ListTimesheets`` from six days before the first day), fetches their details in batches and
explodes each ``Project``/``Overhead`` detail line into one row per day, keeping the days inside
the window. A raw row is one day of one line; its payload is that line as served plus the week
and list fields it was read with. Daily partitions (not weekly) because the conformed model and
every other vendor are daily: a run replaces exactly its days, and a window starting mid-week is
handled by the six-day lookback instead of by widening the partition.

A timesheet is validated as a whole: if its list record, its detail or any of its lines is
invalid, all of its lines are quarantined with the reason, so a week never lands half-counted.
``build_raw_frame`` validates record by record and stores one payload per record; a week needs
per-line payloads and one verdict for all its lines, so the timesheet frame is built here from
the same shared pieces (``typed_frame``, ``quarantine_reason``, ``RawFrame``).
"""


import json
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator, Mapping

import dagster as dg
import pandas as pd
from pydantic import ValidationError

from ...ingest import (
    DATE_WINDOW_BACKFILL,
    RawFrame,
    RawSpec,
    build_raw_frame,
    daily_partitions,
    partition_window,
    permanent_errors_fail_fast,
    raw_asset_defaults,
    quarantine_check_result,
    quarantine_check_spec,
    quarantine_reason,
    raw_output,
)
from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN, typed_frame
from .models import (
    DETAIL_FIELDS_DOCUMENTED,
    LIST_FIELDS_DOCUMENTED,
    LIST_FIELDS_KEPT,
    SECTION_FIELDS_DOCUMENTED,
    DayCell,
    OverheadLineRecord,
    Project,
    ProjectLineRecord,
    TimesheetDetail,
    TimesheetLine,
    TimesheetListRecord,
)
from .resource import AjeraResource, TimesheetFetch, lenient_date, lenient_key, project_keys

VENDOR = "ajera"
TIMESHEETS_KEY = dg.AssetKey(["raw", VENDOR, "timesheets"])
PROJECTS_KEY = dg.AssetKey(["raw", VENDOR, "projects"])
TOTALS_CHECK = "timesheet_totals_reconcile"
SECTIONS = {"Project": "P", "Overhead": "O"}

TIMESHEET_COLUMNS: Mapping[str, str] = {
    "timesheet_key": "Int64",
    "section": "string",
    "line_key": "Int64",
    "work_date": "date",
    "day_number": "Int64",
    "timesheet_date": "date",
    "employee_key": "Int64",
    "employee_name": "string",
    "company_key": "Int64",
    "project_key": "Int64",
    "phase_key": "Int64",
    "activity_key": "Int64",
    "employee_type_key": "Int64",
    "project_description": "string",
    "phase_description": "string",
    "activity": "string",
    "overhead_group": "string",
    "regular_hours": "float64",
    "overtime_hours": "float64",
    "notes": "string",
    "overtime_notes": "string",
    "submitted": "boolean",
    "supervisor_approved": "boolean",
    "accounting_approved": "boolean",
    "project_manager_approved": "boolean",
    "rejected": "boolean",
    "paid": "boolean",
}

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


# -- timesheets: week → day-rows --------------------------------------------------------------
def day_row_key(timesheet_key: int, section: str, line_key: int, work_date: date) -> str:
    """``{Timesheet Key}:{P|O}{line key}:{work date}``, e.g. ``147:P2:2012-09-11``: the line
    key is ``Timesheet Project Key`` for project lines and ``Timesheet Overhead Group Detail
    Key`` for overhead lines (the keys UpdateTimesheets addresses them by)."""
    return f"{timesheet_key}:{SECTIONS[section]}{line_key}:{work_date.isoformat()}"


def _undocumented(record: Mapping[str, Any], documented: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in documented}


def line_records(listed: Mapping[str, Any], detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per detail line: the line as served, the week it belongs to and the list
    fields used downstream. A section that is not the documented shape becomes one record
    holding it, which then fails validation with a precise reason.

    Fields the documentation does not know are never dropped: unknown list-record fields stay
    in ``Timesheet``, unknown fields of the GetTimesheets record in ``TimesheetExtra`` and of
    the line's section in ``SectionExtra`` (both only present when there are any)."""
    header = {k: v for k, v in listed.items() if k in LIST_FIELDS_KEPT or k not in LIST_FIELDS_DOCUMENTED}
    detail_extra = _undocumented(detail, DETAIL_FIELDS_DOCUMENTED)
    records: list[dict[str, Any]] = []
    for section in SECTIONS:
        part = detail.get(section)
        if part is None:
            continue
        lines = part.get("Detail") if isinstance(part, Mapping) else part
        if lines is None:
            continue
        # GetTimesheets dates the week; the list record's date stands in when the detail omits it.
        week = detail.get("TimesheetDate") or listed.get("Timesheet Date")
        base: dict[str, Any] = {"Timesheet": header, "TimesheetDate": week, "Section": section}
        if detail_extra:
            base["TimesheetExtra"] = detail_extra
        section_extra = _undocumented(part, SECTION_FIELDS_DOCUMENTED) if isinstance(part, Mapping) else {}
        if section_extra:
            base["SectionExtra"] = section_extra
        if isinstance(lines, list):
            records.extend({**base, "Detail": line} for line in lines)
        else:
            records.append({**base, "Detail": lines})
    return records


def _clamp(day: date | None, first: date, last: date) -> date:
    if day is None:
        return first
    return min(max(day, first), last)


def _day_row(line: ProjectLineRecord | OverheadLineRecord, cell: DayCell, work_date: date) -> dict[str, Any]:
    ts = line.timesheet
    row: dict[str, Any] = {
        KEY_COLUMN: day_row_key(ts.timesheet_key, line.section, line.line_key, work_date),
        "timesheet_key": ts.timesheet_key,
        "section": line.section.lower(),
        "line_key": line.line_key,
        "work_date": work_date,
        "day_number": cell.day_number,
        "timesheet_date": line.timesheet_date,
        "employee_key": ts.employee_key,
        "employee_name": ts.employee_name,
        "company_key": ts.company_key,
        "regular_hours": cell.regular,
        "overtime_hours": cell.overtime,
        "notes": cell.notes,
        "overtime_notes": cell.overtime_notes,
        "submitted": ts.submitted,
        "supervisor_approved": ts.supervisor_approved,
        "accounting_approved": ts.accounting_approved,
        "project_manager_approved": ts.project_manager_approved,
        "rejected": ts.rejected,
        "paid": ts.paid,
    }
    if isinstance(line, ProjectLineRecord):
        d = line.detail
        row.update(
            project_key=d.project_key,
            phase_key=d.phase_key,
            activity_key=d.activity_key,
            employee_type_key=d.employee_type_key,
            project_description=d.project_description,
            phase_description=d.phase_description,
            activity=d.activity,
        )
    else:
        row["overhead_group"] = line.detail.group_detail
    return row


class TimesheetRejected(ValueError):
    """A timesheet that cannot land as a whole (the reason names the part that failed)."""


def _validated_lines(
    listed: Any, detail: Mapping[str, Any] | None, records: list[dict[str, Any]]
) -> tuple[TimesheetListRecord, list[ProjectLineRecord | OverheadLineRecord]]:
    def validated(label: str, validate: Callable[[], Any]) -> Any:
        try:
            return validate()
        except ValidationError as exc:
            raise TimesheetRejected(f"{label}: {quarantine_reason(exc)}") from None

    if not isinstance(listed, Mapping):
        raise TimesheetRejected("ListTimesheets record is not a JSON object")
    list_record = validated("ListTimesheets record", lambda: TimesheetListRecord.model_validate(listed))
    if detail is None:
        raise TimesheetRejected("listed by ListTimesheets but not returned by GetTimesheets")
    validated("GetTimesheets record", lambda: TimesheetDetail.model_validate(detail))
    lines = [validated("GetTimesheets line", lambda r=r: TimesheetLine.model_validate(r).root) for r in records]
    seen: set[tuple[str, int]] = set()
    for line in lines:
        if (line.section, line.line_key) in seen:
            raise TimesheetRejected(f"GetTimesheets line: {line.section} line key {line.line_key} appears twice")
        seen.add((line.section, line.line_key))
    return list_record, lines


def _quarantine_rows(
    position: int, listed: Any, detail: Any, records: list[dict[str, Any]], reason: str, first: date, last: date
) -> list[dict[str, Any]]:
    listed_map = listed if isinstance(listed, Mapping) else {}
    ts_key = lenient_key(listed_map.get("Timesheet Key"))
    key_text = str(ts_key) if ts_key is not None else f"unkeyed:{position}"
    when = _clamp(
        lenient_date(
            detail.get("TimesheetDate") if isinstance(detail, Mapping) else None,
            listed_map.get("Timesheet Date"),
        ),
        first,
        last,
    )
    payloads: list[tuple[str, Any]] = []
    for index, record in enumerate(records):
        line = record.get("Detail")
        line_map = line if isinstance(line, Mapping) else {}
        field = "Timesheet Project Key" if record["Section"] == "Project" else "Timesheet Overhead Group Detail Key"
        line_key = line_map.get(field)
        key = f"{key_text}:{SECTIONS[record['Section']]}{line_key if line_key not in (None, '') else ''}"
        if line_key in (None, "") or any(key == taken for taken, _ in payloads):
            key += f"#{index}"  # a missing or repeated line key must not collide with another row
        payloads.append((key, record))
    if not payloads:
        payloads.append((key_text, {"Timesheet": listed, "Detail": detail}))
    return [
        {
            KEY_COLUMN: key,
            "timesheet_key": ts_key,
            "work_date": when,
            PAYLOAD_COLUMN: json.dumps(payload, separators=(",", ":"), default=str),
            QUARANTINE_COLUMN: reason,
        }
        for key, payload in payloads
    ]


def build_timesheet_frame(
    fetch: TimesheetFetch, *, ingested_at: datetime | None = None
) -> tuple[RawFrame, dict[str, Any]]:
    """The raw day-rows of one window, plus the totals reconciliation (list ``Timesheet
    Total`` against the sum of every day cell of the week)."""
    first, last = fetch.first, fetch.last
    rows: list[dict[str, Any]] = []
    quarantined = 0
    checked = 0
    mismatched: list[int] = []
    for position, listed in enumerate(fetch.listed):
        key = lenient_key(listed.get("Timesheet Key")) if isinstance(listed, Mapping) else None
        detail = fetch.details.get(key) if key is not None else None
        records = line_records(listed, detail) if isinstance(detail, Mapping) else []
        try:
            list_record, lines = _validated_lines(listed, detail, records)
        except TimesheetRejected as exc:
            quarantined += 1
            rows.extend(_quarantine_rows(position, listed, detail, records, str(exc), first, last))
            continue
        if list_record.timesheet_total is not None:
            checked += 1
            week_hours = sum(line.detail.week_hours() for line in lines)
            if abs(week_hours - list_record.timesheet_total) > 0.005:
                mismatched.append(list_record.timesheet_key)
        for line, record in zip(lines, records):
            payload = json.dumps(record, separators=(",", ":"), default=str)
            for cell in line.detail.days():
                work_date = line.work_date(cell)
                if cell.is_empty or not first <= work_date <= last:
                    continue
                row = _day_row(line, cell, work_date)
                row[PAYLOAD_COLUMN] = payload
                row[QUARANTINE_COLUMN] = None
                rows.append(row)
    frame = typed_frame(rows, TIMESHEET_COLUMNS)
    stamp = pd.Timestamp(ingested_at or datetime.now(timezone.utc))
    frame[INGESTED_COLUMN] = pd.Series([stamp] * len(frame), index=frame.index, dtype="datetime64[ns, UTC]")
    reconciliation = {"timesheets_checked": checked, "mismatched": mismatched}
    return RawFrame(frame=frame, records_served=len(fetch.listed), quarantined=quarantined), reconciliation


# -- projects ------------------------------------------------------------------------------------
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
        "projects_listed": len(listed),
        "list_pages": pages,
        "get_projects_calls": len(batches),
        "projects_missing_detail": missing,
    }
    return records, stats


# -- asset definitions ---------------------------------------------------------------------------
COMMON = raw_asset_defaults(VENDOR)


@dg.asset(
    key=TIMESHEETS_KEY,
    description="Ajera timesheet day-rows: one row per timesheet detail line (project or "
    "overhead) and work date, exploded from the weekly D1..D7 cells; payload = the line as "
    "served. Daily partitions on work_date; a range backfill is one run.",
    partitions_def=daily_partitions(),
    backfill_policy=DATE_WINDOW_BACKFILL,
    metadata={"partition_expr": "work_date"},
    check_specs=[
        dg.AssetCheckSpec(
            TOTALS_CHECK,
            asset=TIMESHEETS_KEY,
            description="Each fetched week's 'Timesheet Total' (ListTimesheets) equals the sum of "
            "its day cells (GetTimesheets).",
        ),
        quarantine_check_spec(TIMESHEETS_KEY),
    ],
    **COMMON,
)
def ajera_timesheets(context: dg.AssetExecutionContext, ajera: AjeraResource) -> Iterator[Any]:
    first, last = partition_window(context)
    before = ajera.metrics.snapshot()
    with permanent_errors_fail_fast():
        fetch = ajera.fetch_timesheets(first, last)
    raw, reconciliation = build_timesheet_frame(fetch)
    delta = ajera.metrics.snapshot() - before
    if raw.quarantined:
        context.log.warning(f"Ajera: {raw.quarantined} timesheet(s) quarantined in {first}..{last}")
    yield raw_output(
        raw,
        delta,
        window=f"{first.isoformat()}..{last.isoformat()}",
        timesheets_listed=len(fetch.listed),
        list_timesheets_calls=fetch.list_calls,
        get_timesheets_calls=fetch.get_calls,
        unrequested_details=fetch.unrequested_details,
        listed_outside_window=fetch.outside_window,
    )
    mismatched = reconciliation["mismatched"]
    yield dg.AssetCheckResult(
        check_name=TOTALS_CHECK,
        asset_key=TIMESHEETS_KEY,
        passed=not mismatched,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "timesheets_checked": reconciliation["timesheets_checked"],
            "mismatched": len(mismatched),
            "mismatched_keys": ", ".join(str(k) for k in mismatched[:20]) or "none",
        },
    )
    yield quarantine_check_result(TIMESHEETS_KEY, raw)


@dg.asset(
    key=PROJECTS_KEY,
    description="Ajera projects (ListProjects pages, then GetProjects in batches); full refresh "
    "each run; payload = the GetProjects record.",
    check_specs=[quarantine_check_spec(PROJECTS_KEY)],
    **COMMON,
)
def ajera_projects(context: dg.AssetExecutionContext, ajera: AjeraResource) -> Iterator[Any]:
    before = ajera.metrics.snapshot()
    with permanent_errors_fail_fast():
        records, stats = fetch_project_records(ajera)
    raw = build_raw_frame(PROJECT_SPEC, records)
    delta = ajera.metrics.snapshot() - before
    if stats["projects_missing_detail"]:
        context.log.warning(
            f"Ajera: GetProjects did not return {stats['projects_missing_detail']} listed project(s); "
            "their list records were kept"
        )
    yield raw_output(raw, delta, **stats)
    yield quarantine_check_result(PROJECTS_KEY, raw)


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[ajera_timesheets, ajera_projects],
        resources={VENDOR: AjeraResource.from_env()},
    )
