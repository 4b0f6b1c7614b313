"""Timesheets are weeks, the warehouse is daily: a week's ``Project``/``Overhead`` detail lines
exploded into one raw row per line and day (days clipped to the run's window).

A timesheet is validated as a whole: if its list record, its detail or any of its lines is
invalid, all of its lines are quarantined with the reason, so a week never lands half-counted.
``build_raw_frame`` validates record by record and stores one payload per record; a week needs
per-line payloads and one verdict for all its lines, so the timesheet frame is built here from
the same shared pieces (``typed_frame``, ``quarantine_reason``, ``RawFrame``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from pydantic import ValidationError

from ...ingest import RawFrame, quarantine_reason
from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN, typed_frame, unkeyed_key
from .models import (
    DETAIL_FIELDS_DOCUMENTED,
    LIST_FIELDS_DOCUMENTED,
    LIST_FIELDS_KEPT,
    SECTION_FIELDS_DOCUMENTED,
    DayCell,
    OverheadLineRecord,
    ProjectLineRecord,
    TimesheetDetail,
    TimesheetLine,
    TimesheetListRecord,
)
from .reconcile import WeekHours
from .records import lenient_date, lenient_key
from .resource import TimesheetFetch
from .week import first_day, week_span

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
    "timesheet_total": "float64",
}

TIMESHEET_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    KEY_COLUMN: "{Timesheet Key}:{P|O}{line key}:{work date}, e.g. 147:P2:2012-09-11: one "
    "detail line on one day (P: Timesheet Project Key, O: Timesheet Overhead Group Detail Key).",
    "timesheet_key": "Timesheet Key: the weekly timesheet the line belongs to.",
    "section": "project or overhead: the GetTimesheets section of the line.",
    "line_key": "Timesheet Project Key (project lines) or Timesheet Overhead Group Detail Key (overhead lines).",
    "work_date": "The day of the D1..D7 cell, counted from TimesheetDate as AJERA_TIMESHEET_DATE "
    "says (the partition key).",
    "day_number": "Which cell of the week the row comes from: 1 for D1 .. 7 for D7.",
    "timesheet_date": "TimesheetDate: the date Ajera gives the week (its ending or starting day).",
    "employee_key": "Employee Key.",
    "employee_name": "The employee's name from the ListTimesheets record.",
    "company_key": "Company Key.",
    "project_key": "Project Key of a project line.",
    "phase_key": "Phase Key of a project line.",
    "activity_key": "Activity Key of a project line.",
    "employee_type_key": "Employee Type Key of a project line.",
    "project_description": "Project Description of a project line.",
    "phase_description": "Phase Description of a project line.",
    "activity": "Activity of a project line.",
    "overhead_group": "Timesheet Overhead Group Detail: the overhead category of an overhead line.",
    "regular_hours": "Dn Regular: regular hours of the line on this day.",
    "overtime_hours": "Dn Overtime: overtime hours of the line on this day.",
    "notes": "Dn Notes.",
    "overtime_notes": "Dn OT Notes.",
    "submitted": "Submitted flag of the week, as listed when the row was read.",
    "supervisor_approved": "Supervisor Approved flag of the week.",
    "accounting_approved": "Accounting Approved flag of the week.",
    "project_manager_approved": "Project Manager Approved flag of the week.",
    "rejected": "Rejected flag of the week.",
    "paid": "Paid flag of the week.",
    "timesheet_total": "Timesheet Total of the week as listed (compared with the day rows by "
    "the timesheet_totals_reconcile check).",
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
        "timesheet_total": ts.timesheet_total,
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

    def line_of(record: Any) -> Any:
        return validated("GetTimesheets line", lambda: TimesheetLine.model_validate(record).root)

    lines = [line_of(r) for r in records]
    seen: set[tuple[str, int]] = set()
    for line in lines:
        if (line.section, line.line_key) in seen:
            raise TimesheetRejected(f"GetTimesheets line: {line.section} line key {line.line_key} appears twice")
        seen.add((line.section, line.line_key))
    return list_record, lines


def _quarantine_rows(
    listed: Any, detail: Any, records: list[dict[str, Any]], reason: str, fetch: TimesheetFetch
) -> list[dict[str, Any]]:
    listed_map = listed if isinstance(listed, Mapping) else {}
    ts_key = lenient_key(listed_map.get("Timesheet Key"))
    # A week without a usable key is named by a digest of what was served, so it keeps its key
    # from one batch (and run) to the next and never collides with another such week.
    key_text = (
        str(ts_key) if ts_key is not None else unkeyed_key(_payload_json({"Timesheet": listed, "Detail": detail}))
    )
    week = lenient_date(
        detail.get("TimesheetDate") if isinstance(detail, Mapping) else None, listed_map.get("Timesheet Date")
    )
    try:
        start = first_day(week, fetch.reading) if week is not None else None
    except OverflowError:
        start = week
    when = _clamp(start, fetch.first, fetch.last)
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
            PAYLOAD_COLUMN: _payload_json(payload),
            QUARANTINE_COLUMN: reason,
        }
        for key, payload in payloads
    ]


def _payload_json(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)


def _unique_keys(rows: list[dict[str, Any]]) -> None:
    """The same week served twice (or two keyless weeks served identically) must not give two
    rows one key: repeats get ``#n``."""
    seen: dict[str, int] = {}
    for row in rows:
        key = row[KEY_COLUMN]
        if key in seen:
            seen[key] += 1
            row[KEY_COLUMN] = f"{key}#{seen[key]}"
        else:
            seen[key] = 0


def build_timesheet_frame(
    fetch: TimesheetFetch, *, ingested_at: datetime | None = None
) -> tuple[RawFrame, list[WeekHours]]:
    """The raw day-rows of one window (days clipped to ``fetch.first``..``fetch.last`` under
    ``fetch.reading``), plus, for every valid week, Ajera's own numbers for the totals
    reconciliation (``reconcile``)."""
    first, last = fetch.first, fetch.last
    rows: list[dict[str, Any]] = []
    weeks: list[WeekHours] = []
    quarantined = 0
    for listed in fetch.listed:
        key = lenient_key(listed.get("Timesheet Key")) if isinstance(listed, Mapping) else None
        detail = fetch.details.get(key) if key is not None else None
        records = line_records(listed, detail) if isinstance(detail, Mapping) else []
        try:
            list_record, lines = _validated_lines(listed, detail, records)
        except TimesheetRejected as exc:
            quarantined += 1
            rows.extend(_quarantine_rows(listed, detail, records, str(exc), fetch))
            continue
        cells: dict[date, float] = {}
        for line, record in zip(lines, records):
            payload = _payload_json(record)
            for cell in line.detail.days():
                work_date = line.work_date(cell, fetch.reading)
                cells[work_date] = cells.get(work_date, 0.0) + cell.regular + cell.overtime
                if cell.is_empty or not first <= work_date <= last:
                    continue
                row = _day_row(line, cell, work_date)
                row[PAYLOAD_COLUMN] = payload
                row[QUARANTINE_COLUMN] = None
                rows.append(row)
        week_date = lines[0].timesheet_date if lines else list_record.timesheet_date
        try:
            span: tuple[date, date] | None = week_span(week_date, fetch.reading)
        except OverflowError:  # a week without lines dated at the end of the calendar
            span = None
        weeks.append(
            WeekHours(
                timesheet_key=list_record.timesheet_key,
                employee_key=list_record.employee_key,
                employee_name=list_record.employee_name,
                week=span,
                total=list_record.timesheet_total,
                cells=cells,
            )
        )
    _unique_keys(rows)
    frame = typed_frame(rows, TIMESHEET_COLUMNS)
    stamp = pd.Timestamp(ingested_at or datetime.now(UTC))
    frame[INGESTED_COLUMN] = pd.Series([stamp] * len(frame), index=frame.index, dtype="datetime64[ns, UTC]")
    raw = RawFrame(
        frame=frame,
        records_served=len(fetch.listed),
        quarantined=quarantined,
        descriptions=TIMESHEET_COLUMN_DESCRIPTIONS,
    )
    return raw, weeks
