"""A strict local fake of the Ajera API: one endpoint, ``POST /AjeraAPI.ashx?{id}``, dispatching
on ``Method``.

What it enforces (as documented, or as the Ajera notes in docs/contracts.md describe):

* the API id in the query string; a JSON body with a known ``Method``;
* sessions: ``CreateAPISession`` (username/password, ``APIVersion`` 1 or 2) issues a token that
  expires (``SessionExpiration``, and the ``token_expiry_after_calls`` fault knob); every other
  method needs a live ``SessionToken``; ``EndAPISession`` ends it;
* arguments: unknown argument names, wrong types and missing required arguments are refused;
  ``PageResults``/``PageNumber``/``PageSize`` paging (pages from 1, at most 1000 records);
* every refusal is the documented envelope under HTTP 200 — ``ResponseCode`` other than 200 and
  an ``Errors`` entry ``{"ErrorID", "ErrorMessage"}``; an invalid session is ``ResponseCode``
  401. Only a body that is not JSON gets HTTP 400 (with the same envelope).

Choices where the docs are silent: ``CreateAPISession`` takes its credentials at the top level
of the body or in ``MethodArguments``. The status filters of ``ListTimesheets`` restrict only
when exactly one side of a pair is true (``FilterByPaid`` xor ``FilterByUnpaid``, likewise
Submitted/Unsubmitted); ``FilterByRejected: true`` keeps only rejected weeks. No rate limit is
documented, so none is enforced unless a test passes ``rate_rule``.

Data: weeks start on Sunday; ``D1``..``D7`` run Sunday..Saturday. ``config.time_records``
timesheets are spread over the weeks touching ``first_date..anchor_date`` (one per employee and
week; more employees are added when the configured ones cannot carry that many). Day cells
outside ``first_date..anchor_date`` stay 0.
"""

from __future__ import annotations

import base64
import json
import math
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...sandbox.data import PROJECT_WORDS, SandboxConfig, person_name, quarter_hours
from ...sandbox.framework import RateRule, Sandbox, build_app

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
    "Meeting with client about submitted floor plans.", "Revised drawings after review.",
    "Site walk with contractor.", "Coordination call with engineers.", "Permit set corrections.",
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
def week_start(day: date) -> date:
    """The Sunday on or before ``day``."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


@dataclass
class AjeraDataset:
    employees: list[dict[str, Any]]
    projects: list[dict[str, Any]]
    # Timesheet Key -> {"list": ListTimesheets record, "detail": GetTimesheets record}
    timesheets: dict[int, dict[str, dict[str, Any]]]


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


def _projects(config: SandboxConfig, employees: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng = config.rng("ajera-projects")
    projects = []
    for index in range(config.projects):
        status = "Active" if index == 0 else rng.choice(("Active", "Active", "Active", "Preliminary", "Inactive", "Hold"))
        start = config.anchor_date - timedelta(days=rng.randint(60, 700))
        manager = rng.choice(employees)
        phases = [
            {"PhaseKey": 1000 + index * 10 + p, "ID": f"{p + 1:02d}", "Description": PHASES[(index + p) % len(PHASES)], "Status": "Active"}
            for p in range(rng.randint(2, 3))
        ]
        client_words = rng.sample(PROJECT_WORDS, 2)
        projects.append(
            {
                "ProjectKey": 100 + index,
                "ID": f"{start.year % 100:02d}-{index + 101:03d}",
                "Description": f"{rng.choice(PROJECT_WORDS)} {rng.choice(PROJECT_WORDS)} {index + 1:03d}",
                "Status": status,
                "CompanyKey": 1,
                "ProjectType": rng.choice(("Architecture", "Landscape", "Engineering")),
                "Location": rng.choice(("Portland, OR", "Milwaukie, OR", "Salem, OR")),
                "ProjectManager": {
                    "EmployeeKey": manager["EmployeeKey"],
                    "Name": f"{manager['FirstName']} {manager['LastName']}",
                },
                "Client": {"ClientKey": 500 + index, "Description": f"{client_words[0]} {client_words[1]} Holdings"},
                "EstimatedStartDate": start.isoformat(),
                "EstimatedCompletionDate": (start + timedelta(days=rng.randint(200, 900))).isoformat(),
                "ActualStartDate": start.isoformat() if status != "Preliminary" else None,
                "ActualCompletionDate": (config.anchor_date - timedelta(days=rng.randint(1, 40))).isoformat()
                if status == "Inactive"
                else None,
                "LastModifiedDate": f"{(config.anchor_date - timedelta(days=rng.randint(0, 90))).isoformat()}T{rng.randint(7, 18):02d}:15:00",
                "Phases": phases,
            }
        )
    return projects


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


def _refresh_totals(timesheet: dict[str, dict[str, Any]]) -> None:
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
    detail["UnchangedData"] = {"Overhead": _b64(detail["Overhead"]["Detail"]), "Project": _b64(detail["Project"]["Detail"])}
    listed["Timesheet Total"] = total
    listed["Actual Billable Percent"] = round(100 * project_hours / total) if total else 0


def _fill_days(
    rng: random.Random, line: dict[str, Any], week: date, config: SandboxConfig, days: list[int], low: float, high: float,
    notes: tuple[str, ...], overtime: bool,
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


def build_dataset(config: SandboxConfig) -> AjeraDataset:
    """Deterministic data for ``config`` (same seed and sizes, same records)."""
    first_week = week_start(config.first_date)
    last_week = week_start(config.anchor_date)
    weeks = [first_week + timedelta(weeks=i) for i in range((last_week - first_week).days // 7 + 1)]
    employee_count = max(config.employees, math.ceil(config.time_records / len(weeks)))
    employees = _employees(config, employee_count)
    projects = _projects(config, employees)
    workable = [p for p in projects if p["Status"] in ("Active", "Hold")]
    combos = [
        (p["ProjectKey"], phase["PhaseKey"], activity)
        for p in workable
        for phase in p["Phases"]
        for activity in ACTIVITIES
    ]
    by_key = {p["ProjectKey"]: p for p in projects}
    timesheets: dict[int, dict[str, dict[str, Any]]] = {}
    for index in range(config.time_records):
        rng = random.Random(f"ajera-timesheet:{config.seed}:{index}")
        week = weeks[index % len(weeks)]
        employee = employees[index // len(weeks)]
        key = 1000 + index
        chosen = rng.sample(combos, k=min(len(combos), rng.randint(1, 3)))
        project_lines = []
        for position, (project_key, phase_key, (activity_key, activity)) in enumerate(chosen):
            project = by_key[project_key]
            phase = next(ph for ph in project["Phases"] if ph["PhaseKey"] == phase_key)
            line: dict[str, Any] = {
                "Timesheet Project Key": key * 10 + position + 1,
                "Project Key": project_key,
                "Phase Key": phase_key,
                "Activity Key": activity_key,
                "Employee Type Key": 3,
                "Project Description": f"{project['ID']} {project['Description']}",
                "Phase Description": phase["Description"],
                "Activity": activity,
            }
            workdays = [n for n in range(2, 7) if rng.random() < 0.75] + [n for n in (1, 7) if rng.random() < 0.05]
            _fill_days(rng, line, week, config, sorted(workdays), 0.5, 9 / len(chosen), PROJECT_NOTES, overtime=True)
            project_lines.append(line)
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
            _fill_days(rng, line, week, config, sorted(rng.sample(range(2, 7), rng.randint(1, 2))), 2, 4, OVERHEAD_NOTES, overtime=False)
            overhead_lines.append(line)
        flags = _status_flags(rng, (last_week - week).days // 7)
        name = f"{employee['FirstName']} {employee['LastName']}"
        submitted_at = f"{(week + timedelta(days=6)).isoformat()}T17:00:00" if flags["Submitted"] else None
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
            "Timesheet Date": week.isoformat(),
            "Timesheet Total": 0,
            **flags,
            "Billed": flags["Paid"],
            "Project Manager Approved Value": 0,
            "Paid Value": 0,
            "Rejected Value": 0,
            "Target Billable Percent": 80,
            "Actual Billable Percent": 0,
            "Company Name": "Accutera Architects",
            "Multilevel Employee": False,
            "Submitted Date": submitted_at,
            "Submitted By": name if flags["Submitted"] else "",
            "Accounting Approved Date": submitted_at if flags["Accounting Approved"] else None,
            "Accounting Approved By": "Accounting" if flags["Accounting Approved"] else "",
            "Supervisor Approved Date": submitted_at if flags["Supervisor Approved"] else None,
            "Supervisor Approved By": "Supervisor" if flags["Supervisor Approved"] else "",
        }
        detail = {
            "TimesheetKey": key,
            "TimesheetDate": f"{week.isoformat()}T00:00:00",
            "EmployeeKey": employee["EmployeeKey"],
            "Overhead": {"Totals": {}, "Detail": overhead_lines},
            "Project": {"Totals": {}, "Detail": project_lines},
        }
        timesheets[key] = {"list": listed, "detail": detail}
        _refresh_totals(timesheets[key])
    return AjeraDataset(employees=employees, projects=projects, timesheets=timesheets)


def day_cells(dataset: AjeraDataset, first: date, last: date) -> dict[str, float]:
    """The non-empty day cells with a work date in ``first..last``, keyed like the client's
    day-rows (``{Timesheet Key}:{P|O}{line key}:{date}``), with regular + overtime hours."""
    cells: dict[str, float] = {}
    for key, timesheet in dataset.timesheets.items():
        detail = timesheet["detail"]
        week = date.fromisoformat(detail["TimesheetDate"][:10])
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
    method_calls: Counter = field(default_factory=Counter)
    hidden_details: set[int] = field(default_factory=set)  # timesheets GetTimesheets leaves out
    hidden_projects: set[int] = field(default_factory=set)  # projects GetProjects leaves out
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str) -> int:
        with self.lock:
            return self.method_calls[method]


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

    def page(self, items: list[Any]) -> list[Any]:
        if not self.boolean("PageResults"):
            return items
        number, size = self.integer("PageNumber"), self.integer("PageSize")
        if number is None or size is None:
            raise ApiError(400, f"{self.method}: PageNumber and PageSize are required when PageResults is true")
        if number < 1:
            raise ApiError(400, f"{self.method}: PageNumber must be 1 or greater")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ApiError(400, f"{self.method}: PageSize must be between 1 and {MAX_PAGE_SIZE}")
        return items[(number - 1) * size : number * size]


PAGING = ("PageResults", "PageNumber", "PageSize")
CREDENTIAL_FIELDS = ("Username", "Password", "APIVersion", "UseSessionCookie")


def _create_session(sandbox: Sandbox, state: AjeraState, body: dict[str, Any]) -> Any:
    arguments = body.get("MethodArguments") or {}
    if not isinstance(arguments, dict):
        raise ApiError(400, "CreateAPISession: MethodArguments must be an object")
    unknown = sorted(set(arguments) - set(CREDENTIAL_FIELDS))
    if unknown:
        raise ApiError(400, f"CreateAPISession: unknown argument(s) {', '.join(unknown)}")
    merged = {**arguments, **{k: body[k] for k in CREDENTIAL_FIELDS if k in body}}
    username, password = merged.get("Username"), merged.get("Password")
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise ApiError(400, "CreateAPISession: Username and Password are required")
    version = merged.get("APIVersion")
    if isinstance(version, bool) or version not in API_VERSIONS:
        raise ApiError(400, f"CreateAPISession: APIVersion must be one of {', '.join(map(str, API_VERSIONS))}")
    cookie = merged.get("UseSessionCookie")
    if cookie is not None and not isinstance(cookie, bool):
        raise ApiError(400, "CreateAPISession: UseSessionCookie must be a boolean")
    if username != USERNAME or password != PASSWORD:
        raise ApiError(401, "Invalid username or password.", error_id=2)
    issued = sandbox.tokens.issue(f"{username}:v{version}", state.session_lifetime_seconds)
    expires = datetime.now(timezone.utc) + timedelta(seconds=state.session_lifetime_seconds)
    return {
        "SessionToken": issued.token,
        "SessionExpiration": expires.replace(microsecond=0).isoformat(),
        "AjeraVersion": "8.5.0.0",
        "APIVersion": version,
    }


def _list_timesheets(state: AjeraState, args: Arguments) -> Any:
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
        day = date.fromisoformat(record["Timesheet Date"])
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
    return {"Timesheets": out}


def _get_timesheets(state: AjeraState, args: Arguments) -> Any:
    keys = args.int_list("RequestedTimesheets", required=True) or []
    found = [
        json.loads(json.dumps(state.dataset.timesheets[k]["detail"]))
        for k in dict.fromkeys(keys)
        if k in state.dataset.timesheets and k not in state.hidden_details
    ]
    return {"Timesheets": found}


PROJECT_LIST_FIELDS = ("ProjectKey", "ID", "Description", "Status")


def _list_projects(state: AjeraState, args: Arguments) -> Any:
    statuses = args.string_list("FilterByStatus")
    companies = args.int_list("FilterByCompany")
    earliest = args.day("FilterByEarliestModifiedDate")
    latest = args.day("FilterByLatestModifiedDate")
    chosen = []
    for project in state.dataset.projects:
        modified = date.fromisoformat(project["LastModifiedDate"][:10])
        if statuses is not None and project["Status"] not in statuses:
            continue
        if companies is not None and project["CompanyKey"] not in companies:
            continue
        if (earliest and modified < earliest) or (latest and modified > latest):
            continue
        chosen.append({k: project[k] for k in PROJECT_LIST_FIELDS})
    return {"Projects": args.page(chosen)}


def _get_projects(state: AjeraState, args: Arguments) -> Any:
    keys = set(args.int_list("RequestedProjects", required=True) or [])
    return {
        "Projects": [
            dict(p) for p in state.dataset.projects if p["ProjectKey"] in keys and p["ProjectKey"] not in state.hidden_projects
        ]
    }


def _list_employees(state: AjeraState, args: Arguments) -> Any:
    statuses = args.string_list("FilterByStatus")
    chosen = [
        {k: e[k] for k in ("EmployeeKey", "FirstName", "MiddleName", "LastName", "Status")}
        for e in state.dataset.employees
        if statuses is None or e["Status"] in statuses
    ]
    return {"Employees": args.page(chosen)}


def _get_employees(state: AjeraState, args: Arguments) -> Any:
    keys = set(args.int_list("RequestedEmployees", required=True) or [])
    return {"Employees": [dict(e) for e in state.dataset.employees if e["EmployeeKey"] in keys]}


# Method -> (allowed MethodArguments, handler)
METHODS: dict[str, tuple[tuple[str, ...], Callable[[AjeraState, Arguments], Any]]] = {
    "ListTimesheets": (
        (
            "FilterByCompany", "FilterByEmployee", "FilterByNameLike", "FilterByPaid", "FilterByUnpaid",
            "FilterBySubmitted", "FilterByUnsubmitted", "FilterByRejected",
            "FilterByEarliestTimesheetDate", "FilterByLatestTimesheetDate",
        ),
        _list_timesheets,
    ),
    "GetTimesheets": (("RequestedTimesheets",), _get_timesheets),
    "ListProjects": (
        ("FilterByStatus", "FilterByCompany", "FilterByEarliestModifiedDate", "FilterByLatestModifiedDate", *PAGING),
        _list_projects,
    ),
    "GetProjects": (("RequestedProjects",), _get_projects),
    "ListEmployees": (("FilterByStatus", *PAGING), _list_employees),
    "GetEmployees": (("RequestedEmployees",), _get_employees),
}
SESSION_METHODS = ("CreateAPISession", "EndAPISession")


def _dispatch(sandbox: Sandbox, state: AjeraState, body: dict[str, Any]) -> Any:
    method = body.get("Method")
    if not isinstance(method, str) or not method:
        raise ApiError(400, "Method is required")
    with state.lock:
        state.method_calls[method] += 1
    if method == "CreateAPISession":
        return _create_session(sandbox, state, body)
    if method not in METHODS and method != "EndAPISession":
        raise ApiError(400, f"Unknown method '{method}'")
    token = body.get("SessionToken")
    if not isinstance(token, str) or not token:
        raise ApiError(401, "SessionToken is required.", error_id=3)
    if sandbox.tokens.validate(token) is None:
        raise ApiError(401, "Invalid or expired session token.", error_id=3)
    if method == "EndAPISession":
        sandbox.tokens.revoke(token)
        return None
    allowed, handler = METHODS[method]
    return handler(state, Arguments(method, body.get("MethodArguments"), allowed))


def create_app(
    config: SandboxConfig,
    *,
    session_lifetime_seconds: float = SESSION_LIFETIME_SECONDS,
    rate_rule: RateRule | None = None,
) -> Starlette:
    sandbox = Sandbox(name="ajera", rate_rule=rate_rule, error=framework_error)
    state = AjeraState(config=config, dataset=build_dataset(config), session_lifetime_seconds=session_lifetime_seconds)
    sandbox.extra["ajera"] = state

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
            content = _dispatch(sandbox, state, body)
        except ApiError as exc:
            return JSONResponse(error_envelope(exc.code, exc.message, exc.error_id))
        return JSONResponse(envelope(content))

    app = build_app(sandbox, [Route(ENDPOINT, api, methods=["POST"])])
    app.state.ajera = state
    return app


# -- contract helpers ---------------------------------------------------------------------------
def sandbox_env(base_url: str) -> dict[str, str]:
    return {
        "AJERA_BASE_URL": base_url.rstrip("/") + ENDPOINT,
        "AJERA_API_ID": API_ID,
        "AJERA_USERNAME": USERNAME,
        "AJERA_PASSWORD": PASSWORD,
    }


def expected_timesheets(config: SandboxConfig, first: date, last: date) -> dict:
    cells = day_cells(build_dataset(config), first, last)
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
        chosen = sorted(rng.sample(candidates, k=min(len(candidates), max(1, round(fraction * len(state.dataset.timesheets))))))
        for key in chosen:
            timesheet = state.dataset.timesheets[key]
            for line in timesheet["detail"]["Project"]["Detail"]:
                worked = [n for n in range(1, 8) if line.get(f"D{n} Regular")]
                if worked:
                    line[f"D{worked[0]} Regular"] = float(line[f"D{worked[0]} Regular"]) + 0.5
                    break
            _refresh_totals(timesheet)
    return chosen


def corrupt_timesheet(state: AjeraState, key: int) -> None:
    """Give one project line of timesheet ``key`` an hours cell that is not a number."""
    with state.lock:
        lines = state.dataset.timesheets[key]["detail"]["Project"]["Detail"]
        lines[-1]["D4 Regular"] = "eight"
