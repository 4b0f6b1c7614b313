"""Blikk raw tables → the conformed model (pure pandas; the mapping is documented column by
column in ``docs/vendors/blikk.md``)."""

from __future__ import annotations

import pandas as pd

from ...conformed.schema import (
    conform_project_frame,
    conform_timesheet_frame,
    empty_projects,
    empty_timesheets,
)

SOURCE_SYSTEM = "blikk"

# Internal and absence projects are registries of their own whose ids overlap project ids;
# their keys carry the registry (in raw/blikk/projects and in the time reports' project_id).
INTERNAL_PREFIX = "internal:"
ABSENCE_PREFIX = "absence:"

# Time codes are configured per Blikk account; these names (English and Swedish) mark hours
# paid as overtime. Everything else is regular time.
OVERTIME_TIME_CODE_WORDS = ("overtime", "övertid", "overtid")

# Project statuses are configured per account too; only ``isCompletedStatus`` is fixed. Name
# words decide the rest, cancellation first (a cancelled project is also "completed").
CANCELLED_WORDS = ("cancel", "abandon", "makuler", "avbrut", "annuller")
PLANNED_WORDS = (
    "not started",
    "ej påbörj",
    "ej startad",
    "planned",
    "planerad",
    "planning",
    "upcoming",
    "kommande",
    "quote",
    "offert",
)
ACTIVE_WORDS = ("ongoing", "in progress", "active", "started", "pågå", "påbörjad", "aktiv")
COMPLETED_WORDS = ("complet", "finish", "done", "closed", "avslut", "klar", "stängd")


def _valid(raw: pd.DataFrame) -> pd.DataFrame:
    if "quarantine_reason" in raw.columns:
        return raw[raw["quarantine_reason"].isna()]
    return raw


def _text(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().replace("", pd.NA)


def _flag(series: pd.Series) -> pd.Series:
    return series.astype("boolean").fillna(False).astype(bool)


def timesheet_status(attested: bool, sent_to_attest: bool) -> str:
    if attested:
        return "approved"
    if sent_to_attest:
        return "submitted"
    return "draft"


def project_status(name: object, is_completed: bool | None) -> str:
    text = str(name).strip().lower() if isinstance(name, str) else ""
    if any(word in text for word in CANCELLED_WORDS):
        return "cancelled"
    if is_completed is True:
        return "completed"
    if any(word in text for word in COMPLETED_WORDS):
        return "completed"
    if any(word in text for word in PLANNED_WORDS):
        return "planned"
    if any(word in text for word in ACTIVE_WORDS):
        return "active"
    return "unknown"


def conform_time_reports(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw/blikk/time_reports`` → ``conformed/timesheets`` rows (one per time report)."""
    rows = _valid(raw)
    if rows.empty:
        return empty_timesheets()
    rows = rows.reset_index(drop=True)
    hours = pd.to_numeric(rows["hours"], errors="coerce").astype("float64")
    time_code = _text(rows["time_code_name"]).str.lower().fillna("")
    overtime = time_code.apply(lambda code: any(word in code for word in OVERTIME_TIME_CODE_WORDS))
    project_id = _text(rows["project_id"])
    internal_id = _text(rows["internal_project_id"])
    absence_id = _text(rows["absence_project_id"])
    composed_project = project_id.fillna(INTERNAL_PREFIX + internal_id).fillna(ABSENCE_PREFIX + absence_id)
    attested = _flag(rows["attested"])
    sent = _flag(rows["sent_to_attest"])
    notes = _text(rows["comment"]).fillna(_text(rows["internal_comment"]))
    updated = pd.to_datetime(rows["updated_at"], utc=True).fillna(pd.to_datetime(rows["created_at"], utc=True))
    frame = pd.DataFrame(
        {
            "source_system": SOURCE_SYSTEM,
            "entry_id": _text(rows["record_key"]),
            "work_date": rows["work_date"],
            "employee_id": _text(rows["user_id"]),
            "employee_name": _text(rows["employee_name"]),
            "project_id": composed_project,
            "project_code": _text(rows["project_number"]),
            "task": _text(rows["activity_name"]),
            "regular_hours": hours.where(~overtime, 0.0),
            "overtime_hours": hours.where(overtime, 0.0),
            "total_hours": hours,
            "billable_hours": pd.to_numeric(rows["invoiceable_hours"], errors="coerce").astype("Float64"),
            "status": [timesheet_status(a, s) for a, s in zip(attested, sent)],
            "notes": notes,
            "source_updated_at": updated,
            "ingested_at": rows["ingested_at"],
        }
    )
    return conform_timesheet_frame(frame)


def registry_status(is_active: bool | None) -> str:
    """Internal and absence projects only say whether they can still be booked on."""
    if is_active is None:
        return "unknown"
    return "active" if is_active else "completed"


def _optional_bool(value: object) -> bool | None:
    return None if pd.isna(value) else bool(value)


def conform_projects(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw/blikk/projects`` (projects, internal and absence projects) → ``conformed/projects``."""
    rows = _valid(raw)
    if rows.empty:
        return empty_projects()
    rows = rows.reset_index(drop=True)
    kinds = rows["project_type"].astype("object").where(rows["project_type"].notna(), "project")
    statuses = [
        project_status(name, _optional_bool(done)) if kind == "project" else registry_status(_optional_bool(active))
        for kind, name, done, active in zip(
            kinds,
            rows["status_name"].astype("object"),
            rows["status_is_completed"].astype("boolean"),
            rows["is_active"].astype("boolean"),
        )
    ]
    updated = pd.to_datetime(rows["updated_at"], utc=True).fillna(pd.to_datetime(rows["created_at"], utc=True))
    frame = pd.DataFrame(
        {
            "source_system": SOURCE_SYSTEM,
            "project_id": _text(rows["record_key"]),
            "project_code": _text(rows["order_number"]),
            "name": _text(rows["title"]),
            "status": statuses,
            "customer_id": _text(rows["customer_id"]),
            "customer_name": _text(rows["customer_name"]),
            "start_date": rows["start_date"],
            "end_date": rows["end_date"],
            "manager_name": _text(rows["manager_name"]),
            "source_updated_at": updated,
            "ingested_at": rows["ingested_at"],
        }
    )
    return conform_project_frame(frame)
