"""A strict local fake of the Ajera API: one endpoint, ``POST /AjeraAPI.ashx?{id}``, dispatching
on ``Method``.

What it enforces (as documented, or as the Ajera notes in docs/contracts.md describe):

* the API id in the query string; a JSON body with a known ``Method``;
* sessions: ``CreateAPISession`` (``Username``/``Password``/``APIVersion`` 1 or 2 at the top
  level of the body, as Deltek's general API page shows it) issues a token that expires
  (``SessionExpiration``, and the ``token_expiry_after_calls`` fault knob); every other method
  needs a live ``SessionToken``; ``EndAPISession`` ends it. Timesheet methods need an API
  version 2 session (as real tenants answer);
* arguments: unknown argument names, wrong types and missing required arguments are refused;
* paging: ``PageResults``/``PageNumber``/``PageSize`` beside ``MethodArguments`` (defaults 1 and
  10, at most 1000 records); a paged answer carries ``PageSize``, ``PageNumber`` and
  ``PageCount`` next to ``Content``. Paging keys inside ``MethodArguments`` are unknown
  arguments;
* ``GetProjects`` answers version 2's flat lists (``Projects``, ``InvoiceGroups``, ``Phases``,
  ``Resources``) to a version 2 session and version 1's nested projects to a version 1 one;
* every refusal is the documented envelope under HTTP 200 — ``ResponseCode`` other than 200 and
  an ``Errors`` entry ``{"ErrorID", "ErrorMessage"}``; an invalid session is ``ResponseCode``
  401. Only a body that is not JSON gets HTTP 400 (with the same envelope).

Choices where the docs are silent: the status filters of ``ListTimesheets`` restrict only when
exactly one side of a pair is true (``FilterByPaid`` xor ``FilterByUnpaid``, likewise
Submitted/Unsubmitted); ``FilterByRejected: true`` keeps only rejected weeks. No rate limit is
documented, so none is enforced unless a test passes ``rate_rule``. ``list_cap`` (off unless
asked for) cuts ``ListTimesheets`` answers at that many records without saying so, as people
report the real API does at 500.

Data: ``timesheet_date`` says which reading the sandbox serves. ``week_ending`` (the default):
weeks run Monday..Sunday and ``TimesheetDate`` is the Sunday that ends them (D1 = TimesheetDate
− 6); ``week_starting``: weeks run Sunday..Saturday and ``TimesheetDate`` is the Sunday that
starts them. Either way every ``TimesheetDate`` is a Sunday, as in the document's examples, so
only the setting tells the readings apart. ``config.time_records`` timesheets are spread over
the weeks touching ``first_date..anchor_date`` (one per employee and week; more employees are
added when the configured ones cannot carry that many). Day cells outside
``first_date..anchor_date`` stay 0. ``sandbox.extra["mutations"]`` changes the data the way
Ajera users do (``sandbox_mutations.py``).
"""

from __future__ import annotations

import base64
import json
import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...sandbox.data import PROJECT_WORDS, SandboxConfig, person_name, quarter_hours
from ...sandbox.framework import RateRule, Sandbox, build_app
from .week import READINGS, WEEK_ENDING, first_day

API_ID = "ew0KICAiQ2xpZW50SUQiOiA0MjQyLA0KICAiRGF0YWJhc2VJRCI6IDcNCn0%3d"
USERNAME = "sandbox.integration"
PASSWORD = "ajera-sandbox-pass"
ENDPOINT = "/AjeraAPI.ashx"
SESSION_LIFETIME_SECONDS = 1800.0
MAX_PAGE_SIZE = 1000
API_VERSIONS = (1, 2)

OVERHEAD_GROUPS = ((30, "General"), (31, "Vacation"), (32, "Holiday"), (33, "Sick Leave"), (34, "Training"))
ACTIVITIES = ((5, "Project Management"), (6, "Design"), (7, "Drafting"), (8, "Site Visit"), (9, "Construction Admin"))
PHASES = ("Schematic Design", "Design Development", "Construction Documents", "Bidding", "Foyer Remodel")
PROJECT_NOTES = (
    "Meeting with client about submitted floor plans.",
    "Revised drawings after review.",
    "Site walk with contractor.",
    "Coordination call with engineers.",
    "Permit set corrections.",
)
OVERHEAD_NOTES = ("Dentist appointment", "Office move", "Internal training session", "Public holiday")
OT_NOTES = ("Deadline push", "Client deliverable due")


# -- envelope ---------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, code: int, message: str, error_id: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_id = error_id


def envelope(content: Any = None, *, code: int = 200, message: str = "Success", errors: list | None = None) -> dict:
    return {
        "ResponseCode": code,
        "Message": message,
        "Errors": errors or [],
        "Content": content,
        "UsageKey": "6e983af4-946f-4947-9fbd-a233f796f6b4",
    }


def error_envelope(code: int, text: str, error_id: int = 1) -> dict:
    status_text = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(code, "Error")
    return envelope(None, code=code, message=status_text, errors=[{"ErrorID": error_id, "ErrorMessage": text}])


def framework_error(kind: str, status: int, wait: float | None, retry_after: str | None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return JSONResponse(error_envelope(status, f"sandbox {kind}"), status_code=status, headers=headers)


# -- data ---------------------------------------------------------------------------------------
def period_start(day: date, reading: str) -> date:
    """``D1`` of the sandbox week holding ``day``: the Monday on or before it (``week_ending``:
    weeks end on Sunday) or the Sunday on or before it (``week_starting``)."""
    if reading == WEEK_ENDING:
        return day - timedelta(days=day.weekday())
    return day - timedelta(days=(day.weekday() + 1) % 7)


def timesheet_date_for(day: date, reading: str) -> date:
    """The ``TimesheetDate`` of the sandbox week holding ``day`` (always a Sunday)."""
    start = period_start(day, reading)
    return start + timedelta(days=6) if reading == WEEK_ENDING else start


def ajera_modified(moment: datetime) -> str:
    """A modification time the way Ajera's own answers write it:
    ``2017-01-08 18:38:53.367 GMT-05:00 (Eastern Standard Time)`` (the sandbox's clock is UTC)."""
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} GMT+00:00 (Coordinated Universal Time)"


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


@dataclass
class AjeraDataset:
    employees: list[dict[str, Any]]
    # Projects as version 1 nests them (invoice groups with their client and phases).
    projects: list[dict[str, Any]]
    # Timesheet Key -> {"list": ListTimesheets record, "detail": GetTimesheets record}
    timesheets: dict[int, dict[str, dict[str, Any]]]
    reading: str = WEEK_ENDING

    def week_first_day(self, timesheet: Mapping[str, Any]) -> date:
        """``D1`` of a stored timesheet under the reading this sandbox serves."""
        return first_day(date.fromisoformat(str(timesheet["detail"]["TimesheetDate"])[:10]), self.reading)


def _employees(config: SandboxConfig, count: int) -> list[dict[str, Any]]:
    rng = config.rng("ajera-employees")
    employees = []
    for index in range(count):
        first, last = person_name(rng)
        employees.append(
            {
                "EmployeeKey": 20 + index,
                "FirstName": first,
                "MiddleName": rng.choice(("", "A.", "E.", "J.")),
                "LastName": last,
                "Status": "Active",
                "CompanyKey": 1,
                "Title": rng.choice(("Architect", "Engineer", "Designer", "Drafter", "Project Manager")),
            }
        )
    return employees


PROJECT_STATUSES = (
    "Active",
    "Active",
    "Active",
    "Preliminary",
    "Hold",
    "WorkHold",
    "BillingHold",
    "Closed",
    "Marketing",
)
WORKABLE_STATUSES = ("Active", "BillingHold")  # time may be entered on them


def _projects(config: SandboxConfig, employees: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng = config.rng("ajera-projects")
    projects = []
    for index in range(config.projects):
        status = "Active" if index == 0 else rng.choice(PROJECT_STATUSES)
        start = config.anchor_date - timedelta(days=rng.randint(60, 700))
        manager = rng.choice(employees)
        phases = [
            {
                "PhaseKey": 1000 + index * 10 + p,
                "ID": f"{p + 1:02d}",
                "Description": PHASES[(index + p) % len(PHASES)],
                "Status": "Active",
            }
            for p in range(rng.randint(2, 3))
        ]
        client_words = rng.sample(PROJECT_WORDS, 2)
        modified = datetime.combine(
            config.anchor_date - timedelta(days=rng.randint(0, 90)), time(rng.randint(7, 18), 15), tzinfo=UTC
        )
        projects.append(
            {
                "ProjectKey": 100 + index,
                "LastModifiedDate": ajera_modified(modified),
                "ID": f"{start.year % 100:02d}-{index + 101:03d}",
                "Description": f"{rng.choice(PROJECT_WORDS)} {rng.choice(PROJECT_WORDS)} {index + 1:03d}",
                "Status": status,
                "CompanyKey": 1,
                "ProjectTypeDescription": rng.choice(("Architecture", "Landscape", "Engineering")),
                "Location": rng.choice(("Portland, OR", "Milwaukie, OR", "Salem, OR")),
                "ProjectManager": {
                    "EmployeeKey": manager["EmployeeKey"],
                    "FirstName": manager["FirstName"],
                    "MiddleName": manager["MiddleName"],
                    "LastName": manager["LastName"],
                },
                "EstimatedStartDate": start.isoformat(),
                "EstimatedCompletionDate": (start + timedelta(days=rng.randint(200, 900))).isoformat(),
                "ActualStartDate": start.isoformat() if status not in ("Preliminary", "Marketing") else None,
                "ActualCompletionDate": (config.anchor_date - timedelta(days=rng.randint(1, 40))).isoformat()
                if status == "Closed"
                else None,
                "InvoiceGroups": [
                    {
                        "InvoiceGroupKey": 2000 + index,
                        "Description": "",
                        "Client": {
                            "ClientKey": 500 + index,
                            "Description": f"{client_words[0]} {client_words[1]} Holdings",
                        },
                        "Phases": phases,
                    }
                ],
            }
        )
    return projects


def project_phases(project: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [phase for group in project.get("InvoiceGroups") or [] for phase in group.get("Phases") or []]


def flat_projects(projects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``GetProjects`` as API version 2 answers it: flat lists linked by keys."""
    out: dict[str, list[dict[str, Any]]] = {"Projects": [], "InvoiceGroups": [], "Phases": [], "Resources": []}
    for project in projects:
        key = project.get("ProjectKey")
        out["Projects"].append({k: v for k, v in project.items() if k != "InvoiceGroups"})
        for group in project.get("InvoiceGroups") or []:
            client = group.get("Client") or {}
            out["InvoiceGroups"].append(
                {
                    "InvoiceGroupKey": group.get("InvoiceGroupKey"),
                    "ProjectKey": key,
                    "Description": group.get("Description", ""),
                    "ClientKey": client.get("ClientKey"),
                    "ClientDescription": client.get("Description", ""),
                }
            )
            for phase in group.get("Phases") or []:
                out["Phases"].append(
                    {**phase, "ProjectKey": key, "InvoiceGroupKey": group.get("InvoiceGroupKey"), "ParentKey": key}
                )
    return out


def _section_totals(lines: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {}
    regular_sum = overtime_sum = 0.0
    for n in range(1, 8):
        regular = sum(float(line.get(f"D{n} Regular") or 0) for line in lines)
        overtime = sum(float(line.get(f"D{n} Overtime") or 0) for line in lines)
        totals[f"D{n}"] = regular + overtime
        totals[f"D{n} Regular"] = regular
        totals[f"D{n} Overtime"] = overtime
        regular_sum += regular
        overtime_sum += overtime
    totals.update({"Regular Hours": regular_sum, "OT Hours": overtime_sum, "Total Hours": regular_sum + overtime_sum})
    return totals


def _line_hours(line: Mapping[str, Any]) -> float:
    return sum(float(line.get(f"D{n} Regular") or 0) + float(line.get(f"D{n} Overtime") or 0) for n in range(1, 8))


def refresh_totals(timesheet: dict[str, dict[str, Any]]) -> None:
    detail, listed = timesheet["detail"], timesheet["list"]
    total = 0.0
    project_hours = 0.0
    for section in ("Project", "Overhead"):
        lines = detail[section]["Detail"]
        detail[section]["Totals"] = _section_totals(lines) if lines else {}
        hours = sum(_line_hours(line) for line in lines)
        total += hours
        if section == "Project":
            project_hours = hours
    detail["UnchangedData"] = {
        "Overhead": _b64(detail["Overhead"]["Detail"]),
        "Project": _b64(detail["Project"]["Detail"]),
    }
    listed["Timesheet Total"] = total
    listed["Actual Billable Percent"] = round(100 * project_hours / total) if total else 0


def _fill_days(
    rng: random.Random,
    line: dict[str, Any],
    week: date,
    config: SandboxConfig,
    days: list[int],
    low: float,
    high: float,
    notes: tuple[str, ...],
    overtime: bool,
) -> None:
    for n in range(1, 8):
        line[f"D{n} Regular"] = 0
    for n in days:
        day = week + timedelta(days=n - 1)
        if not config.first_date <= day <= config.anchor_date:
            continue
        line[f"D{n} Regular"] = quarter_hours(rng, low, high)
        if overtime and rng.random() < 0.1:
            line[f"D{n} Overtime"] = quarter_hours(rng, 0.5, 2)
            if rng.random() < 0.5:
                line[f"D{n} OT Notes"] = rng.choice(OT_NOTES)
        if rng.random() < 0.2:
            line[f"D{n} Notes"] = rng.choice(notes)


def _status_flags(rng: random.Random, age_weeks: int) -> dict[str, bool]:
    flags = dict.fromkeys(
        ("Submitted", "Supervisor Approved", "Accounting Approved", "Project Manager Approved", "Rejected", "Paid"),
        False,
    )
    if age_weeks >= 1 and rng.random() < 0.06:
        flags["Rejected"] = True
        return flags
    if age_weeks == 0:
        flags["Submitted"] = rng.random() < 0.3
        return flags
    flags["Submitted"] = True
    if age_weeks == 1:
        flags["Supervisor Approved"] = rng.random() < 0.3
    elif age_weeks <= 3:
        flags["Supervisor Approved"] = True
        flags["Project Manager Approved"] = rng.random() < 0.5
        flags["Accounting Approved"] = rng.random() < 0.6
    else:
        flags.update({"Supervisor Approved": True, "Project Manager Approved": True, "Accounting Approved": True})
        flags["Paid"] = rng.random() < 0.8
    return flags


def _workdays(rng: random.Random, week: date) -> list[int]:
    """Day numbers worked in the week starting ``week``: most weekdays, rarely a weekend day."""
    return [n for n in range(1, 8) if rng.random() < (0.75 if (week + timedelta(days=n - 1)).weekday() < 5 else 0.05)]


def build_dataset(config: SandboxConfig, reading: str = WEEK_ENDING) -> AjeraDataset:
    """Deterministic data for ``config`` and ``reading`` (same inputs, same records)."""
    if reading not in READINGS:
        raise ValueError(f"timesheet_date must be one of {', '.join(READINGS)}, got {reading!r}")
    first_week = period_start(config.first_date, reading)
    last_week = period_start(config.anchor_date, reading)
    weeks = [first_week + timedelta(weeks=i) for i in range((last_week - first_week).days // 7 + 1)]
    employee_count = max(config.employees, math.ceil(config.time_records / len(weeks)))
    employees = _employees(config, employee_count)
    projects = _projects(config, employees)
    workable = [p for p in projects if p["Status"] in WORKABLE_STATUSES]
    combos = [
        (p["ProjectKey"], phase["PhaseKey"], activity)
        for p in workable
        for phase in project_phases(p)
        for activity in ACTIVITIES
    ]
    by_key = {p["ProjectKey"]: p for p in projects}
    timesheets: dict[int, dict[str, dict[str, Any]]] = {}
    for index in range(config.time_records):
        rng = random.Random(f"ajera-timesheet:{config.seed}:{index}")
        week = weeks[index % len(weeks)]  # D1
        employee = employees[index // len(weeks)]
        key = 1000 + index
        chosen = rng.sample(combos, k=min(len(combos), rng.randint(1, 3)))
        project_lines = [
            project_line(by_key[project_key], phase_key, activity_key, activity, key * 10 + position + 1)
            for position, (project_key, phase_key, (activity_key, activity)) in enumerate(chosen)
        ]
        for line in project_lines:
            _fill_days(
                rng, line, week, config, _workdays(rng, week), 0.5, 9 / len(chosen), PROJECT_NOTES, overtime=True
            )
        overhead_lines = []
        if rng.random() < 0.4:
            group_key, group = rng.choice(OVERHEAD_GROUPS)
            line = {
                "Locked": False,
                "Timesheet Overhead Key": key,
                "Employee Key": employee["EmployeeKey"],
                "Timesheet Overhead Group Detail Key": group_key,
                "Timesheet Overhead Group Detail": group,
            }
            weekdays = [n for n in range(1, 8) if (week + timedelta(days=n - 1)).weekday() < 5]
            _fill_days(
                rng,
                line,
                week,
                config,
                sorted(rng.sample(weekdays, rng.randint(1, 2))),
                2,
                4,
                OVERHEAD_NOTES,
                overtime=False,
            )
            overhead_lines.append(line)
        flags = _status_flags(rng, (last_week - week).days // 7)
        timesheets[key] = new_timesheet(key, employee, week, reading, flags, project_lines, overhead_lines)
    return AjeraDataset(employees=employees, projects=projects, timesheets=timesheets, reading=reading)


def project_line(
    project: Mapping[str, Any], phase_key: int, activity_key: int, activity: str, line_key: int
) -> dict[str, Any]:
    """A ``Project.Detail`` line (no hours yet) for a phase and activity of ``project``."""
    phase = next(ph for ph in project_phases(project) if ph["PhaseKey"] == phase_key)
    line: dict[str, Any] = {
        "Timesheet Project Key": line_key,
        "Project Key": project["ProjectKey"],
        "Phase Key": phase_key,
        "Activity Key": activity_key,
        "Employee Type Key": 3,
        "Project Description": f"{project['ID']} {project['Description']}",
        "Phase Description": phase["Description"],
        "Activity": activity,
    }
    for n in range(1, 8):
        line[f"D{n} Regular"] = 0
    return line


def new_timesheet(
    key: int,
    employee: Mapping[str, Any],
    week: date,
    reading: str,
    flags: Mapping[str, bool],
    project_lines: list[dict[str, Any]],
    overhead_lines: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """A stored timesheet (list record + detail) for the week whose ``D1`` is ``week``."""
    timesheet_date = week + timedelta(days=6) if reading == WEEK_ENDING else week
    name = f"{employee['FirstName']} {employee['LastName']}"
    listed = {
        "Timesheet Key": key,
        "Company Key": 1,
        "Employee Key": employee["EmployeeKey"],
        "Employee Status": "Active",
        "Employee": name,
        "First Name": employee["FirstName"],
        "Middle Name": employee["MiddleName"],
        "Last Name": employee["LastName"],
        "My Employee": False,
        "Timesheet Date": timesheet_date.isoformat(),
        "Timesheet Total": 0,
        **dict.fromkeys(STATUS_FLAGS, False),
        "Billed": False,
        "Project Manager Approved Value": 0,
        "Paid Value": 0,
        "Rejected Value": 0,
        "Target Billable Percent": 80,
        "Actual Billable Percent": 0,
        "Company Name": "Accutera Architects",
        "Multilevel Employee": False,
    }
    set_status(listed, flags, f"{(week + timedelta(days=6)).isoformat()}T17:00:00")
    timesheet = {
        "list": listed,
        "detail": {
            "TimesheetKey": key,
            "TimesheetDate": f"{timesheet_date.isoformat()}T00:00:00",
            "EmployeeKey": employee["EmployeeKey"],
            "Overhead": {"Totals": {}, "Detail": overhead_lines},
            "Project": {"Totals": {}, "Detail": project_lines},
        },
    }
    refresh_totals(timesheet)
    return timesheet


STATUS_FLAGS = (
    "Submitted",
    "Supervisor Approved",
    "Accounting Approved",
    "Project Manager Approved",
    "Rejected",
    "Paid",
)


def set_status(listed: dict[str, Any], flags: Mapping[str, bool], when: str) -> None:
    """The list record's flags and the workflow fields that go with them."""
    listed.update({name: bool(flags.get(name, False)) for name in STATUS_FLAGS})
    name = listed.get("Employee", "")
    submitted = listed["Submitted"]
    listed.update(
        {
            "Billed": listed["Paid"],
            "Submitted Date": when if submitted else None,
            "Submitted By": name if submitted else "",
            "Accounting Approved Date": when if listed["Accounting Approved"] else None,
            "Accounting Approved By": "Accounting" if listed["Accounting Approved"] else "",
            "Supervisor Approved Date": when if listed["Supervisor Approved"] else None,
            "Supervisor Approved By": "Supervisor" if listed["Supervisor Approved"] else "",
        }
    )


def day_cells(dataset: AjeraDataset, first: date, last: date) -> dict[str, float]:
    """The non-empty day cells with a work date in ``first..last`` under the reading the
    sandbox serves, keyed like the client's day-rows (``{Timesheet Key}:{P|O}{line key}:{date}``),
    with regular + overtime hours."""
    cells: dict[str, float] = {}
    for key, timesheet in dataset.timesheets.items():
        detail = timesheet["detail"]
        week = dataset.week_first_day(timesheet)
        for section, letter, line_field in (
            ("Project", "P", "Timesheet Project Key"),
            ("Overhead", "O", "Timesheet Overhead Group Detail Key"),
        ):
            for line in detail[section]["Detail"]:
                for n in range(1, 8):
                    day = week + timedelta(days=n - 1)
                    if not first <= day <= last:
                        continue
                    hours = float(line.get(f"D{n} Regular") or 0) + float(line.get(f"D{n} Overtime") or 0)
                    noted = line.get(f"D{n} Notes") or line.get(f"D{n} OT Notes")
                    if hours or noted:
                        cells[f"{key}:{letter}{line[line_field]}:{day.isoformat()}"] = hours
    return cells


# -- sandbox state and methods ------------------------------------------------------------------
@dataclass
class AjeraState:
    config: SandboxConfig
    dataset: AjeraDataset
    session_lifetime_seconds: float = SESSION_LIFETIME_SECONDS
    list_cap: int | None = None  # ListTimesheets answers are cut at this many records, silently
    # Doc-conformant paging variants (the general page names no maximum and shows PageCount):
    page_size_cap: int | None = None  # serve at most this many per page, whatever PageSize asks
    page_count_field: bool = True  # answer PageSize/PageNumber/PageCount beside Content
    ignore_paging: bool = False  # answer every page with the whole list
    method_calls: Counter = field(default_factory=Counter)
    hidden_details: set[int] = field(default_factory=set)  # timesheets GetTimesheets leaves out
    hidden_projects: set[int] = field(default_factory=set)  # projects GetProjects leaves out
    lock: threading.RLock = field(default_factory=threading.RLock)

    def calls(self, method: str) -> int:
        with self.lock:
            return self.method_calls[method]


@dataclass
class Call:
    """One authenticated method call: its arguments and the session's API version."""

    args: Arguments
    api_version: int


class Arguments:
    """Typed, strict access to ``MethodArguments``."""

    def __init__(self, method: str, raw: Any, allowed: tuple[str, ...]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ApiError(400, f"{method}: MethodArguments must be an object")
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise ApiError(400, f"{method}: unknown argument(s) {', '.join(unknown)}")
        self.method = method
        self.raw = raw

    def _bad(self, name: str, expected: str) -> ApiError:
        return ApiError(400, f"{self.method}: {name} must be {expected}")

    def boolean(self, name: str) -> bool | None:
        value = self.raw.get(name)
        if value is not None and not isinstance(value, bool):
            raise self._bad(name, "a boolean")
        return value

    def integer(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._bad(name, "an integer")
        return value

    def int_list(self, name: str, required: bool = False) -> list[int] | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise ApiError(400, f"{self.method}: {name} is required")
            return None
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise self._bad(name, "an array of integers")
        if required and not value:
            raise ApiError(400, f"{self.method}: {name} must not be empty")
        return value

    def string(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is not None and not isinstance(value, str):
            raise self._bad(name, "a string")
        return value

    def string_list(self, name: str) -> list[str] | None:
        value = self.raw.get(name)
        if value is not None and (not isinstance(value, list) or any(not isinstance(v, str) for v in value)):
            raise self._bad(name, "an array of strings")
        return value

    def day(self, name: str) -> date | None:
        value = self.string(name)
        if value is None:
            return None
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise self._bad(name, "a date (YYYY-MM-DD)") from None


PAGING = ("PageResults", "PageNumber", "PageSize")
DEFAULT_PAGE_SIZE = 10  # the general API page's default
CREDENTIAL_FIELDS = ("Username", "Password", "APIVersion", "UseSessionCookie")


@dataclass
class Paging:
    number: int
    size: int

    @classmethod
    def of(cls, method: str, body: Mapping[str, Any]) -> Paging | None:
        """The paging a request asks for beside ``MethodArguments`` (``None``: not paged)."""
        wanted = body.get("PageResults")
        if wanted is None or wanted is False:
            return None
        if not isinstance(wanted, bool):
            raise ApiError(400, f"{method}: PageResults must be a boolean")
        number, size = body.get("PageNumber", 1), body.get("PageSize", DEFAULT_PAGE_SIZE)
        for name, value in (("PageNumber", number), ("PageSize", size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ApiError(400, f"{method}: {name} must be an integer")
        if number < 1:
            raise ApiError(400, f"{method}: PageNumber must be 1 or greater")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ApiError(400, f"{method}: PageSize must be between 1 and {MAX_PAGE_SIZE}")
        return cls(number, size)

    def apply(self, items: list[Any]) -> tuple[list[Any], dict[str, int]]:
        pages = math.ceil(len(items) / self.size)
        chunk = items[(self.number - 1) * self.size : self.number * self.size]
        return chunk, {"PageSize": self.size, "PageNumber": self.number, "PageCount": pages}


def _create_session(sandbox: Sandbox, state: AjeraState, body: dict[str, Any]) -> Any:
    arguments = body.get("MethodArguments")
    if arguments not in (None, {}):
        # The credentials belong at the top level of the body (the general API page).
        names = ", ".join(sorted(arguments)) if isinstance(arguments, dict) else "MethodArguments"
        raise ApiError(400, f"CreateAPISession: unknown argument(s) {names}")
    username, password = body.get("Username"), body.get("Password")
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise ApiError(400, "CreateAPISession: Username and Password are required")
    version = body.get("APIVersion")
    if isinstance(version, bool) or version not in API_VERSIONS:
        raise ApiError(400, f"CreateAPISession: APIVersion must be one of {', '.join(map(str, API_VERSIONS))}")
    cookie = body.get("UseSessionCookie")
    if cookie is not None and not isinstance(cookie, bool):
        raise ApiError(400, "CreateAPISession: UseSessionCookie must be a boolean")
    if username != USERNAME or password != PASSWORD:
        raise ApiError(401, "Invalid username or password.", error_id=2)
    issued = sandbox.tokens.issue(f"{username}:v{version}", state.session_lifetime_seconds)
    expires = datetime.now(UTC) + timedelta(seconds=state.session_lifetime_seconds)
    return {
        "SessionToken": issued.token,
        "SessionExpiration": expires.replace(microsecond=0).isoformat(),
        "AjeraVersion": "8.5.0.0",
        "APIVersion": version,
    }


def _require_version_2(method: str, call: Call) -> None:
    if call.api_version != 2:
        raise ApiError(
            400, f"Unauthorized method {method} for api version {call.api_version} but is supported with api version 2"
        )


def _list_timesheets(state: AjeraState, call: Call) -> Any:
    _require_version_2("ListTimesheets", call)
    args = call.args
    earliest = args.day("FilterByEarliestTimesheetDate")
    latest = args.day("FilterByLatestTimesheetDate")
    if earliest and latest and earliest > latest:
        raise ApiError(400, "ListTimesheets: FilterByEarliestTimesheetDate is after FilterByLatestTimesheetDate")
    companies = args.int_list("FilterByCompany")
    employees = args.int_list("FilterByEmployee")
    name_like = (args.string("FilterByNameLike") or "").lower()
    paid, unpaid = args.boolean("FilterByPaid"), args.boolean("FilterByUnpaid")
    submitted, unsubmitted = args.boolean("FilterBySubmitted"), args.boolean("FilterByUnsubmitted")
    rejected_only = args.boolean("FilterByRejected")
    out = []
    for timesheet in state.dataset.timesheets.values():
        record = timesheet["list"]
        day = date.fromisoformat(record["Timesheet Date"][:10])
        if (earliest and day < earliest) or (latest and day > latest):
            continue
        if companies is not None and record["Company Key"] not in companies:
            continue
        if employees is not None and record["Employee Key"] not in employees:
            continue
        if name_like and name_like not in record["Employee"].lower():
            continue
        if bool(paid) != bool(unpaid) and record["Paid"] != bool(paid):
            continue
        if bool(submitted) != bool(unsubmitted) and record["Submitted"] != bool(submitted):
            continue
        if rejected_only and not record["Rejected"]:
            continue
        out.append(dict(record))
    # A stable order (week, employee) decides which records a capped answer leaves out.
    out.sort(key=lambda r: tuple(str(r.get(k)) for k in ("Timesheet Date", "Employee Key", "Timesheet Key")))
    if state.list_cap is not None:
        out = out[: state.list_cap]
    return {"Timesheets": out}


def _get_timesheets(state: AjeraState, call: Call) -> Any:
    _require_version_2("GetTimesheets", call)
    keys = call.args.int_list("RequestedTimesheets", required=True) or []
    found = [
        json.loads(json.dumps(state.dataset.timesheets[k]["detail"]))
        for k in dict.fromkeys(keys)
        if k in state.dataset.timesheets and k not in state.hidden_details
    ]
    return {"Timesheets": found}


PROJECT_LIST_FIELDS = ("ProjectKey", "ID", "Description", "Status")


def _list_projects(state: AjeraState, call: Call) -> Any:
    args = call.args
    statuses = args.string_list("FilterByStatus")
    companies = args.int_list("FilterByCompany")
    earliest = args.day("FilterByEarliestModifiedDate")
    latest = args.day("FilterByLatestModifiedDate")
    chosen = []
    for project in state.dataset.projects:
        modified = date.fromisoformat(str(project["LastModifiedDate"])[:10])
        if statuses is not None and project["Status"] not in statuses:
            continue
        if companies is not None and project["CompanyKey"] not in companies:
            continue
        if (earliest and modified < earliest) or (latest and modified > latest):
            continue
        chosen.append({k: project[k] for k in PROJECT_LIST_FIELDS})
    return {"Projects": chosen}


def _get_projects(state: AjeraState, call: Call) -> Any:
    keys = set(call.args.int_list("RequestedProjects", required=True) or [])
    chosen = [
        json.loads(json.dumps(p))
        for p in state.dataset.projects
        if p["ProjectKey"] in keys and p["ProjectKey"] not in state.hidden_projects
    ]
    return flat_projects(chosen) if call.api_version == 2 else {"Projects": chosen}


def _list_employees(state: AjeraState, call: Call) -> Any:
    statuses = call.args.string_list("FilterByStatus")
    chosen = [
        {k: e[k] for k in ("EmployeeKey", "FirstName", "MiddleName", "LastName", "Status")}
        for e in state.dataset.employees
        if statuses is None or e["Status"] in statuses
    ]
    return {"Employees": chosen}


def _get_employees(state: AjeraState, call: Call) -> Any:
    keys = set(call.args.int_list("RequestedEmployees", required=True) or [])
    return {"Employees": [dict(e) for e in state.dataset.employees if e["EmployeeKey"] in keys]}


# Method -> (allowed MethodArguments, handler, the Content list that PageResults pages or None)
METHODS: dict[str, tuple[tuple[str, ...], Callable[[AjeraState, Call], Any], str | None]] = {
    "ListTimesheets": (
        (
            "FilterByCompany",
            "FilterByEmployee",
            "FilterByNameLike",
            "FilterByPaid",
            "FilterByUnpaid",
            "FilterBySubmitted",
            "FilterByUnsubmitted",
            "FilterByRejected",
            "FilterByEarliestTimesheetDate",
            "FilterByLatestTimesheetDate",
        ),
        _list_timesheets,
        "Timesheets",
    ),
    "GetTimesheets": (("RequestedTimesheets",), _get_timesheets, None),
    "ListProjects": (
        ("FilterByStatus", "FilterByCompany", "FilterByEarliestModifiedDate", "FilterByLatestModifiedDate"),
        _list_projects,
        "Projects",
    ),
    "GetProjects": (("RequestedProjects",), _get_projects, None),
    "ListEmployees": (("FilterByStatus",), _list_employees, "Employees"),
    "GetEmployees": (("RequestedEmployees",), _get_employees, None),
}
SESSION_METHODS = ("CreateAPISession", "EndAPISession")


def _dispatch(sandbox: Sandbox, state: AjeraState, body: dict[str, Any]) -> tuple[Any, dict[str, int]]:
    """``Content`` of the answer and the paging fields that go beside it."""
    method = body.get("Method")
    if not isinstance(method, str) or not method:
        raise ApiError(400, "Method is required")
    with state.lock:
        state.method_calls[method] += 1
    if method == "CreateAPISession":
        return _create_session(sandbox, state, body), {}
    if method not in METHODS and method != "EndAPISession":
        raise ApiError(400, f"Unknown method '{method}'")
    token = body.get("SessionToken")
    if not isinstance(token, str) or not token:
        raise ApiError(401, "SessionToken is required.", error_id=3)
    issued = sandbox.tokens.validate(token)
    if issued is None:
        raise ApiError(401, "Invalid or expired session token.", error_id=3)
    if method == "EndAPISession":
        sandbox.tokens.revoke(token)
        return None, {}
    allowed, handler, paged = METHODS[method]
    paging = Paging.of(method, body)
    version = int(issued.principal.rsplit(":v", 1)[1])
    with state.lock:
        content = handler(state, Call(Arguments(method, body.get("MethodArguments"), allowed), version))
    if paging is None or paged is None or state.ignore_paging:
        return content, {}
    if state.page_size_cap is not None:
        paging = Paging(paging.number, min(paging.size, state.page_size_cap))
    records, fields = paging.apply(content[paged])
    return {**content, paged: records}, fields if state.page_count_field else {}


def create_app(
    config: SandboxConfig,
    *,
    timesheet_date: str = WEEK_ENDING,
    list_cap: int | None = None,
    session_lifetime_seconds: float = SESSION_LIFETIME_SECONDS,
    rate_rule: RateRule | None = None,
) -> Starlette:
    """The sandbox app. ``timesheet_date``: the week reading it serves; ``list_cap``: cut
    ``ListTimesheets`` answers at that many records (the real API's reported 500)."""
    from .sandbox_mutations import AjeraMutations

    sandbox = Sandbox(name="ajera", rate_rule=rate_rule, error=framework_error)
    state = AjeraState(
        config=config,
        dataset=build_dataset(config, timesheet_date),
        session_lifetime_seconds=session_lifetime_seconds,
        list_cap=list_cap,
    )
    sandbox.extra["ajera"] = state
    sandbox.extra["mutations"] = AjeraMutations(state)

    async def api(request: Request) -> Response:
        if unquote(request.url.query) != unquote(API_ID):
            return JSONResponse(error_envelope(400, "The API id in the URL is missing or not valid.", error_id=4))
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(error_envelope(400, "Request body is not valid JSON."), status_code=400)
        if not isinstance(body, dict):
            return JSONResponse(error_envelope(400, "Request body must be a JSON object."), status_code=400)
        try:
            content, paging = _dispatch(sandbox, state, body)
        except ApiError as exc:
            return JSONResponse(error_envelope(exc.code, exc.message, exc.error_id))
        answer = envelope(content)
        if paging:
            # Beside Content, as the general API page shows a paged answer.
            answer = {**{k: v for k, v in answer.items() if k != "Content"}, **paging, "Content": content}
        return JSONResponse(answer)

    app = build_app(sandbox, [Route(ENDPOINT, api, methods=["POST"])])
    app.state.ajera = state
    return app


# -- contract helpers ---------------------------------------------------------------------------
def sandbox_env(base_url: str, timesheet_date: str | None = None) -> dict[str, str]:
    """The variables that point the resource at a sandbox (``timesheet_date``: the reading a
    sandbox created with a non-default one serves)."""
    env = {
        "AJERA_BASE_URL": base_url.rstrip("/") + ENDPOINT,
        "AJERA_API_ID": API_ID,
        "AJERA_USERNAME": USERNAME,
        "AJERA_PASSWORD": PASSWORD,
    }
    if timesheet_date is not None:
        env["AJERA_TIMESHEET_DATE"] = timesheet_date
    return env


def expected_timesheets(config: SandboxConfig, first: date, last: date, timesheet_date: str = WEEK_ENDING) -> dict:
    cells = day_cells(build_dataset(config, timesheet_date), first, last)
    return {"lines": len(cells), "total_hours": sum(cells.values())}


def expected_projects(config: SandboxConfig) -> int:
    return config.projects


def ajera_state(app_or_server: Any) -> AjeraState:
    app = getattr(app_or_server, "app", app_or_server)
    return app.state.ajera


# -- test knobs -------------------------------------------------------------------------------
def touch_timesheets(state: AjeraState, fraction: float, seed: int = 0) -> list[int]:
    """Add half an hour to one worked day of ~``fraction`` of the timesheets (late edits)."""
    rng = random.Random(f"ajera-touch:{seed}")
    with state.lock:
        candidates = [
            key
            for key, ts in state.dataset.timesheets.items()
            if any(line.get(f"D{n} Regular") for line in ts["detail"]["Project"]["Detail"] for n in range(1, 8))
        ]
        chosen = sorted(
            rng.sample(candidates, k=min(len(candidates), max(1, round(fraction * len(state.dataset.timesheets)))))
        )
        for key in chosen:
            timesheet = state.dataset.timesheets[key]
            for line in timesheet["detail"]["Project"]["Detail"]:
                worked = [n for n in range(1, 8) if line.get(f"D{n} Regular")]
                if worked:
                    line[f"D{worked[0]} Regular"] = float(line[f"D{worked[0]} Regular"]) + 0.5
                    break
            refresh_totals(timesheet)
    return chosen


def corrupt_timesheet(state: AjeraState, key: int) -> None:
    """Give one project line of timesheet ``key`` an hours cell that is not a number."""
    with state.lock:
        lines = state.dataset.timesheets[key]["detail"]["Project"]["Detail"]
        lines[-1]["D4 Regular"] = "eight"
