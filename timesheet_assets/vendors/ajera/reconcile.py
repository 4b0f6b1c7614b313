"""Ajera's own numbers against the warehouse: each week's ``Timesheet Total`` (ListTimesheets)
against the day rows the warehouse holds for that week once this run's write lands.

A week's seven days are this run's rows for the days inside its window and the stored rows for
the days outside it. Days outside the window that the warehouse never loaded (before its first
or after its last stored Ajera day) are taken as Ajera's own day cells and the week counts as
partly not loaded: there is nothing to compare there. A difference names the week, the employee
and the days where the warehouse differs from Ajera's day cells (none when Ajera's total itself
disagrees with its cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

TOLERANCE = 0.005
SHOWN = 20


@dataclass
class WeekHours:
    """One valid week as Ajera reports it."""

    timesheet_key: int
    employee_key: int
    employee_name: str | None
    week: tuple[date, date] | None
    total: float | None  # "Timesheet Total" of the list record
    cells: dict[date, float]  # hours of the detail's day cells, all lines, by date


@dataclass
class Reconciliation:
    weeks_checked: int = 0
    weeks_partly_not_loaded: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def metadata(self) -> dict[str, Any]:
        employees = sorted({m["employee"] for m in self.mismatches})
        days = sorted({d for m in self.mismatches for d in m["days"]})
        return {
            "weeks_checked": self.weeks_checked,
            "weeks_mismatched": len(self.mismatches),
            "weeks_partly_not_loaded": self.weeks_partly_not_loaded,
            "employees": ", ".join(employees[:SHOWN]) or "none",
            "days": ", ".join(days[:SHOWN]) or "none",
            "mismatches": self.mismatches[:SHOWN],
        }


def day_hours(rows: pd.DataFrame | None) -> dict[tuple[int, date], float]:
    """Hours of valid raw rows by (timesheet key, work date)."""
    if rows is None or rows.empty:
        return {}
    valid = rows[rows["quarantine_reason"].isna()] if "quarantine_reason" in rows.columns else rows
    if valid.empty:
        return {}
    keys = pd.to_numeric(valid["timesheet_key"], errors="coerce")
    days = pd.to_datetime(valid["work_date"]).dt.date
    hours = pd.to_numeric(valid["regular_hours"], errors="coerce").fillna(0) + pd.to_numeric(
        valid["overtime_hours"], errors="coerce"
    ).fillna(0)
    grouped = pd.DataFrame({"k": keys, "d": days, "h": hours}).dropna(subset=["k"]).groupby(["k", "d"])["h"].sum()
    return {(int(k), d): float(h) for (k, d), h in grouped.items()}


def stored_extent(stored: pd.DataFrame | None) -> tuple[date, date] | None:
    """The first and last work date the warehouse holds Ajera rows for."""
    if stored is None or stored.empty:
        return None
    days = pd.to_datetime(stored["work_date"]).dt.date.dropna()
    return (min(days), max(days)) if len(days) else None


def reconcile(
    weeks: list[WeekHours], landed: pd.DataFrame, stored: pd.DataFrame | None, first: date, last: date
) -> Reconciliation:
    """Compare every week that has a total; ``landed`` are this run's rows, ``stored`` the
    warehouse's rows before the write (``None`` when the warehouse cannot be read)."""
    result = Reconciliation()
    here = day_hours(landed)
    there = day_hours(stored)
    extent = stored_extent(stored)
    for week in weeks:
        if week.total is None or week.week is None:
            continue
        result.weeks_checked += 1
        warehouse: dict[date, float] = {}
        partly = False
        day = week.week[0]
        while day <= week.week[1]:
            if first <= day <= last:
                warehouse[day] = here.get((week.timesheet_key, day), 0.0)
            elif extent is not None and extent[0] <= day <= extent[1]:
                warehouse[day] = there.get((week.timesheet_key, day), 0.0)
            else:
                warehouse[day] = week.cells.get(day, 0.0)
                partly = True
            day += timedelta(days=1)
        result.weeks_partly_not_loaded += partly
        held = sum(warehouse.values())
        if abs(held - week.total) <= TOLERANCE:
            continue
        differing = [d for d, h in sorted(warehouse.items()) if abs(week.cells.get(d, 0.0) - h) > TOLERANCE]
        name = week.employee_name or "?"
        result.mismatches.append(
            {
                "timesheet_key": week.timesheet_key,
                "employee": f"{name} ({week.employee_key})",
                "week": f"{week.week[0].isoformat()}..{week.week[1].isoformat()}",
                "timesheet_total": round(week.total, 4),
                "warehouse_hours": round(held, 4),
                "ajera_day_cells_hours": round(sum(week.cells.values()), 4),
                "days": [d.isoformat() for d in differing],
            }
        )
    return result
