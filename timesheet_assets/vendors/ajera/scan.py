"""The status scan: which older days changed in Ajera, from list records alone.

Timesheets carry no modification time and ``ListTimesheets`` has no modified-since filter, but
its records carry what changes when people act on a week: the approval flags (``Submitted``,
``Supervisor Approved``, ``Accounting Approved``, ``Project Manager Approved``, ``Rejected``,
``Paid``) and ``Timesheet Total``. Listing a long window is cheap (no ``GetTimesheets``), so
every timesheet run lists the weeks of the days before its own range back to the scan start,
and compares each week with the rows the warehouse holds for it (every raw row keeps its week's
flags and ``Timesheet Total`` as read):

* flags or total differ → the week was approved, rejected, paid, edited, or lost a line;
* a week the warehouse does not know with hours in it → a late timesheet (only weeks wholly
  inside the scan window: one straddling its start may have its hours before it);
* a stored week that is no longer listed → deleted.

The days of those weeks inside the scan window are ``days_to_reread``. Not visible here: hours
moved between days of one week (or any edit that leaves the week's total and flags as they
were); the weekly deep refresh re-reads those. Weeks the warehouse holds quarantined are left
to the re-reads that rebuild them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd
from pydantic import ValidationError

from .models import TimesheetListRecord
from .week import week_span

FLAG_COLUMNS = (
    "submitted",
    "supervisor_approved",
    "accounting_approved",
    "project_manager_approved",
    "rejected",
    "paid",
)
STORED_COLUMNS = ("timesheet_key", "work_date", "quarantine_reason", *FLAG_COLUMNS)
TOTAL_COLUMN = "timesheet_total"
TOLERANCE = 0.005


@dataclass
class ScanResult:
    days: set[date] = field(default_factory=set)
    weeks_compared: int = 0
    weeks_changed: list[int] = field(default_factory=list)
    weeks_new: list[int] = field(default_factory=list)
    weeks_gone: list[int] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "change_scan_weeks_compared": self.weeks_compared,
            "change_scan_weeks_changed": len(self.weeks_changed),
            "change_scan_weeks_new": len(self.weeks_new),
            "change_scan_weeks_gone": len(self.weeks_gone),
        }


def _flag(value: Any) -> bool | None:
    if value is None or (not isinstance(value, bool) and pd.isna(value)):
        return None
    return bool(value)


def _number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _state(row: Any, has_total: bool) -> tuple[tuple[bool | None, ...], float | None]:
    flags = tuple(_flag(getattr(row, column)) for column in FLAG_COLUMNS)
    return flags, (_number(getattr(row, TOTAL_COLUMN)) if has_total else None)


def _differs(listed: TimesheetListRecord, stored: tuple[tuple[bool | None, ...], float | None]) -> bool:
    flags, total = stored
    if tuple(getattr(listed, column) for column in FLAG_COLUMNS) != flags:
        return True
    # A total is compared only where both sides know it (rows stored before totals were kept
    # have none).
    return total is not None and listed.timesheet_total is not None and abs(total - listed.timesheet_total) > TOLERANCE


def _days(start: date, end: date) -> set[date]:
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


def changed_days(
    scanned: list[Any], stored: pd.DataFrame, scan_from: date, scan_to: date, reading: str, listed_keys: set[int]
) -> ScanResult:
    """The days in ``scan_from``..``scan_to`` whose weeks changed since the warehouse read them.

    ``scanned``: the list records of the weeks touching the scan window; ``stored``: the raw
    table's rows (``STORED_COLUMNS``, with ``timesheet_total`` when the table has it);
    ``listed_keys``: every timesheet key the run's listing returned (a stored week missing from
    it was deleted)."""
    result = ScanResult()
    days = pd.to_datetime(stored["work_date"]).dt.date if not stored.empty else pd.Series([], dtype=object)
    in_scan = stored[(days >= scan_from) & (days <= scan_to)] if not stored.empty else stored
    known = (
        set(pd.to_numeric(stored["timesheet_key"], errors="coerce").dropna().astype(int)) if not stored.empty else set()
    )
    quarantined = (
        set(
            pd.to_numeric(stored.loc[stored["quarantine_reason"].notna(), "timesheet_key"], errors="coerce")
            .dropna()
            .astype(int)
        )
        if not stored.empty
        else set()
    )
    has_total = TOTAL_COLUMN in stored.columns
    states: dict[int, set[tuple[tuple[bool | None, ...], float | None]]] = {}
    stored_days: dict[int, set[date]] = {}
    for row in in_scan.itertuples(index=False):
        if pd.isna(row.timesheet_key) or row.quarantine_reason is not None and not pd.isna(row.quarantine_reason):
            continue
        key = int(row.timesheet_key)
        states.setdefault(key, set()).add(_state(row, has_total))
        stored_days.setdefault(key, set()).add(pd.Timestamp(row.work_date).date())

    for record in scanned:
        try:
            listed = TimesheetListRecord.model_validate(record)
            start, end = week_span(listed.timesheet_date, reading)
        except (ValidationError, OverflowError):
            continue  # unreadable here; the run that reads the week quarantines it
        key = listed.timesheet_key
        if key in quarantined:
            continue
        window = _days(max(start, scan_from), min(end, scan_to))
        if not window:
            continue
        if key in states:
            result.weeks_compared += 1
            if any(_differs(listed, state) for state in states[key]):
                result.weeks_changed.append(key)
                result.days |= window
        elif key not in known and start >= scan_from and listed.timesheet_total:
            result.weeks_new.append(key)
            result.days |= window
    for key, held in stored_days.items():
        if key not in listed_keys:
            result.weeks_gone.append(key)
            result.days |= held
    return result
