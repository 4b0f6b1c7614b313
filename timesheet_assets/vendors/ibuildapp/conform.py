"""iBuildApp raw tables → conformed frames (pure pandas; the mapping table is in
docs/vendors/ibuildapp.md).

Hours: ``duration`` is seconds of tracked time and is used as reported. Entries carry only a
*count* of breaks; the doc does not say whether ``duration`` already excludes them, and their
lengths need one ``ts/breaks`` call per entry, so nothing is subtracted. Without a duration
(never seen in the doc, tolerated) the span ``end_time - start_time`` is used, else 0.
iBuildApp has no overtime, billable flag or project number: those columns stay 0 / null.

Status: the entry's approval ``status`` alone. ``payment_status: payed`` is billing: "Set
Invoice Status (Paid)" sets the invoice "and all his timeEntries" payed when the client pays
the invoice, whereas conformed ``paid`` means paid out to the employee; it stays in the raw
table. ``in-progress`` is both a running timer and a stopped entry nobody approved yet: with an
``end_time`` the entry is finished and waits for approval (``submitted``); only a running one
(no ``end_time``, "optional, if TimeEntry ended") is ``draft``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...conformed.schema import conform_project_frame, conform_timesheet_frame

SOURCE_SYSTEM = "ibuildapp"

ENTRY_STATUS = {"approved": "approved", "rejected": "rejected", "in-progress": "submitted"}
RUNNING_STATUS = "in-progress"
PROJECT_STATUS = {
    "new": "planned",
    "in-progress": "active",
    "done": "completed",
    "cancelled": "cancelled",
}


def _valid(raw: pd.DataFrame) -> pd.DataFrame:
    if raw is None or raw.empty or "record_key" not in raw.columns:
        return pd.DataFrame()
    if "quarantine_reason" in raw.columns:
        raw = raw[raw["quarantine_reason"].isna()]
    return raw.reset_index(drop=True)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype="object")


def _utc(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_datetime(_column(frame, name), utc=True, errors="coerce")


def _lower(series: pd.Series) -> pd.Series:
    """Trimmed lower-case text; computed once per distinct value (statuses repeat)."""
    text = series.astype("string")
    codes, uniques = pd.factorize(text)
    if len(uniques) * 4 > len(text):  # mostly distinct: per value is as cheap
        return text.str.strip().str.lower()
    mapped = pd.Series(uniques, dtype="string").str.strip().str.lower()
    values = np.empty(len(uniques) + 1, dtype=object)
    values[:-1] = mapped.to_numpy(dtype=object, na_value=None)
    values[-1] = None
    return pd.Series(pd.array(values[codes], dtype="string"), index=series.index)


def entry_status(status: pd.Series, end_time: pd.Series) -> pd.Series:
    """The approval status: approved / rejected as such, in-progress → submitted once the entry
    has an ``end_time`` and draft while it runs; anything else → unknown."""
    lowered = _lower(status)
    mapped = lowered.map(ENTRY_STATUS).astype("object")
    mapped = mapped.where(mapped.notna(), "unknown")
    running = (lowered == RUNNING_STATUS).fillna(False).astype(bool) & end_time.isna().to_numpy()
    return mapped.mask(running, "draft")


def entry_hours(frame: pd.DataFrame) -> pd.Series:
    seconds = pd.to_numeric(_column(frame, "duration_seconds"), errors="coerce").astype("float64")
    span = (_utc(frame, "end_time") - _utc(frame, "start_time")).dt.total_seconds()
    seconds = seconds.fillna(span.where(span >= 0)).fillna(0.0)
    return (seconds / 3600.0).round(6)


def conform_timesheets(raw: pd.DataFrame) -> pd.DataFrame:
    frame = _valid(raw)
    if frame.empty:
        return conform_timesheet_frame(pd.DataFrame())
    hours = entry_hours(frame)
    out = pd.DataFrame(
        {
            "source_system": SOURCE_SYSTEM,
            "entry_id": frame["record_key"].astype("string"),
            "work_date": _column(frame, "work_date"),
            "employee_id": _column(frame, "user_id"),
            "employee_name": _column(frame, "employee_name"),
            "project_id": _column(frame, "project_id"),
            "project_code": None,
            "task": _column(frame, "task_name"),
            "regular_hours": hours,
            "overtime_hours": 0.0,
            "total_hours": hours,
            "billable_hours": None,
            "status": entry_status(_column(frame, "status"), _utc(frame, "end_time")),
            "notes": None,
            "source_updated_at": _utc(frame, "updated_at"),
            "ingested_at": _utc(frame, "ingested_at"),
        }
    )
    return conform_timesheet_frame(out)


def _first_date(frame: pd.DataFrame, *names: str) -> pd.Series:
    """The first set timestamp among ``names`` as a UTC calendar date (dates are stored as
    UTC midnights by the vendor)."""
    result = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    for name in names:
        result = result.fillna(_utc(frame, name))
    return result.dt.date


def conform_projects(raw: pd.DataFrame) -> pd.DataFrame:
    frame = _valid(raw)
    if frame.empty:
        return conform_project_frame(pd.DataFrame())
    status = _lower(_column(frame, "status")).map(PROJECT_STATUS).astype("object")
    out = pd.DataFrame(
        {
            "source_system": SOURCE_SYSTEM,
            "project_id": frame["record_key"].astype("string"),
            "project_code": None,
            "name": _column(frame, "name"),
            "status": status.where(status.notna(), "unknown"),
            "customer_id": _column(frame, "client_id"),
            "customer_name": _column(frame, "client_name"),
            "start_date": _first_date(frame, "actual_start_date", "planned_start_date"),
            "end_date": _first_date(frame, "actual_end_date", "planned_end_date"),
            "manager_name": None,
            "source_updated_at": _utc(frame, "updated_at"),
            "ingested_at": _utc(frame, "ingested_at"),
        }
    )
    return conform_project_frame(out)
