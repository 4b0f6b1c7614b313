"""Raw Aimsio tables (as loaded from DuckDB) → conformed frames. Pure pandas, no I/O.

Timesheets (one row per timecard; ``docs/vendors/aimsio.md`` has the full table):

* ``entry_id`` is the timecard GUID (the ``record_key``): Aimsio gives each timecard line its
  own GUID, unique across the account.
* ``overtime_hours`` = overtime + double time; ``total_hours`` = regular + overtime + double
  time + travel (Aimsio separates travel time).
* ``billable_hours`` = ``total_hours`` when ``timeCardIsBillable`` is true, 0 when false,
  null when the record does not say.
* ``status``: the GET body has no status or approval field. Payroll period status
  ``CLOSED``/``PAID``/``PROCESSED``/``FINALIZED``/``LOCKED`` → ``paid``; otherwise
  ``submitted`` (a timecard exists in Aimsio once its field form was submitted: it carries the
  form's ``timeCardFormDataGuid``/``…No``). ``timeCardIsExportedToIntegration`` does not make
  a line ``approved``: the document names it for what it is, an integration has exported the
  card, and says nothing of approval (it only lets integrations update a timecard's status),
  so claiming a sign-off the source never stated would relabel lines; the flag stays in the
  raw table (``is_exported``).
* Timecards flagged ``timeCardIsDeleted`` stay in the raw table, marked, and are left out of
  the conformed table (they are not hours anyone worked); quarantined rows are left out too.
* Timecards that left the ``CurrentTimeCard`` listing (``listed`` false in raw) count or not
  as ``AIMSIO_VANISHED_TIMECARDS`` says: ``keep`` (default) or ``drop``.
"""

from __future__ import annotations

import pandas as pd

from ...conformed.schema import conform_project_frame, conform_timesheet_frame
from .settings import DROP, vanished_timecards

SOURCE_SYSTEM = "aimsio"
PAID_PAYROLL_STATUSES = frozenset({"closed", "paid", "processed", "finalized", "finalised", "locked"})
PROJECT_STATUS_WORDS = {
    "planned": "planned",
    "pending": "planned",
    "quoted": "planned",
    "draft": "planned",
    "tender": "planned",
    "active": "active",
    "open": "active",
    "in progress": "active",
    "in_progress": "active",
    "inprogress": "active",
    "on hold": "active",
    "on_hold": "active",
    "completed": "completed",
    "complete": "completed",
    "closed": "completed",
    "finished": "completed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "void": "cancelled",
}


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    """A nullable boolean column as plain booleans (null → False)."""
    if column not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[column].astype("boolean").fillna(False).astype(bool)


def _hours(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce").astype(float).fillna(0.0)


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    if "quarantine_reason" in frame.columns:
        frame = frame[frame["quarantine_reason"].isna()]
    return frame[~_flag(frame, "is_deleted")]


def timesheet_status(payroll_status: object) -> str:
    """``paid`` once the payroll period is closed, else ``submitted`` (see module docstring:
    the export flag says nothing about approval)."""
    if isinstance(payroll_status, str) and payroll_status.strip().lower() in PAID_PAYROLL_STATUSES:
        return "paid"
    return "submitted"


def conform_timecards(raw: pd.DataFrame, vanished: str | None = None) -> pd.DataFrame:
    """``raw/aimsio/timecards`` → ``conformed/timesheets`` rows (deleted and quarantined left
    out; timecards that left the listing too when ``vanished`` — default: the
    ``AIMSIO_VANISHED_TIMECARDS`` setting — is ``drop``)."""
    vanished = vanished or vanished_timecards()
    if raw.empty:
        return conform_timesheet_frame(pd.DataFrame())
    frame = _usable(raw)
    if vanished == DROP and "listed" in frame.columns:
        frame = frame[frame["listed"].astype("boolean").fillna(True).astype(bool)]
    regular = _hours(frame, "regular_hours")
    overtime = _hours(frame, "overtime_hours") + _hours(frame, "double_time_hours")
    total = regular + overtime + _hours(frame, "travel_hours")
    billable_flag = frame["is_billable"].astype("boolean")
    billable = (
        total.astype("Float64")
        .where(billable_flag.fillna(False).astype(bool), 0.0)
        .mask(billable_flag.isna().astype(bool), pd.NA)
    )
    status = [timesheet_status(payroll) for payroll in frame["payroll_period_status"]]
    out = pd.DataFrame(
        {
            "source_system": SOURCE_SYSTEM,
            "entry_id": frame["record_key"],
            "work_date": frame["work_date"],
            "employee_id": frame["employee_guid"].where(frame["employee_guid"].notna(), frame["employee_code"]),
            "employee_name": None,
            "project_id": frame["job_guid"],
            "project_code": frame["job_number"],
            "task": frame["phase_code"].where(frame["phase_code"].notna(), frame["pay_code"]),
            "regular_hours": regular,
            "overtime_hours": overtime,
            "total_hours": total,
            "billable_hours": billable,
            "status": status,
            "notes": frame["description"],
            "source_updated_at": frame["source_updated_at"],
            "ingested_at": frame["ingested_at"],
        },
        index=frame.index,
    )
    return conform_timesheet_frame(out)


def project_status(value: object) -> str:
    if not isinstance(value, str):
        return "unknown"
    return PROJECT_STATUS_WORDS.get(value.strip().lower(), "unknown")


def conform_job_orders(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw/aimsio/job_orders`` → ``conformed/projects`` rows (deleted and quarantined left out)."""
    if raw.empty:
        return conform_project_frame(pd.DataFrame())
    frame = _usable(raw)
    out = pd.DataFrame(
        {
            "source_system": SOURCE_SYSTEM,
            "project_id": frame["record_key"],
            "project_code": frame["job_order_number"],
            "name": frame["name"],
            "status": [project_status(v) for v in frame["status"]],
            "customer_id": frame["customer_guid"],
            "customer_name": frame["customer_name"],
            "start_date": frame["start_date"],
            "end_date": frame["end_date"],
            "manager_name": frame["manager_name"],
            "source_updated_at": frame["source_updated_at"],
            "ingested_at": frame["ingested_at"],
        },
        index=frame.index,
    )
    return conform_project_frame(out)
