"""iBuildApp Timesheets client: bearer-token session, ``status: ERROR`` envelopes, limit/offset
search endpoints with their ``with`` side tables.

Decisions where the documentation is silent or ambiguous (also in docs/vendors/ibuildapp.md):

* **Login path.** The doc shows the login body and answer but no path. The vendor's published
  reference names ``POST /api/{APP_CODE}/login``; that is the default of ``login_path`` and it
  can be changed without code.
* **Errors.** ``{"status": "ERROR", "message", "error_code"}`` is a failure whatever the HTTP
  status. ``error_code`` 9 ("Auth token not specified or incorrect.") means the token is no
  longer valid: log in again once, which needs ``IBUILDAPP_EMAIL`` + ``IBUILDAPP_PASSWORD``;
  with only ``IBUILDAPP_TOKEN`` the run fails and says which variables would fix it.
* **Rate limit.** None documented: 5 requests/s and 2 in flight by default (overridable).
* **Paging.** ``limit``/``offset`` until ``count``. No maximum ``limit`` is documented, so
  the offset advances by the rows actually returned: a server that caps the page size
  silently still yields every record. ``count`` may sit at the top level (ts/search,
  project/search) or inside ``data`` (task/search); both are read. "Count of finded objects"
  may also mean the page's rows: ``count`` ends the read only once it has shown itself a
  total (above the rows read so far); otherwise a short or empty page ends it.
* **``data`` "packed to JSON string".** The doc describes every ``data`` so; a string holding
  a JSON object or list is unpacked (blank: no records), any other string is a broken page.
* **Time window.** ``start_datetime``/``end_datetime`` are epoch seconds; the doc does not say
  whether they bound the start time or the whole entry, nor whether the end is inclusive.
  The client asks for ``[first 00:00, last+1 00:00]`` in the configured timezone and keeps
  only entries whose *start* falls on a day of the window, so either reading of the filter
  gives the same rows and every row belongs to a partition of the run.
* **Malformed pages.** A page whose ``data`` (or ``data.<records>``) is neither an object nor a
  list is a changed or broken API: the run fails at once naming the endpoint and offset
  instead of reading it as "no more records" (that would replace a partition with nothing).
  A page with no records although ``count`` says more remain is retried (a replica may lag),
  then fails the same way. Records that are not objects are kept and quarantined.
* **Server errors.** The doc's error table says of 500 "We had a problem with our server. Try
  again later.", so 500 is retried like 502/503/504 (searches are reads: safe to repeat).
* **Side tables** (``users``, ``tasks``, ``projects``, ``clients``) arrive as objects keyed by
  id strings; a PHP backend serialises keys 0..n-1 as a JSON list, so lists of objects are
  indexed by their ``id`` too. ``data`` itself may be a list (an empty result, or the
  records without side tables, as earlier API versions answered).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import Field, field_validator

from ...http import (
    AuthExpired,
    MalformedBody,
    VendorClient,
    VendorError,
    VendorRejected,
    decode_json,
    default_error_message,
)
from ...http.retry import RETRYABLE_STATUSES
from ...settings import SettingError
from ..base import VendorResource

ENV_BASE_URL = "IBUILDAPP_BASE_URL"
ENV_APP_CODE = "IBUILDAPP_APP_CODE"
ENV_TOKEN = "IBUILDAPP_TOKEN"
ENV_EMAIL = "IBUILDAPP_EMAIL"
ENV_PASSWORD = "IBUILDAPP_PASSWORD"

AUTH_ERROR_CODE = "9"
DEFAULT_LOGIN_PATH = "/api/{app_code}/login"

TIME_ENTRY_SEARCH = "ts/search"
PROJECT_SEARCH = "project/search"
TIME_ENTRY_SIDE_TABLES = ("users", "tasks", "projects")
PROJECT_SIDE_TABLES = ("tasks", "clients")
# The documented "500 -- ... Try again later." is transient for this vendor.
RETRY_STATUSES = RETRYABLE_STATUSES | {500}


class IBuildAppTokenRejected(VendorError, SettingError):
    """The configured token was refused and there are no credentials to get a new one: a
    configuration problem (it names the variables to set), so it fails the run at once."""


def envelope_message(body: Any) -> str | None:
    """``"<message> (error_code N)"`` for an iBuildApp ``status: ERROR`` body, else ``None``."""
    if not isinstance(body, Mapping) or str(body.get("status", "")).upper() != "ERROR":
        return None
    message = body.get("message")
    text = message.strip() if isinstance(message, str) and message.strip() else "error without a message"
    code = body.get("error_code")
    return f"{text} (error_code {code})" if code not in (None, "") else text


def _is_auth_error(body: Mapping[str, Any]) -> bool:
    return str(body.get("error_code", "")).strip() == AUTH_ERROR_CODE


def parse_envelope(response: httpx.Response) -> dict[str, Any]:
    """The decoded body of a successful call; raises on an ``ERROR`` envelope under HTTP 2xx."""
    body = decode_json(response)
    if not isinstance(body, dict):
        raise MalformedBody("expected a JSON object")
    message = envelope_message(body)
    if message is not None:
        if _is_auth_error(body):
            raise AuthExpired(message)
        raise VendorRejected(message)
    return body


def parse_login(response: httpx.Response) -> str:
    body = decode_json(response)
    if not isinstance(body, dict):
        raise MalformedBody("expected a JSON object")
    message = envelope_message(body)
    if message is not None:
        # Never AuthExpired here: re-authenticating a failed login would only log in again.
        raise VendorRejected(f"login failed: {message}")
    token = body.get("token")
    if not isinstance(token, str) or not token.strip():
        raise VendorRejected("login answered without a token")
    return token.strip()


def side_table(data: Any, name: str) -> dict[str, dict[str, Any]]:
    """A ``with`` side table as ``{id string: object}`` whether served as object or list."""
    table = data.get(name) if isinstance(data, Mapping) else None
    if isinstance(table, Mapping):
        return {str(key): value for key, value in table.items() if isinstance(value, Mapping)}
    if isinstance(table, list):
        indexed: dict[str, dict[str, Any]] = {}
        for position, value in enumerate(table):
            if isinstance(value, Mapping):
                key = value.get("id", position)
                indexed[str(key)] = dict(value)
        return indexed
    return {}


def _records(data: Any, key: str) -> list[Any]:
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
        if not _records(data, list_key) and count is not None and offset < count:
            raise MalformedBody(f"{where}: no records although count is {count}")
        return body

    return parse


def _count(body: Mapping[str, Any], data: Any) -> int | None:
    for holder in (body, data):
        if isinstance(holder, Mapping):
            value = holder.get("count")
            if isinstance(value, bool):
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
    """Every record of one paged search plus the union of the side tables of all pages."""

    records: list[Any]
    related: dict[str, dict[str, dict[str, Any]]]
    pages: int
    reported_count: int | None
    duplicates_dropped: int = 0


@dataclass(repr=False)
class _Session:
    """The AuthHook: a bearer token, from configuration or a lazy login; ``refresh`` logs in
    again once per rejected call (the shared client guarantees "once")."""

    resource: "IBuildAppResource"
    client: VendorClient
    token: str | None = None
    logins: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.token = self.resource.token or None

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self.token is None:
                self.token = self._login()
            return {"Authorization": f"Bearer {self.token}"}

    def refresh(self) -> None:
        if not self.resource.can_log_in:
            raise IBuildAppTokenRejected(
                self.resource.vendor_label,
                f"{self.resource.vendor_label} rejected the configured {ENV_TOKEN} (expired or "
                f"revoked) and no {ENV_EMAIL}/{ENV_PASSWORD} are configured to log in again; "
                f"set a fresh {ENV_TOKEN} or both {ENV_EMAIL} and {ENV_PASSWORD}",
            )
        with self._lock:
            self.token = None
            self.token = self._login()

    def _login(self) -> str:
        res = self.resource
        token = self.client.request(
            "POST",
            res.login_url_path,
            json_body={"email": res.email, "password": res.password},
            authenticate=False,
            parse=parse_login,
        )
        # The session token is as secret as the password from here on.
        self.client.redact.add(token)
        self.logins += 1
        return token


class IBuildAppResource(VendorResource):
    """iBuildApp Timesheets API (``POST /api/{APP_CODE}/…`` with a bearer token)."""

    vendor_label: ClassVar[str] = "iBuildApp"
    default_requests_per_second: ClassVar[float] = 5.0
    default_max_in_flight: ClassVar[int] = 2
    retry_statuses: ClassVar[frozenset[int]] = RETRY_STATUSES
    env_required: ClassVar[Mapping[str, str]] = {"base_url": ENV_BASE_URL, "app_code": ENV_APP_CODE}
    # A token or e-mail + password: whichever is set (the resource names what is missing).
    env_optional: ClassVar[Mapping[str, str]] = {"token": ENV_TOKEN, "email": ENV_EMAIL, "password": ENV_PASSWORD}

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
    page_size: int = Field(
        default=500, ge=1, description="'limit' of each search call (no maximum is documented)."
    )
    timezone: str = Field(
        default="UTC",
        description="IANA zone whose calendar day of an entry's start_time is its work_date.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    # -- configuration -------------------------------------------------------------------
    @property
    def can_log_in(self) -> bool:
        return bool(self.email) and bool(self.password)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

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
            raise SettingError(
                f"{self.vendor_label}: {present} is set but {absent} is not; logging in needs both"
            )
        if not self.token and not self.can_log_in:
            raise SettingError(
                f"{self.vendor_label} needs {ENV_TOKEN}, or {ENV_EMAIL} and {ENV_PASSWORD}; "
                f"none of {ENV_TOKEN}, {ENV_EMAIL}, {ENV_PASSWORD} is set"
            )

    def secret_values(self) -> list[str | None]:
        return [self.token, self.password, self.email]

    def build_auth(self, client: VendorClient) -> _Session:
        self.check_configuration()
        return _Session(self, client)

    def error_message(self, response: httpx.Response) -> str | None:
        try:
            message = envelope_message(response.json())
        except (ValueError, UnicodeDecodeError):
            message = None
        return message or default_error_message(response)

    @property
    def logins(self) -> int:
        auth = self.client.auth
        return auth.logins if isinstance(auth, _Session) else 0

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
        """Page through a ``*/search`` endpoint with ``limit``/``offset`` until ``count``,
        yielding each page as it arrives (a long read never holds every record)."""
        side_tables = tuple(side_tables)
        offset = 0
        count_is_total = False
        while True:
            body = {**(filters or {}), "limit": self.page_size, "offset": offset, "with": list(side_tables)}
            payload = self.call(endpoint, body, parse=page_parser(list_key, offset))
            data = payload.get("data")
            rows = _records(data, list_key)
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
        """Every record of a paged search (see ``iter_search``), each id once, with the union
        of the side tables of all pages."""
        side_tables = tuple(side_tables)
        related: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in side_tables}
        records: list[Any] = []
        position_by_id: dict[str, int] = {}
        duplicates = 0
        pages = 0
        reported: int | None = None
        for page in self.iter_search(endpoint, list_key, side_tables, filters):
            pages += 1
            for name in side_tables:
                related[name].update(page.related[name])
            reported = page.reported_count
            for row in page.rows:
                key = dedup_key(row)
                if key is not None and key in position_by_id:
                    # The list moved under the offset (a record was added or removed mid-read):
                    # keep the newer copy once.
                    records[position_by_id[key]] = row
                    duplicates += 1
                    continue
                if key is not None:
                    position_by_id[key] = len(records)
                records.append(row)
        return SearchResult(records, related, pages, reported, duplicates)

    # -- entities ----------------------------------------------------------------------------
    def window_bounds(self, first: date, last: date) -> tuple[int, int]:
        """Epoch seconds of local midnight before ``first`` and after ``last``."""
        zone = self.zone
        start = datetime.combine(first, time.min, tzinfo=zone)
        end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)
        return int(start.timestamp()), int(end.timestamp())

    def work_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def search_time_entries(self, first: date, last: date) -> SearchResult:
        """Time entries starting in the work-date window, with users, tasks and projects."""
        start, end = self.window_bounds(first, last)
        return self.search(
            TIME_ENTRY_SEARCH,
            "time_entries",
            TIME_ENTRY_SIDE_TABLES,
            {"start_datetime": start, "end_datetime": end},
        )

    def iter_time_entry_pages(self, first: date, last: date) -> Iterator[SearchPage]:
        """``search_time_entries`` page by page (duplicates not yet resolved)."""
        start, end = self.window_bounds(first, last)
        return self.iter_search(
            TIME_ENTRY_SEARCH,
            "time_entries",
            TIME_ENTRY_SIDE_TABLES,
            {"start_datetime": start, "end_datetime": end},
        )

    def search_projects(self) -> SearchResult:
        """Every project, with its tasks and clients."""
        return self.search(PROJECT_SEARCH, "projects", PROJECT_SIDE_TABLES)


