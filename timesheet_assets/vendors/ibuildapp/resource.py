"""iBuildApp Timesheets client: bearer-token session, ``status: ERROR`` envelopes, limit/offset
search endpoints with their ``with`` side tables, and the account and history calls.

Decisions where the documentation is silent or ambiguous (the reasons and the evidence are in
docs/vendors/ibuildapp.md):

* **Login path.** Not in the doc; ``POST /api/{APP_CODE}/login`` by default (``login_path``).
* **Errors.** ``{"status": "ERROR", "message", "error_code"}`` is a failure whatever the HTTP
  status; ``error_code`` 9 means the token is no longer valid: log in again once. 500 ("Try
  again later") is retried like 502/503/504.
* **Rate limit.** None documented: 5 requests/s and 2 in flight by default (overridable).
* **Paging.** ``limit``/``offset`` until ``count``; the offset advances by the rows actually
  returned (a server may cap pages silently). ``count`` may sit at the top level or inside
  ``data``, and may count the page rather than the search: it ends the read only once it has
  shown itself a total. Each walk is checked against ``count`` and read again when the list
  moved under it (``listing.py``).
* **``data`` "packed to JSON string".** A string holding a JSON object or list is unpacked
  (blank: no records); any other string is a broken page and fails the run, as does a page
  whose ``data`` is neither object nor list, or one with no records although ``count`` says
  more remain (after retries).
* **Time window.** The doc does not say whether ``end_datetime`` bounds an entry's start or its
  end. The client asks from local midnight before the first day to local midnight after the
  last day plus ``window_end_margin_hours`` (24 by default), so a shift that starts on the last
  day and ends after midnight is served under either reading, and keeps only entries whose
  *start* falls on a day of the window (the others belong to other partitions).
* **Side tables** arrive as objects keyed by id strings, or as lists (a PHP backend serialises
  keys 0..n-1 so); ``data`` itself may be the list of records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import httpx
from pydantic import Field, field_validator

from ...http import AuthExpired, MalformedBody, VendorClient, VendorRejected, decode_json, default_error_message
from ...http.retry import RETRYABLE_STATUSES
from ...settings import SettingError
from ..base import VendorResource
from .envelope import envelope_message, is_auth_error
from .listing import ListRead, read_until_clean, require_complete_union
from .session import (  # noqa: F401 - the variables' names are part of this module's interface
    ENV_APP_CODE,
    ENV_BASE_URL,
    ENV_EMAIL,
    ENV_PASSWORD,
    ENV_TIMEZONE,
    ENV_TOKEN,
    IBuildAppTokenRejected,
    Session,
)

DEFAULT_LOGIN_PATH = "/api/{app_code}/login"

TIME_ENTRY_SEARCH = "ts/search"
PROJECT_SEARCH = "project/search"
USER_INFO = "user"
USER_SEARCH = "user/search"
USER_HISTORY = "user/history"
TIME_ENTRY_SIDE_TABLES = ("users", "tasks", "projects")
PROJECT_SIDE_TABLES = ("tasks", "clients")
# The documented "500 -- ... Try again later." is transient for this vendor.
RETRY_STATUSES = RETRYABLE_STATUSES | {500}
DEFAULT_TIMEZONE = "UTC"


def parse_envelope(response: httpx.Response) -> dict[str, Any]:
    """The decoded body of a successful call; raises on an ``ERROR`` envelope under HTTP 2xx."""
    body = decode_json(response)
    if not isinstance(body, dict):
        raise MalformedBody("expected a JSON object")
    message = envelope_message(body)
    if message is not None:
        if is_auth_error(body):
            raise AuthExpired(message)
        raise VendorRejected(message)
    return body


def side_table(data: Any, name: str) -> dict[str, dict[str, Any]]:
    """A ``with`` side table as ``{id string: object}`` whether served as object or list."""
    table = data.get(name) if isinstance(data, Mapping) else None
    if isinstance(table, Mapping):
        return {str(key): dict(value) for key, value in table.items() if isinstance(value, Mapping)}
    if isinstance(table, list):
        indexed: dict[str, dict[str, Any]] = {}
        for position, value in enumerate(table):
            if isinstance(value, Mapping):
                key = value.get("id", position)
                indexed[str(key)] = dict(value)
        return indexed
    return {}


def page_records(data: Any, key: str) -> list[Any]:
    if isinstance(data, Mapping):
        rows = data.get(key)
        if isinstance(rows, list):
            return rows
        if isinstance(rows, Mapping):  # PHP object instead of list
            return list(rows.values())
        return []
    if isinstance(data, list):
        # "data": [] for an empty result; earlier API versions put the records straight
        # into "data" (without side tables). Non-objects are kept: they are quarantined.
        return list(data)
    return []


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def unpack_data(text: str) -> Any:
    """``data`` served as the doc describes it, "packed to JSON string": the object or list it
    holds (``None`` for a blank string). Any other string is returned as is (a broken page)."""
    if not text.strip():
        return None
    try:
        unpacked = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return unpacked if unpacked is None or isinstance(unpacked, (Mapping, list)) else text


def page_parser(list_key: str, offset: int) -> Callable[[httpx.Response], dict[str, Any]]:
    """``parse_envelope`` plus a shape check of one search page (see "Malformed pages")."""

    def parse(response: httpx.Response) -> dict[str, Any]:
        body = parse_envelope(response)
        data = body.get("data")
        if isinstance(data, str):
            data = body["data"] = unpack_data(data)
        where = f"malformed page at offset {offset}"
        if data is not None and not isinstance(data, (Mapping, list)):
            raise VendorRejected(f"{where}: 'data' is {_type_name(data)}, expected an object or a list")
        if isinstance(data, Mapping):
            rows = data.get(list_key)
            if rows is not None and not isinstance(rows, (list, Mapping)):
                raise VendorRejected(f"{where}: 'data.{list_key}' is {_type_name(rows)}, expected a list")
        count = _count(body, data)
        if not page_records(data, list_key) and count is not None and offset < count:
            raise MalformedBody(f"{where}: no records although count is {count}")
        return body

    return parse


def _count(body: Mapping[str, Any], data: Any) -> int | None:
    for holder in (body, data):
        if isinstance(holder, Mapping):
            value = holder.get("count")
            if value is None or isinstance(value, bool):
                continue
            try:
                return int(value)
            except (TypeError, ValueError):
                continue
    return None


def dedup_key(row: Any) -> str | None:
    """The identity under which a search keeps one copy of a record (``str(id)``)."""
    if type(row) is dict or isinstance(row, Mapping):
        value = row.get("id")
        return str(value) if value is not None else None
    return None


@dataclass
class SearchPage:
    """One answer of a paged search: its records, its side tables, its ``count``."""

    rows: list[Any]
    related: dict[str, dict[str, dict[str, Any]]]
    reported_count: int | None
    offset: int


@dataclass
class SearchResult:
    """Every record of one paged search plus the union of the side tables of all pages;
    ``reads`` walks were made, ``complete`` when one of them was clean (else the union of all
    walks is kept, see ``listing.py``)."""

    records: list[Any]
    related: dict[str, dict[str, dict[str, Any]]]
    pages: int
    reported_count: int | None
    duplicates_dropped: int = 0
    reads: int = 1
    complete: bool = True
    problems: list[str] = field(default_factory=list)


def unpacked_data(body: Mapping[str, Any]) -> Any:
    """A body's ``data``, unpacked when it is "packed to JSON string"."""
    data = body.get("data")
    return unpack_data(data) if isinstance(data, str) else data


def api_id(value: str) -> int | str:
    """An id as the API takes it in a request (documented as Integer)."""
    return int(value) if value.isdigit() else value


class IBuildAppResource(VendorResource):
    """iBuildApp Timesheets API (``POST /api/{APP_CODE}/…`` with a bearer token)."""

    vendor_label: ClassVar[str] = "iBuildApp"
    default_requests_per_second: ClassVar[float] = 5.0
    default_max_in_flight: ClassVar[int] = 2
    retry_statuses: ClassVar[frozenset[int]] = RETRY_STATUSES
    env_required: ClassVar[Mapping[str, str]] = {"base_url": ENV_BASE_URL, "app_code": ENV_APP_CODE}
    # A token or e-mail + password: whichever is set (the resource names what is missing).
    env_optional: ClassVar[Mapping[str, str]] = {
        "token": ENV_TOKEN,
        "email": ENV_EMAIL,
        "password": ENV_PASSWORD,
        "timezone": ENV_TIMEZONE,
    }

    app_code: str = Field(description=f"Application code in every path ({ENV_APP_CODE}).")
    token: str | None = Field(
        default=None, description=f"A ready bearer token ({ENV_TOKEN}); optional with email+password."
    )
    email: str | None = Field(default=None, description=f"Login e-mail ({ENV_EMAIL}).")
    password: str | None = Field(default=None, description=f"Login password ({ENV_PASSWORD}).")
    login_path: str = Field(
        default=DEFAULT_LOGIN_PATH,
        description="Path of the login call (undocumented in the API doc); '{app_code}' is filled in.",
    )
    page_size: int = Field(default=500, ge=1, description="'limit' of each search call (no maximum is documented).")
    timezone: str | None = Field(
        default=None,
        description=f"IANA zone whose calendar day of an entry's start_time is its work_date "
        f"({ENV_TIMEZONE}); unset means UTC, with a warning in every load.",
    )
    window_end_margin_hours: float = Field(
        default=24.0,
        ge=0,
        description="Hours added to the end of each ts/search window, so entries that start on the "
        "window's last day and end after midnight are served whether end_datetime bounds an "
        "entry's start or its end.",
    )
    max_list_reads: int = Field(
        default=3, ge=1, description="Walks of one search when the list moves while it is read."
    )
    admin_roles: list[str] = Field(
        default_factory=lambda: ["*ADMIN*"],
        description="Role names (shell patterns, any case) of an account that sees every user's "
        "time entries; the login must hold one. Empty: no check.",
    )
    change_scan: bool = Field(
        default=True, description="Ask user/history of every user for entries changed since the last run."
    )
    change_scan_overlap_seconds: int = Field(
        default=300, ge=0, description="How far before the last scan's server time the next scan starts."
    )

    @field_validator("timezone", mode="before")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if isinstance(value, dg.EnvVar):  # checked once the run resolves it
            return value
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError(f"timezone must be an IANA zone name, got {value!r}")
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value.strip()

    # -- configuration -------------------------------------------------------------------
    @property
    def can_log_in(self) -> bool:
        return bool(self.email) and bool(self.password)

    @property
    def timezone_configured(self) -> bool:
        return self.timezone is not None

    @property
    def zone_name(self) -> str:
        return self.timezone or DEFAULT_TIMEZONE

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_name)

    @property
    def api_prefix(self) -> str:
        return f"/api/{quote(self.app_code.strip(), safe='')}"

    @property
    def login_url_path(self) -> str:
        return self.login_path.replace("{app_code}", quote(self.app_code.strip(), safe="")).replace(
            "{APP_CODE}", quote(self.app_code.strip(), safe="")
        )

    def check_configuration(self) -> None:
        """Fail before any request when the credentials cannot work, naming the variables."""
        if not (self.app_code or "").strip():
            raise SettingError(f"{self.vendor_label}: {ENV_APP_CODE} is empty")
        if bool(self.email) != bool(self.password):
            present, absent = (ENV_EMAIL, ENV_PASSWORD) if self.email else (ENV_PASSWORD, ENV_EMAIL)
            raise SettingError(f"{self.vendor_label}: {present} is set but {absent} is not; logging in needs both")
        if not self.token and not self.can_log_in:
            raise SettingError(
                f"{self.vendor_label} needs {ENV_TOKEN}, or {ENV_EMAIL} and {ENV_PASSWORD}; "
                f"none of {ENV_TOKEN}, {ENV_EMAIL}, {ENV_PASSWORD} is set"
            )

    def secret_values(self) -> list[str | None]:
        return [self.token, self.password, self.email]

    def build_auth(self, client: VendorClient) -> Session:
        self.check_configuration()
        return Session(self, client)

    def error_message(self, response: httpx.Response) -> str | None:
        try:
            message = envelope_message(response.json())
        except (ValueError, UnicodeDecodeError):
            message = None
        return message or default_error_message(response)

    @property
    def logins(self) -> int:
        auth = self.client.auth
        return auth.logins if isinstance(auth, Session) else 0

    # -- calls -----------------------------------------------------------------------------
    def call(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        parse: Callable[[httpx.Response], dict[str, Any]] = parse_envelope,
    ) -> dict[str, Any]:
        """One authenticated ``POST /api/{APP_CODE}/{endpoint}``."""
        return self.client.request("POST", f"{self.api_prefix}/{endpoint}", json_body=dict(body), parse=parse)

    def iter_search(
        self,
        endpoint: str,
        list_key: str,
        side_tables: Iterable[str],
        filters: Mapping[str, Any] | None = None,
    ) -> Iterator[SearchPage]:
        """One walk of a ``*/search`` endpoint with ``limit``/``offset`` until ``count``,
        yielding each page as it arrives (a long read never holds every record)."""
        side_tables = tuple(side_tables)
        offset = 0
        count_is_total = False
        while True:
            body = {**(filters or {}), "limit": self.page_size, "offset": offset}
            if side_tables:
                body["with"] = list(side_tables)
            payload = self.call(endpoint, body, parse=page_parser(list_key, offset))
            data = payload.get("data")
            rows = page_records(data, list_key)
            reported = _count(payload, data)
            yield SearchPage(rows, {name: side_table(data, name) for name in side_tables}, reported, offset)
            offset += len(rows)
            if not rows:
                break
            if reported is not None and reported > offset:
                # More remain. A count above the rows read so far can only be the search's
                # total (a count of the page's own rows never exceeds them).
                count_is_total = True
                continue
            if reported is not None and reported == offset and count_is_total:
                break
            # No count, or one that may count only this page: a short page is the last one;
            # after a full page one more call decides (an empty page ends the read).
            if len(rows) < self.page_size:
                break

    def search(
        self,
        endpoint: str,
        list_key: str,
        side_tables: Iterable[str],
        filters: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """Every record of a paged search, each id once (the latest copy), with the union of
        the side tables of all pages; read again when the list moved under the offset."""
        side_tables = tuple(side_tables)
        pages = 0

        def read_once() -> tuple[SearchResult, ListRead, int]:
            nonlocal pages
            read = ListRead()
            result = SearchResult([], {name: {} for name in side_tables}, 0, None)
            position_by_id: dict[str, int] = {}
            for page in self.iter_search(endpoint, list_key, side_tables, filters):
                read.observe(page)
                _absorb(result, position_by_id, page)
            result.pages, result.reported_count = read.pages, read.last_count
            pages += read.pages
            return result, read, len(result.records)

        outcome = read_until_clean(self, endpoint, read_once)
        if outcome.clean:
            result = outcome.kept[0]
        else:
            result = SearchResult([], {name: {} for name in side_tables}, 0, outcome.last.last_count)
            position_by_id: dict[str, int] = {}
            for walk in outcome.kept:  # oldest first: a later walk's copy wins
                _absorb(result, position_by_id, SearchPage(walk.records, walk.related, None, 0))
            result.duplicates_dropped = outcome.kept[-1].duplicates_dropped
            require_complete_union(self, endpoint, outcome, len(result.records))
        result.pages, result.reads = pages, outcome.reads
        result.complete, result.problems = outcome.clean, outcome.problems
        return result

    # -- entities ----------------------------------------------------------------------------
    def window_bounds(self, first: date, last: date) -> tuple[int, int]:
        """Epoch seconds of local midnight before ``first`` and after ``last``."""
        zone = self.zone
        start = datetime.combine(first, time.min, tzinfo=zone)
        end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
        return int(start.timestamp()), int(end.timestamp())

    def search_window(self, first: date, last: date) -> dict[str, int]:
        """The ``ts/search`` filter of a work-date window (see "Time window")."""
        start, end = self.window_bounds(first, last)
        return {"start_datetime": start, "end_datetime": end + round(self.window_end_margin_hours * 3600)}

    def work_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def search_time_entries(self, first: date, last: date) -> SearchResult:
        """Time entries of the (widened) work-date window, with users, tasks and projects."""
        return self.search(TIME_ENTRY_SEARCH, "time_entries", TIME_ENTRY_SIDE_TABLES, self.search_window(first, last))

    def iter_time_entry_pages(self, first: date, last: date) -> Iterator[SearchPage]:
        """One walk of ``search_time_entries`` page by page (duplicates not yet resolved)."""
        return self.iter_search(
            TIME_ENTRY_SEARCH, "time_entries", TIME_ENTRY_SIDE_TABLES, self.search_window(first, last)
        )

    def time_entries_by_id(self, ids: Iterable[str]) -> list[Any]:
        """The current entries of ``ids`` (``ts/search`` by ``time_entry_ids``, one search per
        ``page_size`` ids); deleted ones are simply absent."""
        wanted = sorted({str(i) for i in ids}, key=lambda i: (len(i), i))
        records: list[Any] = []
        for start in range(0, len(wanted), self.page_size):
            chunk = [api_id(i) for i in wanted[start : start + self.page_size]]
            records += self.search(TIME_ENTRY_SEARCH, "time_entries", (), {"time_entry_ids": chunk}).records
        return records

    def search_projects(self) -> SearchResult:
        """Every project, with its tasks and clients."""
        return self.search(PROJECT_SEARCH, "projects", PROJECT_SIDE_TABLES)

    def current_user(self) -> Mapping[str, Any]:
        """``POST user`` without ``user_id``: the logged-in account ("current user's id is used")."""
        data = unpacked_data(self.call(USER_INFO, {}))
        return data if isinstance(data, Mapping) else {}

    def search_users(self) -> SearchResult:
        """Every user of the application (``user/search`` without filters)."""
        return self.search(USER_SEARCH, "users", ())

    def user_history(self, user_id: str, last_update: int) -> dict[str, Any]:
        """``user/history`` of one user since ``last_update`` (epoch seconds); the body as served
        (``status`` SUCCESS or NOT-MODIFIED, ``data.time_entries``, ``timestamp``)."""
        body = self.call(USER_HISTORY, {"user_id": api_id(user_id), "last_update": int(last_update)})
        body["data"] = unpacked_data(body)
        return body


def _absorb(result: SearchResult, position_by_id: dict[str, int], page: SearchPage) -> None:
    """Add a page's records (each id once, a later copy replacing an earlier one in its place:
    the list moved under the offset) and side tables to ``result``."""
    for name, table in page.related.items():
        result.related.setdefault(name, {}).update(table)
    for row in page.rows:
        key = dedup_key(row)
        if key is not None and key in position_by_id:
            result.records[position_by_id[key]] = row
            result.duplicates_dropped += 1
            continue
        if key is not None:
            position_by_id[key] = len(result.records)
        result.records.append(row)
