"""The conformed model's columns and allowed values (fixed by docs/contracts.md)."""

from __future__ import annotations

from collections.abc import Mapping

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
    "source_system",
    "entry_id",
    "work_date",
    "employee_id",
    "regular_hours",
    "overtime_hours",
    "total_hours",
    "status",
    "ingested_at",
)
PROJECT_REQUIRED = ("source_system", "project_id", "status", "ingested_at")


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
