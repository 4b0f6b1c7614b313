"""Reading keys and dates of Ajera records leniently, before (and whatever) validation says."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from pydantic import ValidationError

from .models import MAX_KEY, ProjectListRecord

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def lenient_key(value: Any) -> int | None:
    """A record key read leniently (``12``, ``"12"``, ``12.0``); ``None`` when it is not a whole
    number within ±2**53 like every valid key (booleans, ``12.5``, ``inf``, ``10**30``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value) if "." in value else int(value)  # "147.0" reads as pydantic reads it
        except ValueError:
            return None
    if isinstance(value, float) and not value.is_integer():
        return None
    try:
        key = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return key if abs(key) <= MAX_KEY else None


def lenient_date(*values: Any) -> date | None:
    """The first of ``values`` that starts with an ISO date (a time part is ignored)."""
    for value in values:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()[:10])
            except ValueError:
                continue
    return None


def timesheet_key(record: Any) -> int | None:
    """``Timesheet Key`` of a ``ListTimesheets`` record."""
    return lenient_key(record.get("Timesheet Key")) if isinstance(record, Mapping) else None


def listed_week_date(record: Any) -> date | None:
    """A ``ListTimesheets`` record's ``Timesheet Date`` when readable (else left to validation)."""
    return lenient_date(record.get("Timesheet Date")) if isinstance(record, Mapping) else None


def detail_key(detail: Any) -> int | None:
    """``TimesheetKey`` of a ``GetTimesheets`` record."""
    return lenient_key(detail.get("TimesheetKey")) if isinstance(detail, Mapping) else None


def employee_key(record: Any) -> int | None:
    """``EmployeeKey`` of a ``ListEmployees`` record."""
    if not isinstance(record, Mapping):
        return None
    return lenient_key(record.get("EmployeeKey", record.get("Employee Key")))


def project_key(record: Any) -> int | None:
    if not isinstance(record, Mapping):
        return None
    try:
        return ProjectListRecord.model_validate(record).project_key
    except ValidationError:
        return None


def project_keys(records: Iterable[Any]) -> list[int]:
    """Distinct project keys in list order (records without a usable key are left out)."""
    keys = (project_key(r) for r in records)
    return list(dict.fromkeys(k for k in keys if k is not None))
