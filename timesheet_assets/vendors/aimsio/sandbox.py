"""Local fake of the Aimsio standard REST API, as strict as its document.

* HTTP Basic auth on every API route: no or wrong credentials → 401 (with
  ``WWW-Authenticate: Basic``); a known user without API permission → 403.
* ``GET /rest/api/standard/v1/CurrentTimeCard`` and ``.../JobOrder``: a bare JSON array of
  ``{dtype, guid, updatedAt}`` stubs (epoch ms). Query parameters are not documented and are
  refused with 400, so a client cannot come to rely on a filter the vendor may not have.
* ``GET .../CurrentTimeCard/{guid}``: the documented body, key for key as in the example
  (string numbers ``"2.000"``, epoch-ms dates, nulls, the odd ``timeCarddescription``);
  ``.../JobOrder/{guid}``: the job-order shape documented in ``docs/vendors/aimsio.md``.
  Unknown guid → 404.
* The documented limit (``framework.RateRule``): more than 10 calls in one second are queued;
  a call whose queue wait would pass 5 s is answered at once with 504 and
  ``{"status": 504, "error": "Gateway Timeout", "message": ...}``; an 11th call in flight is
  refused with 429 and ``{"status": 429, "error": "Too Many Requests", "message": ...}``.
  Error bodies follow the ``{timestamp, status, error, message, path}`` form of a Java API.
* Data is seeded from ``SandboxConfig`` and changes over time through
  ``AimsioStore.mutate_timecards(n)`` / ``mutate_job_orders(n)`` (also
  ``POST /_control/aimsio/mutate?entity=timecards&count=n``, unauthenticated and outside the
  limiter): each call bumps ``updatedAt`` past every earlier value and changes hours.
* ``AimsioMutations`` (``sandbox.extra["mutations"]``, ``POST /_sandbox/mutate``) changes
  timecards the way users and integrations do: edits, moves, the export flag, the documented
  soft delete, late cards whose ``updatedAt`` is older than what is listed, and cards that
  leave the open-timecards list (hard delete: 404; processed: still served by GUID or not).
"""

from __future__ import annotations

import base64
import binascii
import copy
import random
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...sandbox.data import SandboxConfig, person_name, project_name, quarter_hours
from ...sandbox.framework import RateRule, Sandbox, build_app
from .resource import API_PATH, JOB_ORDER_ENDPOINT, TIMECARD_ENDPOINT

if TYPE_CHECKING:
    import pandas as pd

SANDBOX_USERNAME = "integration@sandbox.aimsio.test"
SANDBOX_PASSWORD = "aimsio-sandbox-password"
# A user that exists but lacks the API permission the document says support must enable.
NO_PERMISSION_USERNAME = "field.user@sandbox.aimsio.test"
NO_PERMISSION_PASSWORD = "aimsio-field-password"

CONTROL_PATH = "/_control/aimsio"
API_ROOT = API_PATH.rstrip("/")
TIMECARD_DTYPE = "TimeCard"
JOB_ORDER_DTYPE = "JobOrder"

TIME_ZONES = ("America/Winnipeg", "America/Edmonton", "America/Regina", "America/Toronto", None)
PAYROLL_STATUSES = ("OPEN", "CLOSED")
JOB_STATUSES = ("Active", "Active", "Active", "Planned", "Completed", "Cancelled", "On Hold")
PHASE_CODES = ("01.01", "01.02", "02.10", "03.00", None, None)
DELETED_SHARE = 0.04

# The document's GET-single example, verbatim: tests serve it to prove it parses and conforms.
DOC_EXAMPLE_TIMECARD: dict[str, Any] = {
    "timeCardGuid": "6344bf5e-3ed3-45a3-a8bf-59e86a8e2872",
    "timeCardRecordDate": 1745231400000,
    "timeCardEmployeeGuid": "9d45a547-33d0-4eda-acf7-c3095a8d20c4",
    "timeCardEmployeeCode": "30",
    "timeCardEmploymentType": "DIRECT_HIRE",
    "timeCardWorkTradeCode": "Hourly",
    "timeCardPayType": "HR",
    "timeCardUnionCode": "Default Province",
    "timeCardTimeZone": "America/Winnipeg",
    "timeCarddescription": "OK",
    "timeCardEmployeeRegularHours": "0.000",
    "timeCardRate": "0.000",
    "timeCardRTAmount": "0.000000",
    "timeCardEmployeeOverTimeHours": "2.000",
    "timeCardRateOverTime": "0.000",
    "timeCardOTAmount": "0.000000",
    "timeCardEmployeeDoubleTimeHours": "8.000",
    "timeCardRateDoubleTime": "0.000",
    "timeCardDTAmount": "0.000000",
    "timeCardEmployeeTravelTimeHours": "0.000",
    "timeCardSTAmount": "0.000000",
    "timeCardPayCode": None,
    "timeCardQuantity": "0.000",
    "timeCardAmount": "0.000",
    "timeCardAmountWithBurden": "0.000",
    "timeCardJobGuid": "8dd33a3b-5843-4f9b-add9-60dbc47cd7f8",
    "timeCardJobNumber": "2025-116",
    "timeCardPhaseGuid": None,
    "timeCardPhaseCode": None,
    "timeCardEquipmentGuid": None,
    "timeCardEquipmentCode": None,
    "timeCardPayrollPeriodGuid": None,
    "timeCardPayrollPeriodName": None,
    "timeCardPayrollPeriodStart": None,
    "timeCardPayrollPeriodEnd": None,
    "timeCardPayrollPeriodStatus": None,
    "timeCardStandardEarningDeductionType": None,
    "timeCardCreatedAt": 1745934672419,
    "timeCardFormDataGuid": "959D7AC6-0A94-44F2-AD5E-D4F4140C7576",
    "timeCardFormDataNo": "CTS2025-116-059-001",
    "timeCardRowFormDataGuid": "D543EB55-0B14-435E-B6AA-1709E99A8C15",
    "timeCardFieldTicketGuid": None,
    "timeCardOriginReference": "230017561381:d5770061-b448-11ec-bc53-02445702d617",
    "timeCardShouldUpdateHoursBreakdown": True,
    "timeCardCompanyCode": None,
    "timeCardEclipseCompany": None,
    "timeCardIsExportedToIntegration": False,
    "timeCardIsDeleted": False,
    "timeCardIsBillable": False,
}


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _hours(value: float) -> str:
    return f"{value:.3f}"


def _amount(value: float) -> str:
    return f"{value:.6f}"


class AimsioStore:
    """The sandbox's data: timecards and job orders keyed by guid, each with its ``updatedAt``."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self.users: dict[str, tuple[str, bool]] = {
            SANDBOX_USERNAME: (SANDBOX_PASSWORD, True),
            NO_PERMISSION_USERNAME: (NO_PERMISSION_PASSWORD, False),
        }
        self.timecards: dict[str, dict[str, Any]] = {}
        self.timecard_updated: dict[str, int] = {}
        self.job_orders: dict[str, dict[str, Any]] = {}
        self.job_order_updated: dict[str, int] = {}
        # Timecards that left the open-timecards list (processed) but GET-single still serves.
        self.unlisted: set[str] = set()
        self._mutation_rng = config.rng("aimsio-mutations")
        self._mutation_turn = 0
        self._seed()

    # -- seeding ----------------------------------------------------------------------------
    def _seed(self) -> None:
        config = self.config
        rng = config.rng("aimsio")
        employees = []
        for index in range(config.employees):
            first, last = person_name(rng)
            employees.append({"guid": _guid(rng), "code": str(10 + index), "name": f"{first} {last}"})
        year = config.anchor_date.year
        jobs = []
        for index in range(config.projects):
            guid = _guid(rng)
            number = f"{year}-{101 + index:03d}"
            start = config.first_date - timedelta(days=rng.randint(10, 200))
            status = JOB_STATUSES[index % len(JOB_STATUSES)] if index else "Active"
            end = (
                start + timedelta(days=rng.randint(60, 400))
                if status in ("Completed", "Cancelled") or rng.random() < 0.5
                else None
            )
            customer_first, customer_last = person_name(rng)
            manager_first, manager_last = person_name(rng)
            crew = rng.sample(employees, k=min(len(employees), rng.randint(1, 4)))
            body = {
                "jobOrderGuid": guid,
                "jobOrderNumber": number,
                "jobOrderName": project_name(rng, index),
                "jobOrderStatus": status,
                "jobOrderCustomerGuid": _guid(rng),
                "jobOrderCustomerName": f"{customer_last} {rng.choice(('Energy', 'Construction', 'Utilities', 'Resources'))}",
                "jobOrderStartDate": _ms(datetime.combine(start, dtime(12), UTC)),
                "jobOrderEndDate": _ms(datetime.combine(end, dtime(12), UTC)) if end else None,
                "jobOrderProjectManagerName": f"{manager_first} {manager_last}",
                "jobOrderTimeZone": "America/Edmonton",
                "jobOrderCreatedAt": _ms(datetime.combine(start, dtime(9), UTC)),
                "jobOrderIsDeleted": False,
                "jobOrderCrew": [
                    {"employeeGuid": e["guid"], "employeeCode": e["code"], "employeeName": e["name"]} for e in crew
                ],
                "jobOrderEquipment": [],
                "jobOrderNrbList": [],
            }
            jobs.append(body)
            self.job_orders[guid] = body
            self.job_order_updated[guid] = int(str(body["jobOrderCreatedAt"])) + rng.randint(0, 86_400_000)

        days = config.days
        per_employee_day = -(-config.time_records // (days * config.employees)) if config.time_records else 1
        budget = min(12.0, 24.0 / per_employee_day)
        for index in range(config.time_records):
            employee = employees[(index // days) % config.employees]
            work_day = config.first_date + timedelta(days=index % days)
            job = jobs[rng.randrange(len(jobs))]
            zone_name = rng.choice(TIME_ZONES)
            if zone_name:
                local = datetime.combine(work_day, dtime(6), ZoneInfo(zone_name))
                recorded = local + timedelta(minutes=15 * rng.randint(0, 12))
            else:
                recorded = datetime.combine(work_day, dtime(12), UTC)
            regular = quarter_hours(rng, 0, budget * 0.6)
            overtime = quarter_hours(rng, 0, budget * 0.15)
            double = quarter_hours(rng, 0, budget * 0.1) if rng.random() < 0.3 else 0.0
            travel = quarter_hours(rng, 0, budget * 0.15) if rng.random() < 0.4 else 0.0
            rate = float(rng.choice((38, 42, 45, 52, 61)))
            created = recorded + timedelta(hours=rng.randint(8, 40))
            payroll = rng.random() < 0.5
            period_start = work_day - timedelta(days=work_day.weekday())
            phase = rng.choice(PHASE_CODES)
            guid = _guid(rng)
            body = {
                "timeCardGuid": guid,
                "timeCardRecordDate": _ms(recorded),
                "timeCardEmployeeGuid": employee["guid"],
                "timeCardEmployeeCode": employee["code"],
                "timeCardEmploymentType": "DIRECT_HIRE",
                "timeCardWorkTradeCode": "Hourly",
                "timeCardPayType": "HR",
                "timeCardUnionCode": "Default Province",
                "timeCardTimeZone": zone_name,
                "timeCarddescription": rng.choice(("OK", "OK", "Standby on site", "Pipe install", None)),
                "timeCardEmployeeRegularHours": _hours(regular),
                "timeCardRate": _hours(rate),
                "timeCardRTAmount": _amount(regular * rate),
                "timeCardEmployeeOverTimeHours": _hours(overtime),
                "timeCardRateOverTime": _hours(rate * 1.5),
                "timeCardOTAmount": _amount(overtime * rate * 1.5),
                "timeCardEmployeeDoubleTimeHours": _hours(double),
                "timeCardRateDoubleTime": _hours(rate * 2),
                "timeCardDTAmount": _amount(double * rate * 2),
                "timeCardEmployeeTravelTimeHours": _hours(travel),
                "timeCardSTAmount": _amount(travel * rate),
                "timeCardPayCode": rng.choice((None, None, "REG", "FIELD")),
                "timeCardQuantity": "0.000",
                "timeCardAmount": _hours(regular * rate + overtime * rate * 1.5 + double * rate * 2),
                "timeCardAmountWithBurden": _hours((regular + overtime + double) * rate * 1.25),
                "timeCardJobGuid": job["jobOrderGuid"],
                "timeCardJobNumber": job["jobOrderNumber"],
                "timeCardPhaseGuid": _guid(rng) if phase else None,
                "timeCardPhaseCode": phase,
                "timeCardEquipmentGuid": None,
                "timeCardEquipmentCode": None,
                "timeCardPayrollPeriodGuid": _guid(rng) if payroll else None,
                "timeCardPayrollPeriodName": f"Week of {period_start.isoformat()}" if payroll else None,
                "timeCardPayrollPeriodStart": _ms(datetime.combine(period_start, dtime(0), UTC)) if payroll else None,
                "timeCardPayrollPeriodEnd": _ms(datetime.combine(period_start + timedelta(days=6), dtime(0), UTC))
                if payroll
                else None,
                "timeCardPayrollPeriodStatus": rng.choice(PAYROLL_STATUSES) if payroll else None,
                "timeCardStandardEarningDeductionType": None,
                "timeCardCreatedAt": _ms(created),
                "timeCardFormDataGuid": _guid(rng).upper(),
                "timeCardFormDataNo": f"CTS{job['jobOrderNumber']}-{index % 1000:03d}-001",
                "timeCardRowFormDataGuid": _guid(rng).upper(),
                "timeCardFieldTicketGuid": None,
                "timeCardOriginReference": f"{rng.randint(10**11, 10**12 - 1)}:{_guid(rng)}",
                "timeCardShouldUpdateHoursBreakdown": True,
                "timeCardCompanyCode": None,
                "timeCardEclipseCompany": None,
                "timeCardIsExportedToIntegration": rng.random() < 0.4,
                "timeCardIsDeleted": rng.random() < DELETED_SHARE,
                "timeCardIsBillable": rng.random() < 0.7,
            }
            self.timecards[guid] = body
            self.timecard_updated[guid] = _ms(created) + rng.randint(0, 3_600_000)

    # -- reads ------------------------------------------------------------------------------
    def timecard_stubs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"dtype": TIMECARD_DTYPE, "guid": guid, "updatedAt": updated}
                for guid, updated in self.timecard_updated.items()
                if guid not in self.unlisted
            ]

    def job_order_stubs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"dtype": JOB_ORDER_DTYPE, "guid": guid, "updatedAt": updated}
                for guid, updated in self.job_order_updated.items()
            ]

    def timecard(self, guid: str) -> dict[str, Any] | None:
        with self._lock:
            body = self.timecards.get(guid)
            return copy.deepcopy(body) if body is not None else None

    def job_order(self, guid: str) -> dict[str, Any] | None:
        with self._lock:
            body = self.job_orders.get(guid)
            return copy.deepcopy(body) if body is not None else None

    # -- changes over time ------------------------------------------------------------------
    def _next_updated_at(self) -> int:
        """A fresh ``updatedAt``: now, but never at or before any value already served."""
        newest = max([*self.timecard_updated.values(), *self.job_order_updated.values()], default=0)
        return max(newest + 1, int(time.time() * 1000))

    def put_timecard(self, body: dict[str, Any], guid: str | None = None, updated_at: int | None = None) -> str:
        """Serve ``body`` as is (any shape: tests use it for the document's example and for
        records the client must tolerate or quarantine)."""
        guid = guid or str(body.get("timeCardGuid"))
        with self._lock:
            self.timecards[guid] = copy.deepcopy(body)
            self.timecard_updated[guid] = updated_at if updated_at is not None else self._next_updated_at()
        return guid

    def mutate_timecards(self, count: int) -> list[str]:
        """Change ``count`` timecards (rotating through them): new hours, newer ``updatedAt``."""
        with self._lock:
            guids = list(self.timecards)
            if not guids:
                return []
            chosen: list[str] = []
            for _ in range(min(count, len(guids))):
                chosen.append(guids[self._mutation_turn % len(guids)])
                self._mutation_turn += 1
            for guid in chosen:
                body = self.timecards[guid]
                regular = quarter_hours(self._mutation_rng, 0.25, 6)
                body["timeCardEmployeeRegularHours"] = _hours(regular)
                body["timeCarddescription"] = f"Revised {self._mutation_turn}"
                self.timecard_updated[guid] = self._next_updated_at()
            return chosen

    def delete_timecard(self, guid: str) -> None:
        """Aimsio flags deletions (``timeCardIsDeleted``) instead of removing the record."""
        with self._lock:
            self.timecards[guid]["timeCardIsDeleted"] = True
            self.timecard_updated[guid] = self._next_updated_at()

    def remove_timecard(self, guid: str) -> dict[str, Any]:
        """The card disappears: gone from the list, GET-single answers 404. Returns its body."""
        with self._lock:
            self.unlisted.discard(guid)
            self.timecard_updated.pop(guid)
            return self.timecards.pop(guid)

    def unlist_timecard(self, guid: str) -> None:
        """The card leaves the open-timecards list; GET-single still serves it."""
        with self._lock:
            if guid not in self.timecards:
                raise KeyError(guid)
            self.unlisted.add(guid)

    def add_timecard(self, day: date, updated_at: int | None = None) -> str:
        """A new card for ``day``, shaped like the seeded ones (8 regular hours)."""
        with self._lock:
            template = next(iter(self.timecards.values()), DOC_EXAMPLE_TIMECARD)
            zone_name = template.get("timeCardTimeZone")
            zone = ZoneInfo(zone_name) if zone_name else UTC
            guid = _guid(self._mutation_rng)
            body = copy.deepcopy(template)
            body.update(
                timeCardGuid=guid,
                timeCardRecordDate=_ms(datetime.combine(day, dtime(7), zone)),
                timeCardEmployeeRegularHours=_hours(8.0),
                timeCardEmployeeOverTimeHours=_hours(0.0),
                timeCardEmployeeDoubleTimeHours=_hours(0.0),
                timeCardEmployeeTravelTimeHours=_hours(0.0),
                timeCarddescription="Synced late",
                timeCardPayrollPeriodStatus=None,
                timeCardIsExportedToIntegration=False,
                timeCardIsDeleted=False,
                timeCardCreatedAt=int(time.time() * 1000),
                timeCardFormDataGuid=_guid(self._mutation_rng).upper(),
            )
            self.timecards[guid] = body
            self.timecard_updated[guid] = updated_at if updated_at is not None else self._next_updated_at()
            return guid

    def stamp(self, guid: str, updated_at: int | None = None) -> None:
        """A change to ``guid``: a fresh ``updatedAt``, or the given one (a skewed clock)."""
        with self._lock:
            self.timecard_updated[guid] = updated_at if updated_at is not None else self._next_updated_at()

    def mutate_job_orders(self, count: int) -> list[str]:
        with self._lock:
            guids = list(self.job_orders)[: max(0, count)]
            for guid in guids:
                body = self.job_orders[guid]
                body["jobOrderName"] = f"{body['jobOrderName']} (revised)"
                self.job_order_updated[guid] = self._next_updated_at()
            return guids

    # -- auth -------------------------------------------------------------------------------
    def check_auth(self, header: str | None) -> int | None:
        """``None`` when allowed, else the status to answer (401 unknown, 403 no permission)."""
        if not header or header[:6].lower() != "basic ":
            return 401
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return 401
        username, sep, password = decoded.partition(":")
        known = self.users.get(username)
        if not sep or known is None or known[0] != password:
            return 401
        return None if known[1] else 403


class AimsioMutations:
    """``SourceMutations`` on Aimsio timecards, as the document lets a card change: every edit
    stamps a new ``updatedAt`` (or a given one, for a skewed clock); a card keeps its GUID when
    its record date moves. Beyond the protocol: ``hard_delete`` (the card disappears: no stub,
    GET-single 404) and ``process`` (the card leaves the open-timecards list; GET-single still
    serves it, or not). ``expected_lines`` follows ``AIMSIO_VANISHED_TIMECARDS``, and assumes
    a refresh stored each card's last state before it vanished."""

    def __init__(self, store: AimsioStore) -> None:
        self.store = store
        # Cards GET-single no longer serves, as they were last served.
        self.gone: dict[str, dict[str, Any]] = {}

    def _body(self, key: str) -> dict[str, Any]:
        return self.store.timecards[key]

    def entry_keys(self, first: date, last: date) -> list[str]:
        """Listed cards not flagged deleted on those work dates, in the list's order."""
        with self.store._lock:
            return [
                guid
                for guid, body in self.store.timecards.items()
                if guid not in self.store.unlisted
                and not body["timeCardIsDeleted"]
                and first <= _work_date(body) <= last
            ]

    def edit_hours(self, key: str, delta: float, updated_at: int | None = None) -> None:
        with self.store._lock:
            body = self._body(key)
            regular = max(0.0, float(body["timeCardEmployeeRegularHours"] or 0) + delta)
            body["timeCardEmployeeRegularHours"] = _hours(regular)
        self.store.stamp(key, updated_at)

    def move(self, key: str, day: date) -> str:
        with self.store._lock:
            body = self._body(key)
            zone = ZoneInfo(body["timeCardTimeZone"]) if body["timeCardTimeZone"] else UTC
            local = datetime.fromtimestamp(body["timeCardRecordDate"] / 1000, tz=zone)
            body["timeCardRecordDate"] = _ms(datetime.combine(day, local.time(), zone))
        self.store.stamp(key)
        return key

    def approve(self, key: str) -> None:
        """The document has no approval; the status change it lets an integration make is the
        export flag, so that is what "approve" does here."""
        with self.store._lock:
            self._body(key)["timeCardIsExportedToIntegration"] = True
        self.store.stamp(key)

    def delete(self, key: str) -> None:
        """The documented deletion: ``timeCardIsDeleted`` set, the card still listed."""
        self.store.delete_timecard(key)

    def hard_delete(self, key: str) -> None:
        self.gone[key] = self.store.remove_timecard(key)

    def process(self, key: str, *, still_served: bool = True) -> None:
        """Payroll closes the card's period and it leaves the open list. When GET-single no
        longer serves it either, the client cannot tell it from a hard delete."""
        if not still_served:
            self.hard_delete(key)
            return
        with self.store._lock:
            body = self._body(key)
            body["timeCardPayrollPeriodStatus"] = "CLOSED"
            body["timeCardIsExportedToIntegration"] = True
        self.store.stamp(key)
        self.store.unlist_timecard(key)

    def add_late(self, day: date, updated_at: int | None = None) -> str:
        """A card for ``day`` that reaches the server now from a phone: its ``updatedAt`` is
        the phone's, the evening of that day, and never newer than what is already listed,
        unless ``updated_at`` is given."""
        if updated_at is None:
            with self.store._lock:
                newest = max(self.store.timecard_updated.values(), default=None)
                zone = UTC
                updated_at = _ms(datetime.combine(day, dtime(18), zone))
                if newest is not None:
                    updated_at = min(updated_at, newest - 1)
        return self.store.add_timecard(day, updated_at)

    def expected_lines(self, first: date, last: date) -> pd.DataFrame:
        import pandas as pd

        from .conform import timesheet_status
        from .settings import KEEP, vanished_timecards

        keep = vanished_timecards() == KEEP
        with self.store._lock:
            cards = [
                (guid, body) for guid, body in self.store.timecards.items() if keep or guid not in self.store.unlisted
            ]
            if keep:
                cards += list(self.gone.items())
            rows = [
                {
                    "entry_id": guid,
                    "work_date": _work_date(body),
                    "total_hours": _timecard_total(body),
                    "status": timesheet_status(body["timeCardPayrollPeriodStatus"]),
                }
                for guid, body in cards
                if not body["timeCardIsDeleted"] and first <= _work_date(body) <= last
            ]
        return pd.DataFrame(rows, columns=["entry_id", "work_date", "total_hours", "status"])


# -- error bodies ----------------------------------------------------------------------------
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def error_response(status: int, message: str, path: str = "", headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": status,
        "error": _REASONS.get(status, "Error"),
        "message": message,
        "path": path,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def limiter_error(kind: str, status: int, wait: float | None, retry_after: str | None) -> Response:
    messages = {
        "timed_out": "Request timed out: the API call queue is longer than 5 seconds",
        "refused": "Too many parallel calls: up to 10 are permitted",
        "rate_limited": "Too many calls per second",
    }
    headers = {"Retry-After": retry_after} if retry_after else None
    return error_response(status, messages.get(kind, f"Injected fault ({status})"), headers=headers)


# -- routes ----------------------------------------------------------------------------------
def _store(request: Request) -> AimsioStore:
    return request.app.state.store


def _guarded(request: Request) -> Response | None:
    status = _store(request).check_auth(request.headers.get("authorization"))
    if status == 401:
        return error_response(
            401,
            "Full authentication is required to access this resource",
            request.url.path,
            headers={"WWW-Authenticate": 'Basic realm="Aimsio API"'},
        )
    if status == 403:
        return error_response(403, "User is not permitted to use the API", request.url.path)
    if request.query_params:
        names = ", ".join(sorted(request.query_params.keys()))
        return error_response(400, f"Unsupported query parameter(s): {names}", request.url.path)
    return None


def _list_route(stubs_of):
    async def endpoint(request: Request) -> Response:
        refused = _guarded(request)
        if refused is not None:
            return refused
        return JSONResponse(stubs_of(_store(request)))

    return endpoint


def _detail_route(entity: str, body_of):
    async def endpoint(request: Request) -> Response:
        refused = _guarded(request)
        if refused is not None:
            return refused
        guid = request.path_params["guid"]
        body = body_of(_store(request), guid)
        if body is None:
            return error_response(404, f"{entity} not found: {guid}", request.url.path)
        return JSONResponse(body)

    return endpoint


async def _mutate(request: Request) -> Response:
    store = _store(request)
    try:
        count = int(request.query_params.get("count", "1"))
    except ValueError:
        return error_response(400, "count must be an integer", request.url.path)
    entity = request.query_params.get("entity", "timecards")
    if entity == "timecards":
        changed = store.mutate_timecards(count)
    elif entity == "job_orders":
        changed = store.mutate_job_orders(count)
    else:
        return error_response(400, "entity must be timecards or job_orders", request.url.path)
    return JSONResponse({"changed": changed})


def documented_rate_rule() -> RateRule:
    return RateRule(
        max_requests=10,
        window_seconds=1.0,
        mode="queue",
        queue_timeout_seconds=5.0,
        max_in_flight=10,
        timeout_status=504,
        refused_status=429,
        exempt=lambda path: path.startswith(CONTROL_PATH),
    )


def create_app(config: SandboxConfig) -> Starlette:
    store = AimsioStore(config)
    sandbox = Sandbox(name="aimsio", rate_rule=documented_rate_rule(), error=limiter_error)
    sandbox.extra["store"] = store
    sandbox.extra["mutations"] = AimsioMutations(store)
    routes = [
        Route(f"{API_ROOT}/{TIMECARD_ENDPOINT}", _list_route(AimsioStore.timecard_stubs), methods=["GET"]),
        Route(
            f"{API_ROOT}/{TIMECARD_ENDPOINT}/{{guid}}",
            _detail_route(TIMECARD_ENDPOINT, AimsioStore.timecard),
            methods=["GET"],
        ),
        Route(f"{API_ROOT}/{JOB_ORDER_ENDPOINT}", _list_route(AimsioStore.job_order_stubs), methods=["GET"]),
        Route(
            f"{API_ROOT}/{JOB_ORDER_ENDPOINT}/{{guid}}",
            _detail_route(JOB_ORDER_ENDPOINT, AimsioStore.job_order),
            methods=["GET"],
        ),
        Route(f"{CONTROL_PATH}/mutate", _mutate, methods=["POST"]),
    ]
    app = build_app(sandbox, routes)
    app.state.store = store
    return app


def sandbox_env(base_url: str) -> dict[str, str]:
    return {
        "AIMSIO_BASE_URL": base_url,
        "AIMSIO_USERNAME": SANDBOX_USERNAME,
        "AIMSIO_PASSWORD": SANDBOX_PASSWORD,
    }


# -- what the conformed tables must hold -----------------------------------------------------
def _timecard_total(body: dict[str, Any]) -> float:
    keys = (
        "timeCardEmployeeRegularHours",
        "timeCardEmployeeOverTimeHours",
        "timeCardEmployeeDoubleTimeHours",
        "timeCardEmployeeTravelTimeHours",
    )
    return sum(float(body[k]) for k in keys)


def _work_date(body: dict[str, Any]) -> date:
    zone = ZoneInfo(body["timeCardTimeZone"]) if body["timeCardTimeZone"] else UTC
    return datetime.fromtimestamp(body["timeCardRecordDate"] / 1000, tz=zone).date()


def expected_timesheets(config: SandboxConfig, first: date, last: date) -> dict[str, Any]:
    """Lines and hours conformed/timesheets holds for the seeded data (before any mutation):
    every timecard not flagged deleted whose work date is in ``first..last``."""
    store = AimsioStore(config)
    lines = 0
    hours = 0.0
    for body in store.timecards.values():
        if body["timeCardIsDeleted"] or not first <= _work_date(body) <= last:
            continue
        lines += 1
        hours += _timecard_total(body)
    return {"lines": lines, "total_hours": round(hours, 3)}


def expected_projects(config: SandboxConfig) -> int:
    return config.projects
