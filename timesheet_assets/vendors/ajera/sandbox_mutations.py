"""``SourceMutations`` on the Ajera sandbox: what people do to timesheets after the first load.

A key is a day-row's key, ``{Timesheet Key}:{P|O}{line key}:{work date}``: one cell of one
line. What an Ajera user does, and how the sandbox applies it:

* edit a day's hours: change the cell (the week's ``Timesheet Total`` follows);
* move hours to another day: clear the cell and enter the hours on the other day — the same
  line when the day is in the same week, else on the employee's timesheet for that week (one is
  created when there is none), on the line with the same project, phase and activity (a new
  line when there is none). The key names the day, so the moved entry has a new key;
* approve: the week's supervisor, project manager and accounting approvals (and its
  submission); a rejection is lifted. Ajera approves whole timesheets;
* delete: clear the cell; a timesheet left without any hours or notes is deleted;
* add a late timesheet: a new timesheet for an employee who has none that week (a new line on
  an existing one when everybody has one), with hours on the day.

Timesheets carry no modification time, so nothing else is stamped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from .sandbox import (
    ACTIVITIES,
    WORKABLE_STATUSES,
    AjeraState,
    day_cells,
    new_timesheet,
    period_start,
    project_line,
    project_phases,
    refresh_totals,
    set_status,
)

if TYPE_CHECKING:
    from .sandbox import AjeraDataset

SECTION_LINES = {"P": ("Project", "Timesheet Project Key"), "O": ("Overhead", "Timesheet Overhead Group Detail Key")}
CELL_FIELDS = ("Regular", "Overtime", "Notes", "OT Notes")


def _parse(key: str) -> tuple[int, str, int, date]:
    timesheet, line, day = key.split(":")
    return int(timesheet), line[0], int(line[1:]), date.fromisoformat(day)


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0).isoformat()


class AjeraMutations:
    def __init__(self, state: AjeraState) -> None:
        self.state = state

    @property
    def data(self) -> AjeraDataset:
        return self.state.dataset

    # -- lookups --------------------------------------------------------------------------------
    def _line(self, key: str) -> tuple[dict[str, Any], dict[str, Any], int]:
        """The timesheet, the line and the day number a key names."""
        timesheet_key, letter, line_key, day = _parse(key)
        timesheet = self.data.timesheets[timesheet_key]
        section, field = SECTION_LINES[letter]
        line = next(x for x in timesheet["detail"][section]["Detail"] if x[field] == line_key)
        n = (day - self.data.week_first_day(timesheet)).days + 1
        if not 1 <= n <= 7:
            raise KeyError(key)
        return timesheet, line, n

    def _timesheet_for(self, employee_key: int, day: date) -> dict[str, Any] | None:
        week = period_start(day, self.data.reading)
        return next(
            (
                ts
                for ts in self.data.timesheets.values()
                if ts["detail"]["EmployeeKey"] == employee_key and self.data.week_first_day(ts) == week
            ),
            None,
        )

    def _new_timesheet(self, employee_key: int, day: date) -> dict[str, Any]:
        key = max(self.data.timesheets, default=999) + 1
        employee = next(e for e in self.data.employees if e["EmployeeKey"] == employee_key)
        timesheet = new_timesheet(key, employee, period_start(day, self.data.reading), self.data.reading, {}, [], [])
        self.data.timesheets[key] = timesheet
        return timesheet

    def _next_project_line_key(self) -> int:
        return 1 + max(
            (
                line["Timesheet Project Key"]
                for ts in self.data.timesheets.values()
                for line in ts["detail"]["Project"]["Detail"]
            ),
            default=0,
        )

    def _key(self, timesheet: dict[str, Any], letter: str, line: dict[str, Any], day: date) -> str:
        return f"{timesheet['detail']['TimesheetKey']}:{letter}{line[SECTION_LINES[letter][1]]}:{day.isoformat()}"

    # -- SourceMutations ------------------------------------------------------------------------
    def entry_keys(self, first: date, last: date) -> list[str]:
        with self.state.lock:
            return sorted(k for k, hours in day_cells(self.data, first, last).items() if hours)

    def edit_hours(self, key: str, delta: float) -> None:
        with self.state.lock:
            timesheet, line, n = self._line(key)
            line[f"D{n} Regular"] = max(0.0, float(line.get(f"D{n} Regular") or 0) + delta)
            refresh_totals(timesheet)

    def move(self, key: str, day: date) -> str:
        with self.state.lock:
            timesheet, line, n = self._line(key)
            letter = _parse(key)[1]
            cell = {name: line.pop(f"D{n} {name}", None) for name in CELL_FIELDS}
            line[f"D{n} Regular"] = 0
            target = self._timesheet_for(timesheet["detail"]["EmployeeKey"], day) or self._new_timesheet(
                timesheet["detail"]["EmployeeKey"], day
            )
            target_line = self._matching_line(target, letter, line)
            m = (day - self.data.week_first_day(target)).days + 1
            for name, value in cell.items():
                if value in (None, "", 0):
                    continue
                field = f"D{m} {name}"
                if name in ("Regular", "Overtime"):
                    target_line[field] = float(target_line.get(field) or 0) + float(value)
                else:
                    target_line[field] = value
            refresh_totals(timesheet)
            refresh_totals(target)
            self._drop_if_empty(timesheet)
            return self._key(target, letter, target_line, day)

    def _matching_line(self, timesheet: dict[str, Any], letter: str, source: dict[str, Any]) -> dict[str, Any]:
        """The target timesheet's line for the same work (created when there is none)."""
        section, field = SECTION_LINES[letter]
        lines = timesheet["detail"][section]["Detail"]
        same = (
            ("Project Key", "Phase Key", "Activity Key") if letter == "P" else ("Timesheet Overhead Group Detail Key",)
        )
        found = next((x for x in lines if all(x.get(f) == source.get(f) for f in same)), None)
        if found is not None:
            return found
        fresh = {k: v for k, v in source.items() if not k.startswith("D") or not k[1:2].isdigit()}
        for n in range(1, 8):
            fresh[f"D{n} Regular"] = 0
        if letter == "P":
            fresh[field] = self._next_project_line_key()
        else:
            fresh["Timesheet Overhead Key"] = timesheet["detail"]["TimesheetKey"]
        lines.append(fresh)
        return fresh

    def approve(self, key: str) -> None:
        with self.state.lock:
            timesheet, _, _ = self._line(key)
            listed = timesheet["list"]
            flags = {
                "Submitted": True,
                "Supervisor Approved": True,
                "Project Manager Approved": True,
                "Accounting Approved": True,
                "Rejected": False,
                "Paid": listed.get("Paid", False),
            }
            set_status(listed, flags, _now())

    def delete(self, key: str) -> None:
        with self.state.lock:
            timesheet, line, n = self._line(key)
            for name in CELL_FIELDS:
                line.pop(f"D{n} {name}", None)
            line[f"D{n} Regular"] = 0
            refresh_totals(timesheet)
            self._drop_if_empty(timesheet)

    def _drop_if_empty(self, timesheet: dict[str, Any]) -> None:
        detail = timesheet["detail"]
        cells = [
            line.get(f"D{n} {name}")
            for section in ("Project", "Overhead")
            for line in detail[section]["Detail"]
            for n in range(1, 8)
            for name in CELL_FIELDS
        ]
        if not any(cells):
            del self.data.timesheets[detail["TimesheetKey"]]

    def add_late(self, day: date) -> str:
        with self.state.lock:
            employees = sorted(e["EmployeeKey"] for e in self.data.employees)
            free = next((e for e in employees if self._timesheet_for(e, day) is None), None)
            timesheet = self._new_timesheet(free, day) if free is not None else self._timesheet_for(employees[0], day)
            assert timesheet is not None
            project = next(p for p in self.data.projects if p["Status"] in WORKABLE_STATUSES)
            phase = project_phases(project)[0]
            activity_key, activity = ACTIVITIES[-1]
            line = project_line(project, phase["PhaseKey"], activity_key, activity, self._next_project_line_key())
            n = (day - self.data.week_first_day(timesheet)).days + 1
            line[f"D{n} Regular"] = 4.0
            line[f"D{n} Notes"] = "Entered late"
            timesheet["detail"]["Project"]["Detail"].append(line)
            refresh_totals(timesheet)
            return self._key(timesheet, "P", line, day)

    def expected_lines(self, first: date, last: date) -> pd.DataFrame:
        from .conform import timesheet_status

        with self.state.lock:
            cells = day_cells(self.data, first, last)
            flags = {
                key: {
                    "paid": ts["list"].get("Paid"),
                    "rejected": ts["list"].get("Rejected"),
                    "accounting_approved": ts["list"].get("Accounting Approved"),
                    "supervisor_approved": ts["list"].get("Supervisor Approved"),
                    "project_manager_approved": ts["list"].get("Project Manager Approved"),
                    "submitted": ts["list"].get("Submitted"),
                }
                for key, ts in self.data.timesheets.items()
            }
        rows = [
            {"entry_id": key, "work_date": _parse(key)[3], "total_hours": hours, **flags[_parse(key)[0]]}
            for key, hours in sorted(cells.items())
        ]
        frame = pd.DataFrame(rows, columns=["entry_id", "work_date", "total_hours", *next(iter(flags.values()), {})])
        frame["status"] = timesheet_status(frame) if len(frame) else pd.Series(dtype="string")
        return frame[["entry_id", "work_date", "total_hours", "status"]]
