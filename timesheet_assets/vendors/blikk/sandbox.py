"""A strict local fake of the Blikk public API, written from the API document.

What it enforces, as the document describes it:

* ``POST /v1/Auth/Token`` with ``Authorization: Basic base64(id:secret)`` → ``auth.token`` with
  ``accessToken`` and ``expires`` (``2022-07-01 05:43:12 +00:00``); every other endpoint needs
  ``Authorization: Bearer <token>`` and answers 401 ``{"message": "Invalid token"}`` otherwise.
* More than four requests in any one-second window per access token → 429 with
  ``Retry-After`` (seconds) and ``{"waitInSeconds": n}``. The document only limits access
  tokens; the token endpoint is limited the same way per application id (a decision: it keeps
  a client that fetches a token per request from going unnoticed).
  ``BlikkData.rate_limit_scope = "application"`` puts all tokens of the application on one
  budget — stricter than the document, for showing that concurrent runs share the limit.
* Lists: ``page`` required (≥ 1), ``pageSize`` 1–100 (default 25), ``sortBy`` / ``sortOrder``
  from the documented values, the documented filters with their types; anything else → 400
  ``{"message": "The request is invalid.", "modelState": {...}}``. Query parameter names are
  matched case-insensitively (the document itself writes ``sortorder``). A page past the end
  answers an empty ``items`` array.
* 403 bodies for missing permissions (``permissionsRequired``) and IP restrictions
  (``ipAddressAllowed: false``) via ``BlikkData.denied_permissions`` / ``ip_allowed``; 404
  with an empty body for unknown URLs; 500 with ``requestId``; 502/503 with an empty body.
  Permissions: ``Timereport_Read`` and ``Project_Read`` as documented; the document names none
  for the admin registries, so the sandbox uses ``User_Read``, ``InternalProject_Read`` and
  ``AbsenceProject_Read`` to be able to refuse them.

Endpoints: ``/v1/Auth/Token``, ``/v1/Core/TimeReports``,
``/v1/Core/TimeReports/UserDayStatistics``, ``/v1/Core/Projects``, ``/v1/Admin/Users``,
``/v1/Admin/InternalProjects``, ``/v1/Admin/AbsenceProjects`` — the ones the pipeline reads.
UserDayStatistics lists the users (paged, ``sortBy=name``, ``filter.userIds`` /
``filter.departmentIds``), each with every day of ``filter.from``..``filter.to`` (at most 31
days) and the hours reported on it; which reports count is ``BlikkData.reported_hours_counts``
(the document does not say). Where reports without a value go in a sorted list is
``BlikkData.nulls_sort`` (not documented either).

Data is generated from ``SandboxConfig`` (seed, sizes, ``anchor_date``, ``days``): users,
projects with customers and statuses, internal and absence projects (one retired each), and
time reports spread over the days of the window, including
late edits (``updatedDate`` days after ``date``), reports sent to attest and attested,
internal and absence projects, overtime time codes and user references without a name.
Tests change the data through ``BlikkData`` and can hook each served page
(``BlikkData.page_hooks``) to change it in the middle of a client's walk, or to serve a page
in a drifted or malformed shape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...sandbox.data import (
    PROJECT_WORDS,
    TASKS,
    SandboxConfig,
    person_name,
    project_name,
    quarter_hours,
)
from ...sandbox.framework import RateRule, Sandbox, build_app
from ...sandbox.tokens import bearer_token

if TYPE_CHECKING:
    import pandas as pd

SANDBOX_APP_ID = "sandbox-blikk-app"
SANDBOX_APP_SECRET = "sandbox-blikk-secret"
TOKEN_LIFETIME_SECONDS = 3600.0
REQUESTS_PER_SECOND = 4
DAY_CAP_HOURS = 12.0

TIME_CODES = ((16, "Normal"), (17, "Övertid"))
TIME_ARTICLES = ((49, "Work hours"), (50, "Travel time"))
ACTIVITIES = tuple((30 + i, name) for i, name in enumerate(TASKS))
PROJECT_STATUSES = (
    (1, "Ongoing", False),
    (2, "Not started", False),
    (3, "Completed", True),
    (4, "Cancelled", True),
)
# (id, name, active): one retired entry each, so inactive registry entries are covered.
INTERNAL_PROJECTS = ((1, "Internal meetings", True), (2, "Education", True), (3, "Trade fair 2023", False))
ABSENCE_PROJECTS = ((1, "Vacation", True), (2, "Sick leave", True), (3, "Parental leave (old code)", False))
CUSTOMERS = (
    (87, "Nordbygg AB"),
    (88, "Piteå Kommun"),
    (89, "Lulekraft AB"),
    (90, "Familjen Larsson"),
    (91, "Bostadsbolaget"),
)
OWN_COMPANY = (1, "Blikk Bygg AB")
COMMENTS = (
    "Formwork",
    "Pouring concrete",
    "Client meeting",
    "Drawings revised",
    "Site inspection",
    "Material pickup",
    "Snow clearing",
)

PERMISSIONS = {
    "time_reports": "Timereport_Read",
    "projects": "Project_Read",
    # The document names no permission for the admin registries; the sandbox needs one to
    # be able to refuse them.
    "users": "User_Read",
    "internal_projects": "InternalProject_Read",
    "absence_projects": "AbsenceProject_Read",
}


# -- formats the document shows ---------------------------------------------------------------
def format_datetime(moment: datetime | None) -> str | None:
    """``2022-07-01 04:43:12 +00:00``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +00:00")


# Timestamps of a time report the server sets; the sandbox's clock never runs behind them.
STAMPED_FIELDS = ("createdDate", "updatedDate", "sentToAttestDate", "attestedDate")


def _stamp_value(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S +00:00").replace(tzinfo=UTC)
    except ValueError:
        return None


def name_id(ident: int, name: str | None, object_name: str = "generic.name_id") -> dict[str, Any]:
    return {"objectName": object_name, "id": ident, "name": name}


# -- data -------------------------------------------------------------------------------------
@dataclass
class BlikkData:
    """The sandbox's records, exactly as served (dicts in the document's shapes)."""

    users: list[dict[str, Any]] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    time_reports: list[dict[str, Any]] = field(default_factory=list)
    internal_projects: list[dict[str, Any]] = field(default_factory=list)
    absence_projects: list[dict[str, Any]] = field(default_factory=list)
    app_id: str = SANDBOX_APP_ID
    app_secret: str = SANDBOX_APP_SECRET
    token_lifetime_seconds: float = TOKEN_LIFETIME_SECONDS
    denied_permissions: set[str] = field(default_factory=set)
    ip_allowed: bool = True
    # "token": four requests a second per access token, as documented. "application": one
    # budget for all tokens of the API application — stricter than the document, for tests
    # that show concurrent runs must share the budget.
    rate_limit_scope: str = "token"
    # Called after a list page is computed and before it is sent: (path, page, body). A hook
    # changes the body in place and returns None, or returns what to serve instead (any JSON
    # value, or a starlette ``Response`` for bodies that are not JSON) — tests only.
    page_hooks: list[Callable[[str, int, Any], Any]] = field(default_factory=list)
    # Where reports without a value for the sort field go. The document does not say.
    # "lowest" (SQL Server's order: first when ascending, last when descending) or "highest"
    # (PostgreSQL's: last when ascending, first when descending).
    nulls_sort: str = "lowest"
    # Which reports ``reportedHours`` of UserDayStatistics adds up; the document does not say.
    # "all" (project, internal and absence reports) or "without_absence".
    reported_hours_counts: str = "all"
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    version: int = 0
    _last_stamp: datetime | None = field(default=None, repr=False)

    def changed(self) -> None:
        self.version += 1

    def stamp(self) -> str:
        """The server's "now" for a change, as the document prints it (whole seconds): the wall
        clock, but never behind a stamp it gave before, and after every seeded stamp (seeded
        data reaches the end of its anchor day, which may be later than the wall clock).
        Changes in the same second share a stamp, as they would on the real server."""
        with self.lock:
            floor = self._last_stamp
            if floor is None:
                seeded = max(
                    (
                        moment
                        for r in self.time_reports
                        for key in STAMPED_FIELDS
                        if (moment := _stamp_value(r.get(key))) is not None
                    ),
                    default=None,
                )
                floor = seeded + timedelta(seconds=1) if seeded is not None else None
            now = datetime.now(UTC).replace(microsecond=0)
            if floor is not None and now < floor:
                now = floor
            self._last_stamp = now
            return format_datetime(now) or ""

    # Helpers for tests and benchmarks ------------------------------------------------------
    def time_report(self, report_id: int) -> dict[str, Any]:
        with self.lock:
            return next(r for r in self.time_reports if r.get("id") == report_id)

    def edit_time_reports(self, ids: Iterable[int], *, add_hours: float = 0.25) -> list[int]:
        """Late edits: more hours, ``updatedDate`` now."""
        edited = []
        with self.lock:
            stamp = self.stamp()
            wanted = set(ids)
            for report in self.time_reports:
                if report.get("id") in wanted:
                    report["hours"] = float(report["hours"]) + add_hours
                    report["updatedDate"] = stamp
                    edited.append(report["id"])
            self.changed()
        return edited

    def edit_fraction(self, fraction: float, seed: int = 7) -> list[int]:
        import random

        with self.lock:
            ids = [r["id"] for r in self.time_reports]
        count = max(1, round(len(ids) * fraction)) if ids else 0
        return self.edit_time_reports(random.Random(seed).sample(ids, count))

    def delete_time_reports(self, ids: Iterable[int]) -> int:
        wanted = set(ids)
        with self.lock:
            before = len(self.time_reports)
            self.time_reports = [r for r in self.time_reports if r.get("id") not in wanted]
            self.changed()
            return before - len(self.time_reports)

    def add_time_report(self, work_date: date, **overrides: Any) -> dict[str, Any]:
        """A new report created now (ids keep increasing, as the vendor's do)."""
        with self.lock:
            template = dict(self.time_reports[-1]) if self.time_reports else {}
            new_id = max((int(r.get("id") or 0) for r in self.time_reports), default=0) + 1
            now = self.stamp()
            report = {
                **template,
                "id": new_id,
                "date": work_date.isoformat(),
                "hours": 1.0,
                "invoiceableHours": 1.0,
                "sentToAttestDate": None,
                "attestedDate": None,
                "invoiceId": None,
                "createdDate": now,
                "updatedDate": None,
                **overrides,
            }
            self.time_reports.append(report)
            self.changed()
            return report

    def put_raw_time_report(self, record: dict[str, Any]) -> None:
        """Serve a record exactly as given (e.g. one that breaks the documented shape)."""
        with self.lock:
            self.time_reports.append(record)
            self.changed()


class BlikkMutations:
    """``SourceMutations`` on Blikk time reports, moving the timestamps the document shows
    moving. An edit and a date change are ``PUT /v1/Core/TimeReports/:id`` ("Updates an
    existing time report") and stamp ``updatedDate``; a report keeps its id when its date
    moves. Attesting is not an update: the document's example report was sent to attest and
    attested two hours after it was created and still has ``updatedDate: null``, so
    ``approve`` sets ``sentToAttestDate`` (when unset) and ``attestedDate`` only. A late
    report is a new id with ``createdDate`` now and ``updatedDate`` null, as created reports
    are in the document."""

    def __init__(self, data: BlikkData) -> None:
        self.data = data

    def _report(self, key: str) -> dict[str, Any]:
        return self.data.time_report(int(key))

    def _touch(self, report: dict[str, Any]) -> None:
        report["updatedDate"] = self.data.stamp()
        self.data.changed()

    def entry_keys(self, first: date, last: date) -> list[str]:
        with self.data.lock:
            return [
                str(r["id"])
                for r in self.data.time_reports
                if isinstance(r.get("id"), int) and first <= date.fromisoformat(str(r.get("date"))[:10]) <= last
            ]

    def edit_hours(self, key: str, delta: float) -> None:
        with self.data.lock:
            report = self._report(key)
            report["hours"] = float(report["hours"]) + delta
            self._touch(report)

    def move(self, key: str, day: date) -> str:
        with self.data.lock:
            report = self._report(key)
            report["date"] = day.isoformat()
            self._touch(report)
        return key

    def approve(self, key: str) -> None:
        with self.data.lock:
            report = self._report(key)
            now = self.data.stamp()
            report["sentToAttestDate"] = report.get("sentToAttestDate") or now
            report["attestedDate"] = now
            self.data.changed()

    def delete(self, key: str) -> None:
        self.data.delete_time_reports([int(key)])

    def add_late(self, day: date) -> str:
        return str(self.data.add_time_report(day)["id"])

    def expected_lines(self, first: date, last: date) -> pd.DataFrame:
        import pandas as pd

        from .conform import timesheet_status

        with self.data.lock:
            rows = [
                {
                    "entry_id": str(r["id"]),
                    "work_date": date.fromisoformat(str(r["date"])[:10]),
                    "total_hours": float(r["hours"]),
                    "status": timesheet_status(
                        bool((r.get("attestedDate") or "").strip()), bool((r.get("sentToAttestDate") or "").strip())
                    ),
                }
                for r in self.data.time_reports
                if isinstance(r.get("id"), int) and first <= date.fromisoformat(str(r.get("date"))[:10]) <= last
            ]
        return pd.DataFrame(rows, columns=["entry_id", "work_date", "total_hours", "status"])


def _user_ref(user: dict[str, Any]) -> dict[str, Any]:
    return name_id(user["id"], f"{user['firstName']} {user['lastName']}")


def _clip(moment: datetime, latest: datetime, earliest: datetime | None = None) -> datetime:
    """``moment``, or for one past the end of the data a stamp between ``earliest`` (the
    stamp it follows) and the end, spread deterministically: a real server's newest stamps
    are not all the same second, and piling them onto one would make every change scan
    re-read that second's reports."""
    if moment <= latest:
        return moment
    if earliest is None or earliest >= latest:
        return latest
    overshoot = int((moment - latest).total_seconds())
    fraction = (overshoot * 2654435761 % 997) / 997
    return earliest + timedelta(seconds=int((latest - earliest).total_seconds() * fraction))


def generate_data(config: SandboxConfig) -> BlikkData:
    """Deterministic data for ``config``: same seed and sizes, same records."""
    end_of_data = datetime.combine(config.anchor_date, time(23, 59, 59), tzinfo=UTC)
    rng = config.rng("blikk:users")
    users: list[dict[str, Any]] = []
    for index in range(config.employees):
        first, last = person_name(rng)
        uid = index + 2
        created = datetime.combine(config.first_date, time(8), tzinfo=UTC) - timedelta(days=rng.randint(60, 900))
        users.append(
            {
                "objectName": "user.list",
                "id": uid,
                "firstName": first,
                "lastName": last,
                "startDate": created.date().isoformat(),
                "endDate": None,
                "timeReportingProfile": name_id(5, "Default profile"),
                "department": name_id(1, "Construction") if rng.random() < 0.8 else None,
                "license": rng.choice(("total", "standard", "basic", "light")),
                "permissions": ["timereporting"] + (["administrator"] if index == 0 else []),
                "createdBy": name_id(1, "Admin Account"),
                "updatedBy": None,
                "createdDate": format_datetime(created),
                "updatedDate": None,
            }
        )

    rng = config.rng("blikk:projects")
    projects: list[dict[str, Any]] = []
    for index in range(config.projects):
        pid = index + 1
        status = rng.choices(PROJECT_STATUSES, weights=(6, 2, 2, 1))[0]
        start = config.first_date - timedelta(days=rng.randint(0, 200))
        end = start + timedelta(days=rng.randint(60, 400)) if rng.random() < 0.7 else None
        created = datetime.combine(start, time(9), tzinfo=UTC) - timedelta(days=rng.randint(1, 30))
        updated = created + timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 8)) if rng.random() < 0.5 else None
        manager = rng.choice(users)
        customer = rng.choice(CUSTOMERS)
        projects.append(
            {
                "objectName": "project.list",
                "id": pid,
                "orderNumber": str(100 + pid),
                "title": project_name(rng, pid),
                "status": {
                    "objectName": "project.list.status",
                    "id": status[0],
                    "name": status[1],
                    "isCompletedStatus": status[2],
                },
                "startDate": start.isoformat(),
                "endDate": end.isoformat() if end else None,
                "invoiceType": rng.choice(("Ongoing", "FixedPrice", "None")),
                "location": {
                    "objectName": "project.list.location",
                    "longitude": round(21.0 + rng.random(), 6),
                    "latitude": round(65.0 + rng.random(), 6),
                    "streetAddress": f"{rng.choice(PROJECT_WORDS)}vägen {rng.randint(1, 99)}",
                    "postalCode": f"94{rng.randint(100, 199)}",
                    "city": "Piteå",
                    "countryName": "Sverige",
                },
                "projectManager": _user_ref(manager),
                "customer": name_id(*customer),
                "projectCollection": (
                    {"objectName": "projectcollection.name_id", "id": 14, "name": "Framework 2024", "number": "P012"}
                    if rng.random() < 0.3
                    else None
                ),
                "createdBy": _user_ref(users[0]),
                "updatedBy": _user_ref(manager) if updated else None,
                "created": format_datetime(created),
                "updated": format_datetime(_clip(updated, end_of_data)) if updated else None,
            }
        )

    registry_created = datetime.combine(config.first_date, time(7), tzinfo=UTC) - timedelta(days=400)
    internal_projects = [
        {
            "objectName": "internalproject.list",
            "id": ident,
            "name": name,
            "commentRequiredWhenTimeReporting": False,
            "isActive": active,
            "createdBy": _user_ref(users[0]),
            "updatedBy": None if active else _user_ref(users[0]),
            "created": format_datetime(registry_created),
            "updated": None if active else format_datetime(registry_created + timedelta(days=90)),
        }
        for ident, name, active in INTERNAL_PROJECTS
    ]
    absence_projects = [
        {
            "objectName": "absenceproject.list",
            "id": ident,
            "name": name,
            "commentRequiredWhenTimeReporting": False,
            "salaryCodeForMonthlySalary": f"0{40 + ident}",
            "salaryCodeForHourlySalary": f"0{40 + ident}",
            "refersToSickness": name == "Sick leave",
            "isActive": active,
            "createdBy": _user_ref(users[0]),
            "updatedBy": None,
            "created": format_datetime(registry_created),
            "updated": None,
        }
        for ident, name, active in ABSENCE_PROJECTS
    ]
    active_internal = [(i, n) for i, n, active in INTERNAL_PROJECTS if active]
    active_absence = [(i, n) for i, n, active in ABSENCE_PROJECTS if active]

    rng = config.rng("blikk:time_reports")
    drafts: list[dict[str, Any]] = []
    # Nobody reports more than a long working day: reports are shorter the more of them the
    # config packs into each employee-day, and a full day sends the report to another one.
    capacity = config.employees * config.days
    if config.time_records > capacity * DAY_CAP_HOURS * 4:
        raise ValueError(
            f"{config.time_records} time reports do not fit {config.employees} employees x "
            f"{config.days} days at up to {DAY_CAP_HOURS:g} h a day in quarter hours"
        )
    longest = max(0.25, min(10.0, DAY_CAP_HOURS * capacity / max(1, config.time_records)))
    booked: dict[tuple[int, date], float] = {}
    for _ in range(config.time_records):
        while True:
            work_date = config.first_date + timedelta(days=rng.randrange(config.days))
            user = rng.choice(users)
            room = DAY_CAP_HOURS - booked.get((user["id"], work_date), 0.0)
            if room >= 0.25:
                break
        hours = quarter_hours(rng, min(0.5, longest, room), min(longest, room))
        booked[(user["id"], work_date)] = booked.get((user["id"], work_date), 0.0) + hours
        kind = rng.choices(("project", "internal", "absence"), weights=(8, 1, 1))[0]
        project = rng.choice(projects)
        break_minutes = rng.choice((None, None, 15, 30))
        clocked = rng.random() < 0.4
        clock_start = "07:00" if clocked else None
        clock_end = None
        if clocked:
            minutes = 7 * 60 + int(hours * 60) + (break_minutes or 0)
            clock_end = f"{(minutes // 60) % 24:02d}:{minutes % 60:02d}"
        reported_from = datetime.combine(work_date, time(15), tzinfo=UTC)
        created = _clip(reported_from + timedelta(minutes=rng.randint(0, 3 * 24 * 60)), end_of_data, reported_from)
        age_days = (config.anchor_date - work_date).days
        sent = rng.random() < (0.85 if age_days > 7 else 0.4)
        attested = sent and rng.random() < (0.8 if age_days > 7 else 0.3)
        sent_at = _clip(created + timedelta(hours=rng.randint(1, 72)), end_of_data, created) if sent else None
        attested_at = (
            _clip(sent_at + timedelta(hours=rng.randint(1, 48)), end_of_data, sent_at)
            if attested and sent_at is not None
            else None
        )
        late_edit = rng.random() < 0.25
        updated = (
            _clip(created + timedelta(days=rng.randint(1, 10), minutes=rng.randint(0, 600)), end_of_data, created)
            if late_edit
            else None
        )
        if updated is not None and updated <= created:
            updated = None
        time_code = TIME_CODES[1] if rng.random() < 0.08 else TIME_CODES[0]
        activity = rng.choice(ACTIVITIES)
        ref = _user_ref(user)
        if rng.random() < 0.05:
            ref["name"] = None
        report = {
            "objectName": "timereport.list",
            "id": 0,
            "date": work_date.isoformat(),
            "clockStart": clock_start,
            "clockEnd": clock_end,
            "hours": hours,
            "invoiceableHours": (rng.choice((hours, hours, max(0.0, hours - 1.0))) if kind == "project" else 0.0),
            "breakMinutes": break_minutes,
            "cost": 350.0,
            "rate": 650.0 if kind == "project" else None,
            "discount": None,
            "comment": rng.choice(COMMENTS) if rng.random() < 0.6 else None,
            "internalComment": rng.choice(COMMENTS) if rng.random() < 0.15 else None,
            "sentToAttestDate": format_datetime(sent_at),
            "attestedDate": format_datetime(attested_at),
            "user": ref,
            "project": (
                {
                    "objectName": "project.name_id",
                    "id": project["id"],
                    "name": project["title"],
                    "number": project["orderNumber"],
                }
                if kind == "project"
                else None
            ),
            "internalProject": name_id(*rng.choice(active_internal)) if kind == "internal" else None,
            "absenceProject": name_id(*rng.choice(active_absence)) if kind == "absence" else None,
            "contact": (
                {"objectName": "generic.name_id", "id": project["customer"]["id"], "name": project["customer"]["name"]}
                if kind == "project"
                else name_id(*OWN_COMPANY)
            ),
            "activity": name_id(*activity),
            "timeCode": name_id(*time_code),
            "timeArticle": name_id(*TIME_ARTICLES[0]),
            "costCenter": None,
            "invoiceId": rng.randint(500, 900) if attested and kind == "project" and rng.random() < 0.5 else None,
            "travelReportId": None,
            "allowanceReportId": None,
            "createdDate": format_datetime(created),
            "updatedDate": format_datetime(updated),
        }
        drafts.append(report)
    # Ids follow creation order, as the vendor's do.
    drafts.sort(key=lambda r: (r["createdDate"], r["date"], r["user"]["id"]))
    for index, report in enumerate(drafts):
        report["id"] = 1000 + index
    return BlikkData(
        users=users,
        projects=projects,
        time_reports=drafts,
        internal_projects=internal_projects,
        absence_projects=absence_projects,
    )


# -- expectations for the conformed tables ----------------------------------------------------
def expected_timesheets(config: SandboxConfig, first: date, last: date) -> dict[str, Any]:
    """Lines and hours ``conformed/timesheets`` must hold for Blikk for work dates
    ``first``..``last`` (inclusive): one line per time report, ``total_hours`` = ``hours``."""
    chosen = [r for r in generate_data(config).time_reports if first <= date.fromisoformat(r["date"]) <= last]
    return {"lines": len(chosen), "total_hours": round(sum(float(r["hours"]) for r in chosen), 6)}


def expected_projects(config: SandboxConfig) -> int:
    """Rows ``conformed/projects`` holds for Blikk: projects plus the internal and absence
    project registries (time reports point at all three)."""
    return config.projects + len(INTERNAL_PROJECTS) + len(ABSENCE_PROJECTS)


def sandbox_env(base_url: str) -> dict[str, str]:
    return {
        "BLIKK_BASE_URL": base_url,
        "BLIKK_APP_ID": SANDBOX_APP_ID,
        "BLIKK_APP_SECRET": SANDBOX_APP_SECRET,
    }


def blikk_data(app: Starlette) -> BlikkData:
    return app.state.sandbox.extra["data"]


# -- lists: paging, sorting, filtering ------------------------------------------------------
class _Invalid(Exception):
    pass


def _query(request: Request) -> dict[str, str]:
    # ASP.NET binds query parameters case-insensitively (the document writes "sortorder").
    return {key.lower(): value for key, value in request.query_params.items()}


def _int(raw: str, label: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise _Invalid(f"The value '{raw}' is not valid for {label}.") from None


def _datetime_filter(raw: str, label: str) -> datetime:
    text = raw.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise _Invalid(f"The value '{raw}' is not valid for {label}.")


def _bool_filter(raw: str, label: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _Invalid(f"The value '{raw}' is not valid for {label}.")


def _int_array(raw: str, label: str) -> set[int]:
    try:
        return {int(part) for part in raw.split(",") if part.strip()}
    except ValueError:
        raise _Invalid(f"The value '{raw}' is not valid for {label}.") from None


def _ref_id(record: dict[str, Any], key: str) -> int | None:
    value = record.get(key)
    return value.get("id") if isinstance(value, dict) else None


Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class ListSpec:
    """One list endpoint: where its records live, how they sort, which filters it takes."""

    name: str
    records: Callable[[BlikkData], list[dict[str, Any]]]
    sorts: dict[str, Callable[[dict[str, Any]], Any]]
    filters: dict[str, Callable[[str], Predicate]]


def _time_report_filters() -> dict[str, Callable[[str], Predicate]]:
    def work_day(r: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(str(r.get("date"))[:10])

    def from_(raw: str) -> Predicate:
        bound = _datetime_filter(raw, "From")
        return lambda r: work_day(r) >= bound

    def to(raw: str) -> Predicate:
        bound = _datetime_filter(raw, "To")
        return lambda r: work_day(r) <= bound

    def user_ids(raw: str) -> Predicate:
        wanted = _int_array(raw, "UserIds")
        return lambda r: _ref_id(r, "user") in wanted

    def by_ref(key: str, label: str) -> Callable[[str], Predicate]:
        def make(raw: str) -> Predicate:
            wanted = _int(raw, label)
            return lambda r: _ref_id(r, key) == wanted

        return make

    def sent(raw: str) -> Predicate:
        flag = _bool_filter(raw, "IsSentToAttest")
        return lambda r: bool(r.get("sentToAttestDate")) == flag

    def attested(raw: str) -> Predicate:
        flag = _bool_filter(raw, "IsAttested")
        return lambda r: bool(r.get("attestedDate")) == flag

    def project_type(raw: str) -> Predicate:
        keys = {"project": "project", "internalproject": "internalProject", "absenceproject": "absenceProject"}
        key = keys.get(raw.strip().lower())
        if key is None:
            raise _Invalid(f"The value '{raw}' is not valid for ProjectType.")
        return lambda r: r.get(key) is not None

    return {
        "filter.from": from_,
        "filter.to": to,
        "filter.userids": user_ids,
        "filter.projectid": by_ref("project", "ProjectId"),
        "filter.internalprojectid": by_ref("internalProject", "InternalProjectId"),
        "filter.absenceprojectid": by_ref("absenceProject", "AbsenceProjectId"),
        "filter.contactid": by_ref("contact", "ContactId"),
        "filter.issenttoattest": sent,
        "filter.isattested": attested,
        "filter.projecttype": project_type,
    }


def _text_query(*fields: Callable[[dict[str, Any]], Any]) -> Callable[[str], Predicate]:
    def make(raw: str) -> Predicate:
        needle = raw.strip().lower()
        return lambda r: any(needle in str(f(r) or "").lower() for f in fields)

    return make


def _user_name(r: dict[str, Any]) -> str:
    return f"{r.get('firstName') or ''} {r.get('lastName') or ''}".strip()


LIST_SPECS: dict[str, ListSpec] = {
    "/v1/Core/TimeReports": ListSpec(
        name="time_reports",
        records=lambda d: d.time_reports,
        sorts={
            "date": lambda r: r.get("date"),
            "username": lambda r: (r.get("user") or {}).get("name"),
            "hours": lambda r: r.get("hours"),
            "invoiceablehours": lambda r: r.get("invoiceableHours"),
            "senttoattestdate": lambda r: r.get("sentToAttestDate"),
            "attesteddate": lambda r: r.get("attestedDate"),
            "createddate": lambda r: r.get("createdDate"),
            "updateddate": lambda r: r.get("updatedDate"),
        },
        filters=_time_report_filters(),
    ),
    "/v1/Core/Projects": ListSpec(
        name="projects",
        records=lambda d: d.projects,
        sorts={
            "ordernumber": lambda r: r.get("orderNumber"),
            "title": lambda r: r.get("title"),
            "createddate": lambda r: r.get("created"),
            "updateddate": lambda r: r.get("updated"),
        },
        filters={
            "filter.query": _text_query(
                lambda r: r.get("orderNumber"),
                lambda r: r.get("title"),
                lambda r: (r.get("customer") or {}).get("name"),
            )
        },
    ),
    "/v1/Admin/InternalProjects": ListSpec(
        name="internal_projects",
        records=lambda d: d.internal_projects,
        sorts={"name": lambda r: r.get("name")},
        filters={},
    ),
    "/v1/Admin/AbsenceProjects": ListSpec(
        name="absence_projects",
        records=lambda d: d.absence_projects,
        sorts={"name": lambda r: r.get("name")},
        filters={},
    ),
    "/v1/Admin/Users": ListSpec(
        name="users",
        records=lambda d: d.users,
        sorts={"name": _user_name},
        filters={"filter.query": _text_query(_user_name)},
    ),
}


# -- user day statistics ----------------------------------------------------------------------
STATISTICS_PATH = "/v1/Core/TimeReports/UserDayStatistics"
MAX_STATISTICS_SPAN_DAYS = 31
SCHEDULED_HOURS_PER_WEEKDAY = 8.0


def _statistics_filters() -> dict[str, Callable[[str], Predicate]]:
    def user_ids(raw: str) -> Predicate:
        wanted = _int_array(raw, "UserIds")
        return lambda u: u.get("id") in wanted

    def department_ids(raw: str) -> Predicate:
        wanted = _int_array(raw, "DepartmentIds")
        return lambda u: _ref_id(u, "department") in wanted

    def span_bound(label: str) -> Callable[[str], Predicate]:
        def make(raw: str) -> Predicate:
            _datetime_filter(raw, label)  # validated here, applied by _statistics_span
            return lambda u: True

        return make

    return {
        "filter.from": span_bound("From"),
        "filter.to": span_bound("To"),
        "filter.userids": user_ids,
        "filter.departmentids": department_ids,
    }


STATISTICS_SPEC = ListSpec(
    name="user_day_statistics",
    records=lambda d: d.users,
    sorts={"name": _user_name},
    filters=_statistics_filters(),
)


def _statistics_span(query: dict[str, str]) -> tuple[date, date]:
    """``filter.from``..``filter.to`` (days, both inclusive). The document calls them "the
    start" and "the end of the date span" and caps the span at 31 days; it does not say what
    a request without them gets, so the sandbox refuses one (the client always sends both),
    and counts the span in days including both ends (the stricter reading of "31 days")."""
    problems: dict[str, list[str]] = {}
    bounds: dict[str, date] = {}
    for key, label in (("filter.from", "From"), ("filter.to", "To")):
        raw = query.get(key, "").strip()
        if not raw:
            problems.setdefault(key, []).append(f"The field {label} is required.")
            continue
        try:
            bounds[key] = _datetime_filter(raw, label).date()
        except _Invalid as exc:
            problems.setdefault(key, []).append(str(exc))
    if not problems:
        first, last = bounds["filter.from"], bounds["filter.to"]
        if last < first:
            problems["filter.to"] = ["The end of the date span must not be before its start."]
        elif (last - first).days + 1 > MAX_STATISTICS_SPAN_DAYS:
            problems["filter.to"] = [f"The date span can be a maximum of {MAX_STATISTICS_SPAN_DAYS} days."]
    if problems:
        raise _ModelState(problems)
    return bounds["filter.from"], bounds["filter.to"]


def statistics_items(data: BlikkData, users: list[dict[str, Any]], first: date, last: date) -> list[dict[str, Any]]:
    """``timereport.userdaystatistics`` for ``users``: every day of the span, with the hours
    of the reports counted as ``data.reported_hours_counts`` says."""
    wanted = {u.get("id") for u in users}
    hours: dict[tuple[Any, date], float] = {}
    attested: dict[tuple[Any, date], list[str | None]] = {}
    for report in data.time_reports:
        uid = _ref_id(report, "user")
        if uid not in wanted:
            continue
        try:
            day = date.fromisoformat(str(report.get("date"))[:10])
            worked = float(str(report.get("hours")))
        except (TypeError, ValueError):
            continue
        if not first <= day <= last:
            continue
        attested.setdefault((uid, day), []).append(report.get("attestedDate"))
        if data.reported_hours_counts == "without_absence" and report.get("absenceProject"):
            continue
        hours[(uid, day)] = hours.get((uid, day), 0.0) + worked
    items = []
    for user in users:
        uid = user.get("id")
        dates = []
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            stamps = attested.get((uid, day), [])
            dates.append(
                {
                    "objectName": "timereport.userdaystatistics.datedata",
                    "date": day.isoformat(),
                    "reportedHours": round(hours.get((uid, day), 0.0), 2),
                    "scheduledHours": SCHEDULED_HOURS_PER_WEEKDAY if day.weekday() < 5 else 0.0,
                    "lockedDate": None,
                    # A day counts as attested once every report on it is.
                    "attestedDate": max(s for s in stamps if s) if stamps and all(stamps) else None,
                }
            )
        items.append(
            {
                "objectName": "timereport.userdaystatistics",
                "userId": uid,
                "name": _user_name(user) or None,
                "department": user.get("department"),
                "dates": dates,
            }
        )
    return items


def _sort_key(getter: Callable[[dict[str, Any]], Any], nulls: str = "lowest") -> Callable[[dict[str, Any]], tuple]:
    # Nulls lowest (first when ascending, last when descending, as SQL Server sorts them) or
    # highest (as PostgreSQL does); ties broken by id so pages are stable between requests.
    null_rank = 2 if nulls == "highest" else 0

    def key(record: dict[str, Any]) -> tuple:
        value = getter(record)
        ident = record.get("id")
        ident_key = ident if isinstance(ident, int) else -1
        if value is None:
            return (null_rank, "", ident_key)
        return (1, value if isinstance(value, (int, float)) else str(value), ident_key)

    return key


def _validate_list_query(spec: ListSpec, query: dict[str, str]) -> tuple[int, int, str | None, bool, list[Predicate]]:
    problems: dict[str, list[str]] = {}

    def fail(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    page = page_size = 0
    if "page" not in query or not query["page"].strip():
        # What the document shows for a list request without ``page``.
        fail("page", "The field Page must be greater than or equal to 1.")
    else:
        try:
            page = _int(query["page"], "Page")
            if page < 1:
                fail("page", "The field Page must be greater than or equal to 1.")
        except _Invalid as exc:
            fail("page", str(exc))
    try:
        page_size = _int(query["pagesize"], "PageSize") if "pagesize" in query else 25
        if not 1 <= page_size <= 100:
            fail("pageSize", "The field PageSize must be between 1 and 100.")
    except _Invalid as exc:
        fail("pageSize", str(exc))
    sort_by = None
    if query.get("sortby", "").strip():
        sort_by = query["sortby"].strip().lower()
        if sort_by not in spec.sorts:
            fail("sortBy", f"The value '{query['sortby']}' is not valid for SortBy.")
    descending = False
    if query.get("sortorder", "").strip():
        order = query["sortorder"].strip().lower()
        if order not in ("ascending", "descending"):
            fail("sortOrder", f"The value '{query['sortorder']}' is not valid for SortOrder.")
        descending = order == "descending"
    predicates: list[Predicate] = []
    for key, raw in query.items():
        if key in spec.filters and raw.strip():
            try:
                predicates.append(spec.filters[key](raw))
            except _Invalid as exc:
                fail(key, str(exc))
    if problems:
        raise _ModelState(problems)
    return page, page_size, sort_by, descending, predicates


class _ModelState(Exception):
    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("invalid request")
        self.problems = problems


def model_state_response(problems: dict[str, list[str]]) -> JSONResponse:
    return JSONResponse({"message": "The request is invalid.", "modelState": problems}, status_code=400)


# -- errors in the document's shapes --------------------------------------------------------
def _whole_or_fraction(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else round(seconds, 3)


def blikk_error(kind: str, status: int, wait: float | None, retry_after: str | None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    if status == 429:
        # The document counts whole seconds; an injected fault may ask for less (fast tests).
        if kind == "rate_limited" or wait is None:
            wait_seconds: int | float = max(1, math.ceil(wait or 0))
        else:
            wait_seconds = _whole_or_fraction(wait)
        return JSONResponse({"waitInSeconds": wait_seconds}, status_code=429, headers=headers)
    if status == 401:
        return JSONResponse({"message": "Invalid token"}, status_code=401, headers=headers)
    if status == 403:
        return permissions_response(["Timereport_Read"])
    if status == 400:
        return model_state_response({"request": ["The request could not be processed."]})
    if status == 500:
        return JSONResponse(
            {"message": "An unexpected error has occurred.", "requestId": f"r-{uuid.uuid4()}"},
            status_code=500,
        )
    # 404, 502, 503, 504: the document shows no body.
    return Response(b"", status_code=status, headers=headers)


def permissions_response(required: list[str]) -> JSONResponse:
    return JSONResponse(
        {
            "message": "You dont have the nessecery permissions to perform this action",
            "ipAddressAllowed": True,
            "permissionsRequired": required,
        },
        status_code=403,
    )


def ip_refused_response(client_host: str) -> JSONResponse:
    return JSONResponse(
        {
            "message": f'Your IP-address "{client_host}" is not allowed',
            "ipAddressAllowed": False,
            "permissionsRequired": [],
        },
        status_code=403,
    )


# -- the app ----------------------------------------------------------------------------------
def _basic_principal(header: str) -> tuple[str, str] | None:
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    app_id, sep, secret = decoded.partition(":")
    return (app_id, secret) if sep else None


def _app_key(app_id: str) -> str:
    return "app:" + hashlib.sha256(app_id.encode()).hexdigest()


def create_app(config: SandboxConfig, *, data: BlikkData | None = None) -> Starlette:
    data = data or generate_data(config)
    token_owner: dict[str, str] = {}

    def limit_key(request: Request) -> str:
        token = bearer_token(request.headers)
        if token:
            owner = token_owner.get(token)
            if data.rate_limit_scope == "application" and owner is not None:
                return _app_key(owner)
            return "token:" + token
        principal = _basic_principal(request.headers.get("authorization", ""))
        return _app_key(principal[0]) if principal else "anonymous"

    sandbox = Sandbox(
        name="blikk",
        rate_rule=RateRule(max_requests=REQUESTS_PER_SECOND, window_seconds=1.0, mode="reject", key=limit_key),
        error=blikk_error,
    )
    sandbox.extra["data"] = data
    sandbox.extra["config"] = config
    sandbox.extra["mutations"] = BlikkMutations(data)
    cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def guard(request: Request, permission: str | None) -> Response | None:
        if not data.ip_allowed:
            return ip_refused_response(request.client.host if request.client else "unknown")
        if sandbox.tokens.validate(bearer_token(request.headers)) is None:
            return JSONResponse({"message": "Invalid token"}, status_code=401)
        if permission and permission in data.denied_permissions:
            return permissions_response([permission])
        return None

    async def token(request: Request) -> Response:
        if not data.ip_allowed:
            return ip_refused_response(request.client.host if request.client else "unknown")
        principal = _basic_principal(request.headers.get("authorization", ""))
        if principal != (data.app_id, data.app_secret):
            return JSONResponse({"message": "Invalid application id or secret"}, status_code=401)
        issued = sandbox.tokens.issue(principal[0], data.token_lifetime_seconds)
        token_owner[issued.token] = principal[0]
        expires = datetime.fromtimestamp(issued.expires_at or 0, tz=UTC)
        return JSONResponse(
            {"objectName": "auth.token", "accessToken": issued.token, "expires": format_datetime(expires)}
        )

    def list_endpoint(path: str, spec: ListSpec) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            refused = guard(request, PERMISSIONS[spec.name])
            if refused is not None:
                return refused
            try:
                page, page_size, sort_by, descending, predicates = _validate_list_query(spec, _query(request))
            except _ModelState as exc:
                return model_state_response(exc.problems)
            with data.lock:
                # Benchmarks read the same filtered list page after page: reuse the selection
                # until the data changes.
                selection = tuple(sorted((k, v) for k, v in _query(request).items() if k not in ("page", "pagesize")))
                cache_key = (path, selection, data.version, data.nulls_sort)
                selected = cache.get(cache_key)
                if selected is None:
                    selected = [r for r in spec.records(data) if all(p(r) for p in predicates)]
                    getter = (spec.sorts.get(sort_by) if sort_by else None) or (lambda r: r.get("id"))
                    selected.sort(key=_sort_key(getter, data.nulls_sort), reverse=descending)
                    cache.clear()
                    cache[cache_key] = selected
                total = len(selected)
                start = (page - 1) * page_size
                items = [dict(r) for r in selected[start : start + page_size]]
            return paged(path, page, page_size, total, items)

        return handler

    def paged(path: str, page: int, page_size: int, total: int, items: list[dict[str, Any]]) -> Response:
        body = {
            "objectName": "generic.pagedlist",
            "page": page,
            "pageSize": page_size,
            "itemCount": len(items),
            "totalItemCount": total,
            "totalPages": math.ceil(total / page_size),
            "items": items,
        }
        served: Any = body
        for hook in list(data.page_hooks):
            replacement = hook(path, page, served)
            if replacement is not None:
                served = replacement
        if isinstance(served, Response):
            return served
        return JSONResponse(served)

    async def user_day_statistics(request: Request) -> Response:
        refused = guard(request, PERMISSIONS["time_reports"])
        if refused is not None:
            return refused
        query = _query(request)
        try:
            page, page_size, sort_by, descending, predicates = _validate_list_query(STATISTICS_SPEC, query)
            first, last = _statistics_span(query)
        except _ModelState as exc:
            return model_state_response(exc.problems)
        with data.lock:
            users = [u for u in data.users if all(p(u) for p in predicates)]
            getter = STATISTICS_SPEC.sorts[sort_by] if sort_by else (lambda u: u.get("id"))
            users.sort(key=_sort_key(getter, data.nulls_sort), reverse=descending)
            chosen = users[(page - 1) * page_size : page * page_size]
            items = statistics_items(data, chosen, first, last)
        return paged(STATISTICS_PATH, page, page_size, len(users), items)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return Response(b"", status_code=status)

    routes = [
        Route("/v1/Auth/Token", token, methods=["POST"]),
        Route(STATISTICS_PATH, user_day_statistics, methods=["GET"]),
    ]
    routes += [Route(path, list_endpoint(path, spec), methods=["GET"]) for path, spec in LIST_SPECS.items()]
    app = build_app(sandbox, routes)
    app.add_exception_handler(HTTPException, not_found)
    return app
