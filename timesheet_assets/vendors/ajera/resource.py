"""Ajera API client: one RPC endpoint, a session token in every body, an envelope on every answer.

Every call is ``POST {AJERA_BASE_URL}?{AJERA_API_ID}`` with ``{"Method", "SessionToken",
"MethodArguments"}`` (paging keys beside ``MethodArguments``). The session and one call:
``session.py``; the envelope: ``envelope.py``; complete lists: ``listing.py``. Decisions where
the documentation is silent are in docs/vendors/ajera.md.

* No rate limit is documented: 5 requests/s and 2 in flight by default, both configurable.
* The API id is a secret like the password: it lives only in the query string, which errors
  and request logs never show (they name the path), and it is scrubbed like the password.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar, TypeVar

import dagster as dg
import httpx
from pydantic import Field, PrivateAttr, ValidationError, field_validator

from ...http import VendorClient, default_error_message
from ..base import VendorResource
from .envelope import content_records
from .listing import TimesheetListing, read_all_pages
from .models import Envelope
from .records import batched, detail_key, employee_key, listed_week_date, project_key, timesheet_key
from .session import AjeraSession
from .week import READINGS, WEEK_ENDING, listing_range, touches

LOGGER = logging.getLogger(__name__)

API_VERSION = 2
LIST_CAP = 500

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class TimesheetFetch:
    """What one window's fetch returned: list records (as served) and details by key.

    ``listed`` are the weeks with a day in ``first``..``last`` (their details fetched);
    ``scanned`` the weeks with a day in ``scan_from``..``first − 1`` (list records only: the
    status scan compares them with the warehouse)."""

    first: date
    last: date
    reading: str = WEEK_ENDING
    scan_from: date | None = None
    listed: list[Any] = field(default_factory=list)
    scanned: list[Any] = field(default_factory=list)
    listed_keys: set[int] = field(default_factory=set)  # every key the listing returned
    details: dict[int, dict[str, Any]] = field(default_factory=dict)
    unrequested_details: int = 0
    outside_window: int = 0
    list_calls: int = 0
    truncated_lists: int = 0
    get_calls: int = 0


class AjeraResource(VendorResource):
    """Ajera (Deltek) API: sessions, ``ListTimesheets``/``GetTimesheets``,
    ``ListProjects``/``GetProjects``, ``ListEmployees``."""

    vendor_label: ClassVar[str] = "Ajera"
    default_requests_per_second: ClassVar[float] = 5.0
    default_max_in_flight: ClassVar[int] = 2
    env_required: ClassVar[Mapping[str, str]] = {
        "base_url": "AJERA_BASE_URL",
        "api_id": "AJERA_API_ID",
        "username": "AJERA_USERNAME",
        "password": "AJERA_PASSWORD",
    }
    env_optional: ClassVar[Mapping[str, str]] = {"timesheet_date": "AJERA_TIMESHEET_DATE"}

    api_id: str = Field(description="The id after '?' in the API URL (AJERA_API_ID); a secret.")
    username: str = Field(description="Ajera API user (AJERA_USERNAME).")
    password: str = Field(description="Ajera API password (AJERA_PASSWORD).")
    timesheet_date: str = Field(
        default=WEEK_ENDING,
        description="Which day TimesheetDate names (AJERA_TIMESHEET_DATE): 'week_ending' "
        "(D1 = TimesheetDate - 6, the default) or 'week_starting' (D1 = TimesheetDate).",
    )
    api_version: int = Field(default=API_VERSION, description="APIVersion of the session.")
    timesheet_batch_size: int = Field(default=50, ge=1, description="Keys per GetTimesheets call.")
    project_batch_size: int = Field(default=50, ge=1, description="Keys per GetProjects call.")
    page_size: int = Field(default=500, ge=1, description="PageSize of ListProjects/ListEmployees pages.")
    list_window_days: int = Field(
        default=120,
        ge=7,
        description="Longest timesheet-date range one ListTimesheets call asks for; longer "
        "ranges are split so no single answer grows without bound.",
    )
    list_cap: int = Field(
        default=LIST_CAP,
        ge=2,
        description="A ListTimesheets answer of exactly this many records is treated as cut "
        "off by the API and the request is split (7-day ranges, then by employee).",
    )
    status_scan_days: int | None = Field(
        default=None,
        ge=0,
        description="How many days back (from the run's last day) each timesheet run lists "
        "weeks to compare their status and totals with the warehouse; changed weeks before "
        "the run's own range are reported as days_to_reread. Unset: the deep refresh window "
        "(AJERA_DEEP_REFRESH_DAYS / TIMESHEET_DEEP_REFRESH_DAYS, default 120); 0: no scan.",
    )
    session_renew_margin_seconds: float = Field(
        default=60.0, ge=0, description="Create a new session this long before SessionExpiration."
    )

    _session: AjeraSession | None = PrivateAttr(default=None)

    @field_validator("timesheet_date", mode="before")
    @classmethod
    def _reading(cls, value: Any) -> Any:
        if isinstance(value, dg.EnvVar):
            return value  # checked here again with the variable's value when a run starts
        text = str(value).strip().lower() if value is not None else value
        if text not in READINGS:
            raise ValueError(f"AJERA_TIMESHEET_DATE must be one of {', '.join(READINGS)}, got {value!r}")
        return text

    # -- VendorResource hooks -------------------------------------------------------------------
    def secret_values(self) -> list[str | None]:
        return [self.password, self.api_id, self.username]

    def build_auth(self, client: VendorClient) -> AjeraSession:
        self._session = AjeraSession(self, client)
        return self._session

    def error_message(self, response: httpx.Response) -> str | None:
        try:
            envelope = Envelope.model_validate(response.json())
        except (ValueError, ValidationError, UnicodeDecodeError):
            return default_error_message(response)
        texts = envelope.error_texts()
        return "; ".join(texts) if texts else (envelope.message or default_error_message(response))

    def close_session(self, client: VendorClient) -> None:
        if self._session is None:
            return
        try:
            self._session.end()
        except Exception as exc:  # noqa: BLE001 - a failed goodbye must not fail the run
            client.log.warning("Ajera: EndAPISession failed: %s", client.redact(str(exc)))

    # -- calls -----------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"?{self.api_id}"

    @property
    def session(self) -> AjeraSession:
        _ = self.client  # opens the client (and the session hook) when used outside a run
        assert self._session is not None
        return self._session

    def call(self, method: str, arguments: Mapping[str, Any] | None = None, records: str | None = None) -> Any:
        """One Ajera method call; returns ``Content`` (with ``records``: the list ``Content[records]``)."""
        return self.session.call(method, arguments, records)

    def list_paged(
        self, method: str, records: str, key_of: Callable[[Any], Any], arguments: Mapping[str, Any] | None = None
    ) -> tuple[list[Any], int]:
        """Every record of a paged list method and the pages read (see ``listing``)."""
        return read_all_pages(
            lambda page: self.session.call_page(method, arguments, records, page, self.page_size), key_of, method
        )

    def _in_parallel(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1 or self.effective_in_flight <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.effective_in_flight, thread_name_prefix="ajera") as pool:
            return list(pool.map(fn, items))

    # -- timesheets ------------------------------------------------------------------------------
    def list_timesheets(self, earliest: date, latest: date, employees: Sequence[int] | None = None) -> list[Any]:
        """``ListTimesheets`` for ``TimesheetDate`` in ``earliest``..``latest`` (inclusive),
        optionally for some employees only (one answer: see ``TimesheetListing`` for a
        complete list)."""
        arguments: dict[str, Any] = {
            "FilterByEarliestTimesheetDate": earliest.isoformat(),
            "FilterByLatestTimesheetDate": latest.isoformat(),
        }
        if employees is not None:
            arguments["FilterByEmployee"] = list(employees)
        return self.call("ListTimesheets", arguments, records="Timesheets")

    def list_employees(self) -> tuple[list[Any], int]:
        """Every ``ListEmployees`` record (paged) and the pages read."""
        return self.list_paged("ListEmployees", "Employees", employee_key)

    def get_timesheets(self, keys: Sequence[int]) -> list[list[Any]]:
        """``GetTimesheets`` in batches (in parallel up to the in-flight cap); one list per batch."""

        def one(batch: list[int]) -> list[Any]:
            return self.call("GetTimesheets", {"RequestedTimesheets": batch}, records="Timesheets")

        return self._in_parallel(one, batched(list(keys), self.timesheet_batch_size))

    def fetch_timesheets(self, first: date, last: date, scan_from: date | None = None) -> TimesheetFetch:
        """Every timesheet with a day in ``first``..``last`` (list records and details), plus,
        with ``scan_from`` before ``first``, the list records of the weeks with a day in
        ``scan_from``..``first − 1`` (one listing covers both)."""
        reading = self.timesheet_date
        scan = scan_from is not None and scan_from < first
        fetch = TimesheetFetch(first=first, last=last, reading=reading, scan_from=scan_from if scan else None)
        earliest, latest = listing_range(scan_from if scan and scan_from is not None else first, last)
        listing = TimesheetListing(self)
        seen: set[int] = set()
        keys: list[int] = []
        for record in listing.weeks(earliest, latest):
            key = timesheet_key(record)
            if key is not None and key in seen:
                continue
            if key is not None:
                seen.add(key)
            week = listed_week_date(record)
            try:
                in_window = week is None or touches(week, first, last, reading)
                in_scan = (
                    scan
                    and scan_from is not None
                    and week is not None
                    and touches(week, scan_from, first - timedelta(days=1), reading)
                )
            except OverflowError:  # a week at the end of the calendar: validation quarantines it
                in_window, in_scan = True, False
            if in_scan and key is not None:
                fetch.scanned.append(record)
            if in_window:
                fetch.listed.append(record)
                if key is not None:
                    keys.append(key)
            elif not in_scan:
                # Listed for the other reading's sake (or beyond the filter range): no day of it
                # is in the window, so it is neither fetched nor stored.
                fetch.outside_window += 1
        fetch.list_calls, fetch.truncated_lists = listing.calls, listing.truncated
        fetch.listed_keys = seen
        batches = self.get_timesheets(keys)
        fetch.get_calls = len(batches)
        wanted = set(keys)
        for batch in batches:
            for detail in batch:
                key = detail_key(detail)
                if key is None or key not in wanted:
                    fetch.unrequested_details += 1
                    continue
                fetch.details[key] = detail
        if fetch.unrequested_details:
            LOGGER.warning(
                "Ajera: GetTimesheets returned %d records that were not requested", fetch.unrequested_details
            )
        return fetch

    # -- projects --------------------------------------------------------------------------------
    def list_projects(self) -> tuple[list[Any], int]:
        """All ``ListProjects`` records (paged) and the pages read."""
        return self.list_paged("ListProjects", "Projects", project_key)

    def get_projects(self, keys: Sequence[int]) -> list[list[Any]]:
        """``GetProjects`` in batches; one list of project records per batch.

        API version 2 answers flat lists (``Projects``, ``InvoiceGroups``, ``Phases``,
        ``Resources``) linked by ``ProjectKey``; each project record gets its invoice groups
        attached as ``InvoiceGroups`` (where version 1 nests them), since the client is on the
        invoice group. A version 1 answer (groups nested) is used as served."""

        def one(batch: list[int]) -> list[Any]:
            content = self.call("GetProjects", {"RequestedProjects": batch})
            projects = content_records(content, "Projects", "GetProjects")
            # Version 1 has no top-level InvoiceGroups list (they are nested in each project).
            has_groups = isinstance(content, Mapping) and any(
                isinstance(k, str) and k.lower() == "invoicegroups" for k in content
            )
            groups = content_records(content, "InvoiceGroups", "GetProjects") if has_groups else []
            return attach_invoice_groups(projects, groups)

        return self._in_parallel(one, batched(list(keys), self.project_batch_size))


def attach_invoice_groups(projects: list[Any], groups: list[Any]) -> list[Any]:
    """Version 2's flat ``InvoiceGroups`` put on their projects (by ``ProjectKey``)."""
    if not groups:
        return projects
    by_project: dict[int, list[Any]] = {}
    for group in groups:
        key = project_key(group) if isinstance(group, Mapping) else None
        if key is not None:
            by_project.setdefault(key, []).append(group)
    out = []
    for record in projects:
        key = project_key(record)
        if isinstance(record, Mapping) and key in by_project and not record.get("InvoiceGroups"):
            record = {**record, "InvoiceGroups": by_project[key]}
        out.append(record)
    return out
