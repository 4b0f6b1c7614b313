"""Ajera raw frames → conformed frames (pure pandas; mapping documented in docs/vendors/ajera.md).

Quarantined raw rows never reach the conformed tables. Types are read leniently because the
frame comes back from DuckDB (booleans may be objects, keys floats when a column had nulls).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...conformed.schema import conform_project_frame, conform_timesheet_frame

SOURCE = "ajera"

# Ajera's project statuses (the ``FilterByStatus`` values of ListProjects: Preliminary, Active,
# Hold, WorkHold, BillingHold, Closed, Marketing) → conformed. A hold pauses an open project
# (WorkHold: no time entry, BillingHold: no invoicing, Hold: both); it is neither planned nor
# finished, so it stays ``active`` (raw ``status`` keeps which hold). Marketing is a pursuit
# not yet won: ``planned`` like Preliminary. The other names are tolerated spellings of older
# versions and other tenants.
PROJECT_STATUS = {
    "preliminary": "planned",
    "marketing": "planned",
    "active": "active",
    "hold": "active",
    "workhold": "active",
    "billinghold": "active",
    "closed": "completed",
    "inactive": "completed",
    "complete": "completed",
    "completed": "completed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "lost": "cancelled",
}

STATUS_FLAGS = (
    "paid",
    "rejected",
    "accounting_approved",
    "supervisor_approved",
    "project_manager_approved",
    "submitted",
)


def _valid(raw: pd.DataFrame) -> pd.DataFrame:
    if "quarantine_reason" not in raw.columns:
        return raw
    return raw[raw["quarantine_reason"].isna()]


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="boolean")
    return frame[column].astype("boolean")


def _key_text(series: pd.Series) -> pd.Series:
    """Integer keys as text ("32", not "32.0" when DuckDB handed back floats)."""
    return series.astype("Int64").astype("string")


def timesheet_status(frame: pd.DataFrame) -> pd.Series:
    """Paid > Rejected > any approval (accounting, supervisor, project manager) > Submitted >
    draft; ``unknown`` when the list record carried none of the flags."""
    flags = {name: _flag(frame, name) for name in STATUS_FLAGS}
    approved = (
        flags["accounting_approved"].fillna(False)
        | flags["supervisor_approved"].fillna(False)
        | flags["project_manager_approved"].fillna(False)
    )
    conditions = [
        flags["paid"].fillna(False),
        flags["rejected"].fillna(False),
        approved,
        flags["submitted"].fillna(False),
        pd.concat([f.notna() for f in flags.values()], axis=1).any(axis=1),
    ]
    choices = ["paid", "rejected", "approved", "submitted", "draft"]
    values = np.select([c.to_numpy(dtype=bool) for c in conditions], choices, default="unknown")
    return pd.Series(values, index=frame.index, dtype="string")


def _join_notes(notes: pd.Series, overtime_notes: pd.Series) -> pd.Series:
    parts = pd.concat([notes.astype("string"), overtime_notes.astype("string")], axis=1)
    joined = parts.apply(lambda r: " | ".join(v for v in r if isinstance(v, str) and v.strip()) or None, axis=1)
    return joined.astype("string")


def conform_timesheets(raw: pd.DataFrame) -> pd.DataFrame:
    """One conformed row per raw day-row; overhead lines keep ``project_id`` null and put the
    overhead group in ``task``."""
    frame = _valid(raw).reset_index(drop=True)
    if frame.empty:
        return conform_timesheet_frame(pd.DataFrame())
    is_project = frame["section"].astype("string") == "project"
    phase = frame["phase_description"].astype("string")
    activity = frame["activity"].astype("string")
    project_task = (
        pd.concat([phase, activity], axis=1)
        .apply(lambda r: " / ".join(v for v in r if isinstance(v, str) and v.strip()) or None, axis=1)
        .astype("string")
    )
    regular = pd.to_numeric(frame["regular_hours"], errors="coerce").fillna(0.0).astype(float)
    overtime = pd.to_numeric(frame["overtime_hours"], errors="coerce").fillna(0.0).astype(float)
    out = pd.DataFrame(
        {
            "source_system": SOURCE,
            "entry_id": frame["record_key"].astype("string"),
            "work_date": frame["work_date"],
            "employee_id": _key_text(frame["employee_key"]),
            "employee_name": frame["employee_name"].astype("string"),
            "project_id": _key_text(frame["project_key"]).where(is_project, pd.NA),
            "project_code": pd.Series(pd.NA, index=frame.index, dtype="string"),
            "task": project_task.where(is_project, frame["overhead_group"].astype("string")),
            "regular_hours": regular,
            "overtime_hours": overtime,
            "total_hours": regular + overtime,
            "billable_hours": pd.Series(pd.NA, index=frame.index, dtype="Float64"),
            "status": timesheet_status(frame),
            "notes": _join_notes(frame["notes"], frame["overtime_notes"]),
            "source_updated_at": pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]"),
            "ingested_at": frame["ingested_at"],
        }
    )
    return conform_timesheet_frame(out)


def project_status(status: pd.Series) -> pd.Series:
    normalised = status.astype("string").str.lower().str.replace(r"[\s_-]+", "", regex=True)
    return normalised.map(PROJECT_STATUS).fillna("unknown").astype("string")


def conform_projects(raw: pd.DataFrame) -> pd.DataFrame:
    frame = _valid(raw).reset_index(drop=True)
    if frame.empty:
        return conform_project_frame(pd.DataFrame())
    out = pd.DataFrame(
        {
            "source_system": SOURCE,
            "project_id": _key_text(frame["project_key"]),
            "project_code": frame["project_number"].astype("string"),
            "name": frame["description"].astype("string"),
            "status": project_status(frame["status"]),
            "customer_id": frame["client_key"].astype("string"),
            "customer_name": frame["client_name"].astype("string"),
            "start_date": frame["start_date"],
            "end_date": frame["end_date"],
            "manager_name": frame["project_manager"].astype("string"),
            "source_updated_at": frame["last_modified_at"],
            "ingested_at": frame["ingested_at"],
        }
    )
    return conform_project_frame(out)
