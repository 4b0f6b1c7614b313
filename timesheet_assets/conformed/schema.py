"""The conformed model's columns and allowed values (fixed by docs/contracts.md)."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from ..ingest.records import coerce_dtypes

TIMESHEET_STATUSES = ("draft", "submitted", "approved", "rejected", "paid", "unknown")
PROJECT_STATUSES = ("planned", "active", "completed", "cancelled", "unknown")

TIMESHEET_COLUMNS: Mapping[str, str] = {
    "source_system": "string",
    "entry_id": "string",
    "work_date": "date",
    "employee_id": "string",
    "employee_name": "string",
    "project_id": "string",
    "project_code": "string",
    "task": "string",
    "regular_hours": "float64",
    "overtime_hours": "float64",
    "total_hours": "float64",
    "billable_hours": "Float64",
    "status": "string",
    "notes": "string",
    "source_updated_at": "datetime64[ns, UTC]",
    "ingested_at": "datetime64[ns, UTC]",
}

PROJECT_COLUMNS: Mapping[str, str] = {
    "source_system": "string",
    "project_id": "string",
    "project_code": "string",
    "name": "string",
    "status": "string",
    "customer_id": "string",
    "customer_name": "string",
    "start_date": "date",
    "end_date": "date",
    "manager_name": "string",
    "source_updated_at": "datetime64[ns, UTC]",
    "ingested_at": "datetime64[ns, UTC]",
}

TIMESHEET_KEY = ("source_system", "entry_id")
PROJECT_KEY = ("source_system", "project_id")
TIMESHEET_REQUIRED = (
    "source_system", "entry_id", "work_date", "employee_id", "regular_hours", "overtime_hours",
    "total_hours", "status", "ingested_at",
)
PROJECT_REQUIRED = ("source_system", "project_id", "status", "ingested_at")

COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    "source_system": "Vendor the row came from: aimsio, ajera, aims360, blikk or ibuildapp.",
    "entry_id": "Stable key, unique within source_system (see docs/conformed-model.md).",
    "work_date": "Day the hours were worked, in the vendor's timezone as reported.",
    "employee_id": "Vendor's employee/user id.",
    "employee_name": "Employee display name, when the vendor provides it.",
    "project_id": "Vendor's project/job id.",
    "project_code": "Human project/job number.",
    "task": "Phase / activity / task / pay code as the vendor has it.",
    "regular_hours": "Regular hours.",
    "overtime_hours": "Overtime plus double time.",
    "total_hours": "Regular + overtime (+ travel where the vendor separates it).",
    "billable_hours": "Billable hours, when the vendor tracks them.",
    "status": "draft, submitted, approved, rejected, paid or unknown (timesheets); planned, "
    "active, completed, cancelled or unknown (projects).",
    "notes": "Free-text notes on the line.",
    "source_updated_at": "Vendor's last-modified timestamp (UTC), when it has one.",
    "ingested_at": "When this pipeline fetched the row (UTC).",
    "name": "Project name.",
    "customer_id": "Vendor's customer/client id.",
    "customer_name": "Customer/client name.",
    "start_date": "Project start date.",
    "end_date": "Project end date.",
    "manager_name": "Project manager's name.",
}


def _conform(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    out = frame.copy()
    for column in missing:
        out[column] = None
    out = out[list(columns)]
    return coerce_dtypes(out, columns).reset_index(drop=True)


def conform_timesheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Order, complete and type a vendor's timesheet lines as the conformed schema says."""
    return _conform(frame, TIMESHEET_COLUMNS)


def conform_project_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return _conform(frame, PROJECT_COLUMNS)


def empty_timesheets() -> pd.DataFrame:
    return conform_timesheet_frame(pd.DataFrame())


def empty_projects() -> pd.DataFrame:
    return conform_project_frame(pd.DataFrame())
