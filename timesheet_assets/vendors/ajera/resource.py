"""Ajera API client: one RPC endpoint, a session token in every body, an envelope on every answer.

Every call is ``POST {AJERA_BASE_URL}?{AJERA_API_ID}`` with ``{"Method", "SessionToken",
"MethodArguments"}``. Decisions where the documentation is silent (details in
docs/vendors/ajera.md):

* ``CreateAPISession`` carries ``Username``/``Password``/``APIVersion``/``UseSessionCookie``
  at the top level of the body, as Ajera's own clients send them, and again in
  ``MethodArguments`` (the place every other method takes its arguments), so a server reading
  either place accepts it. The session is reused until ``SessionExpiration`` (less a margin);
  an expiration that is already past when the session is created says nothing usable (the
  server's clock or zone differs) and is ignored.
* "The session is invalid" is ``ResponseCode`` 401, HTTP 401, or an ``Errors`` message saying
  the session is invalid/expired: the shared client re-creates the session once and repeats
  the call (``AuthExpired``); "token" counts as "session" in such a message. Any other
  non-200 ``ResponseCode`` or any ``Errors`` entry fails the call with the vendor's message,
  also under HTTP 200.
* The session token travels in the body, not in a header. The shared client asks the auth hook
  to ``sign_body`` before every attempt; this hook returns the body with the current
  ``SessionToken`` written in, so the repeat after a re-created session carries the new token.
* No records may come as ``[]``, ``null``, a missing list or a ``null``/``""`` ``Content``
  (the documentation shows only a non-empty list). An answer that is none of these and not the
  documented shape (``Content`` some other value, a record list that is not a list, records
  under another name) fails the call at once (``VendorRejected``): it is valid JSON, so asking
  again would not change it, and reading it as "no records" would replace a window with
  nothing. A body that is not JSON at all (cut off, an HTML error page) is retried like a broken
  connection.
* Every failure message names the Ajera method after the path (all methods share one URL):
  ``Ajera POST /AjeraAPI.ashx failed with HTTP 503 after 3 attempts: GetTimesheets: ...``.
* No rate limit is documented: 5 requests/s and 2 in flight by default, both configurable.
* The API id is a secret like the password: it lives only in the query string, which errors
  and request logs never show (they name the path), and it is scrubbed like the password.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence, TypeVar

import httpx
from pydantic import Field, PrivateAttr, ValidationError

from ...http import (
    AuthExpired,
    MalformedBody,
    VendorClient,
    VendorHTTPError,
    VendorRejected,
    decode_json,
    default_error_message,
)
from ..base import VendorResource
from .models import MAX_KEY, Envelope, ProjectListRecord, SessionContent, parse_timestamp

LOGGER = logging.getLogger(__name__)

API_VERSION = 2
# ``ListTimesheets`` filters on the week's first day; a week that started up to six days
# before the window still has days inside it.
WEEK_LOOKBACK = timedelta(days=6)

_SESSION_WORDS = ("session", "token")
_INVALID_WORDS = (
    "invalid", "expired", "not valid", "unknown", "timed out", "ended", "not found", "no longer",
    "not recognized", "unrecognized", "does not exist",
)

T = TypeVar("T")
R = TypeVar("R")


def _session_is_invalid(envelope: Envelope) -> bool:
    if envelope.response_code == 401:
        return True
    for text in envelope.error_texts():
        lowered = text.lower()
        if any(w in lowered for w in _SESSION_WORDS) and any(w in lowered for w in _INVALID_WORDS):
            return True
    return False


def _failure_text(method: str, envelope: Envelope) -> str:
    texts = envelope.error_texts()
    detail = "; ".join(texts) if texts else (envelope.message or "no message")
    code = envelope.response_code if envelope.response_code is not None else "missing"
    return f"{method}: ResponseCode {code}: {detail}"


def read_envelope(
    method: str, response: httpx.Response, *, session_call: bool, records: str | None = None
) -> Any:
    """The ``Content`` of a successful Ajera answer (or, with ``records``, the list
    ``Content[records]``); raises for everything else.

    ``session_call`` is true for calls that carry a session token: only those may ask for the
    session to be re-created (CreateAPISession itself failing is a credentials problem)."""
    try:
        body = decode_json(response)
    except MalformedBody as exc:
        raise MalformedBody(f"{method}: {exc}") from None
    if not isinstance(body, Mapping):
        raise MalformedBody(f"{method}: response body is not a JSON object")
    try:
        envelope = Envelope.model_validate(body)
    except ValidationError as exc:
        raise MalformedBody(f"{method}: response is not an Ajera envelope ({exc.error_count()} errors)") from None
    failed = bool(envelope.errors) or (envelope.response_code not in (None, 200))
    if not failed:
        return envelope.content if records is None else content_records(envelope.content, records, method)
    if session_call and _session_is_invalid(envelope):
        raise AuthExpired(_failure_text(method, envelope))
    raise VendorRejected(_failure_text(method, envelope))


def content_records(content: Any, name: str, method: str) -> list[Any]:
    """``Content[name]`` of a List/Get answer (the name matched in any case).

    No records may be said as ``[]``, ``null``, a ``Content`` without the list, or a ``null``
    or ``""`` ``Content`` (the documentation shows only a non-empty list). What is refused as
    malformed: a ``Content`` that is some other value, a record list that is not a list, and a
    ``Content`` without the list that holds another non-empty list (records filed under a name
    we do not know must not read as "no records")."""
    if content is None or content == "":
        return []
    if not isinstance(content, Mapping):
        raise VendorRejected(f"{method}: malformed answer: Content is {type(content).__name__}, not an object")
    found = name if name in content else next((k for k in content if isinstance(k, str) and k.lower() == name.lower()), None)
    if found is None:
        if any(isinstance(v, list) and v for v in content.values()):
            raise VendorRejected(f"{method}: malformed answer: Content has no {name!r} list")
        return []
    records = content[found]
    if records is None:
        return []
    if not isinstance(records, list):
        raise VendorRejected(f"{method}: malformed answer: Content.{name} is not a list")
    return records


def _naming(method: str, exc: VendorHTTPError) -> VendorHTTPError:
    """``exc`` with the Ajera method in its message (the path is the same for every method).
    A failure of the session call made on the way (``CreateAPISession``) keeps that name."""
    if getattr(exc, "ajera_method", None):
        return exc
    message = exc.vendor_message
    if message is not None and (message == method or message.startswith(f"{method}:")):
        named = exc
    else:
        named = type(exc)(
            exc.vendor, exc.method, exc.path, exc.status, exc.attempts, f"{method}: {message}" if message else method
        )
    named.ajera_method = method  # type: ignore[attr-defined]
    return named


def session_expiration(value: Any) -> datetime | None:
    """``SessionExpiration`` as an aware UTC time: an ISO timestamp (read as UTC without an
    offset) or epoch seconds (milliseconds when that large); ``None`` when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_timestamp(value) if isinstance(value, (str, datetime)) else None


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class AjeraSession:
    """The ``AuthHook`` of the shared client: owns the Ajera session token."""

    def __init__(self, resource: "AjeraResource", client: VendorClient) -> None:
        self._resource = resource
        self._client = client
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at: datetime | None = None
        # The token this thread last signed a call with. ``refresh`` takes no arguments, so this
        # is how it tells "my call was refused with the current session" (re-create it) from
        # "another thread already replaced the session I was refused with" (reuse the new one).
        self._signed = threading.local()

    # -- AuthHook ------------------------------------------------------------------------------
    def headers(self) -> Mapping[str, str]:
        return {}  # the session travels in the body (``sign_body``), never in a header

    def sign_body(self, json_body: Any) -> Any:
        """The body of one attempt with the current ``SessionToken`` written in (a copy; the
        caller's body is left as it was, so every attempt is signed afresh)."""
        token = self.token()
        self._signed.token = token
        if not isinstance(json_body, Mapping):
            return json_body
        return {**json_body, "SessionToken": token}

    def refresh(self) -> None:
        used = getattr(self._signed, "token", None)
        with self._lock:
            # Another thread may already have replaced the token this call was rejected with.
            if used is None or used == self._token:
                self._token = None
                self._create_locked()

    # -- session ------------------------------------------------------------------------------
    def token(self) -> str:
        with self._lock:
            if self._token is None or (self._renew_at is not None and self._client.clock.now() >= self._renew_at):
                self._create_locked()
            assert self._token is not None
            return self._token

    @property
    def active_token(self) -> str | None:
        return self._token

    def _create_locked(self) -> None:
        res = self._resource
        credentials = {
            "Username": res.username,
            "Password": res.password,
            "APIVersion": res.api_version,
            "UseSessionCookie": False,
        }

        def parse(response: httpx.Response) -> SessionContent:
            content = read_envelope("CreateAPISession", response, session_call=False)
            try:
                return SessionContent.model_validate(content)
            except ValidationError:
                raise VendorRejected("CreateAPISession: malformed answer: Content carries no SessionToken") from None

        try:
            session = self._client.request(
                "POST",
                res.endpoint,
                json_body={"Method": "CreateAPISession", **credentials, "MethodArguments": credentials},
                authenticate=False,
                parse=parse,
            )
        except VendorHTTPError as exc:
            raise _naming("CreateAPISession", exc) from None
        self._client.redact.add(session.session_token)
        self._token = session.session_token
        self._renew_at = None
        expires = session_expiration(session.session_expiration)
        now = self._client.clock.now()
        if expires is not None and expires > now:
            # A session shorter than twice the margin is renewed half-way through its life
            # instead of (uselessly) before every call.
            margin = min(timedelta(seconds=res.session_renew_margin_seconds), (expires - now) / 2)
            self._renew_at = expires - margin
        elif expires is not None:
            self._client.log.warning(
                "Ajera: SessionExpiration is already past when the session was created; "
                "the session is kept until the API says it is invalid"
            )

    def end(self) -> None:
        with self._lock:
            token, self._token = self._token, None
        if token is None:
            return
        try:
            self._client.request(
                "POST",
                self._resource.endpoint,
                json_body={"Method": "EndAPISession", "SessionToken": token},
                authenticate=False,
                parse=lambda r: read_envelope("EndAPISession", r, session_call=False),
            )
        except VendorHTTPError as exc:
            raise _naming("EndAPISession", exc) from None

    # -- one call ----------------------------------------------------------------------------
    def call(self, method: str, arguments: Mapping[str, Any] | None, records: str | None = None) -> Any:
        """One method call; ``sign_body`` adds the ``SessionToken`` to every attempt. Returns
        ``Content``, or with ``records`` the list ``Content[records]``."""
        body: dict[str, Any] = {"Method": method, "MethodArguments": dict(arguments or {})}
        try:
            return self._client.request(
                "POST",
                self._resource.endpoint,
                json_body=body,
                parse=lambda r: read_envelope(method, r, session_call=True, records=records),
            )
        except VendorHTTPError as exc:
            raise _naming(method, exc) from None


@dataclass
class TimesheetFetch:
    """What one window's fetch returned: list records (as served) and details by key."""

    first: date
    last: date
    listed: list[Any] = field(default_factory=list)
    details: dict[int, dict[str, Any]] = field(default_factory=dict)
    unrequested_details: int = 0
    outside_window: int = 0
    list_calls: int = 0
    get_calls: int = 0


class AjeraResource(VendorResource):
    """Ajera (Deltek) API: sessions, ``ListTimesheets``/``GetTimesheets``,
    ``ListProjects``/``GetProjects``."""

    vendor_label: ClassVar[str] = "Ajera"
    default_requests_per_second: ClassVar[float] = 5.0
    default_max_in_flight: ClassVar[int] = 2
    env_required: ClassVar[Mapping[str, str]] = {
        "base_url": "AJERA_BASE_URL", "api_id": "AJERA_API_ID",
        "username": "AJERA_USERNAME", "password": "AJERA_PASSWORD",
    }

    api_id: str = Field(description="The id after '?' in the API URL (AJERA_API_ID); a secret.")
    username: str = Field(description="Ajera API user (AJERA_USERNAME).")
    password: str = Field(description="Ajera API password (AJERA_PASSWORD).")
    api_version: int = Field(default=API_VERSION, description="APIVersion of the session.")
    timesheet_batch_size: int = Field(default=50, ge=1, description="Keys per GetTimesheets call.")
    project_batch_size: int = Field(default=50, ge=1, description="Keys per GetProjects call.")
    page_size: int = Field(default=500, ge=1, description="PageSize of ListProjects pages.")
    list_window_days: int = Field(
        default=120,
        ge=7,
        description="Longest timesheet-date range one ListTimesheets call asks for; longer "
        "backfills are split so no single answer grows without bound.",
    )
    session_renew_margin_seconds: float = Field(
        default=60.0, ge=0, description="Create a new session this long before SessionExpiration."
    )

    _session: AjeraSession | None = PrivateAttr(default=None)

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
        self.client  # opens the client (and the session hook) when used outside a run
        assert self._session is not None
        return self._session

    def call(self, method: str, arguments: Mapping[str, Any] | None = None, records: str | None = None) -> Any:
        """One Ajera method call; returns ``Content`` (with ``records``: the list ``Content[records]``)."""
        return self.session.call(method, arguments, records)

    def _in_parallel(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1 or self.effective_in_flight <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.effective_in_flight, thread_name_prefix="ajera") as pool:
            return list(pool.map(fn, items))

    # -- timesheets ------------------------------------------------------------------------------
    def list_timesheets(self, earliest: date, latest: date) -> list[Any]:
        """``ListTimesheets`` for weeks starting ``earliest``..``latest`` (inclusive)."""
        return self.call(
            "ListTimesheets",
            {
                "FilterByEarliestTimesheetDate": earliest.isoformat(),
                "FilterByLatestTimesheetDate": latest.isoformat(),
            },
            records="Timesheets",
        )

    def get_timesheets(self, keys: Sequence[int]) -> list[list[Any]]:
        """``GetTimesheets`` in batches (in parallel up to the in-flight cap); one list per batch."""

        def one(batch: list[int]) -> list[Any]:
            return self.call("GetTimesheets", {"RequestedTimesheets": batch}, records="Timesheets")

        return self._in_parallel(one, batched(list(keys), self.timesheet_batch_size))

    def fetch_timesheets(self, first: date, last: date) -> TimesheetFetch:
        """Every timesheet with a day in ``first``..``last``: list records and their details."""
        fetch = TimesheetFetch(first=first, last=last)
        earliest = first - WEEK_LOOKBACK
        seen: set[int] = set()
        keys: list[int] = []
        chunk_start = earliest
        while chunk_start <= last:
            chunk_end = min(last, chunk_start + timedelta(days=self.list_window_days - 1))
            fetch.list_calls += 1
            for record in self.list_timesheets(chunk_start, chunk_end):
                key = _timesheet_key(record)
                if key is not None and key in seen:
                    continue
                week = _week_start(record)
                if week is not None and not (first - WEEK_LOOKBACK <= week <= last):
                    # Listed beyond the filter range (a server may list every week that overlaps
                    # it): no day of it is in the window, so it is neither fetched nor stored.
                    fetch.outside_window += 1
                    continue
                fetch.listed.append(record)
                if key is not None:
                    seen.add(key)
                    keys.append(key)
            chunk_start = chunk_end + timedelta(days=1)
        batches = self.get_timesheets(keys)
        fetch.get_calls = len(batches)
        for batch in batches:
            for detail in batch:
                key = _detail_key(detail)
                if key is None or key not in seen:
                    fetch.unrequested_details += 1
                    continue
                fetch.details[key] = detail
        if fetch.unrequested_details:
            LOGGER.warning("Ajera: GetTimesheets returned %d records that were not requested", fetch.unrequested_details)
        return fetch

    # -- projects --------------------------------------------------------------------------------
    def list_projects(self) -> tuple[list[Any], int]:
        """All ``ListProjects`` records, page by page; returns the records and pages read.

        The last page is the first one shorter than the pages before it, or an empty one. A
        first page shorter than ``PageSize`` does not end the list by itself: the server may
        serve fewer records per page than asked (its own maximum is undocumented), so page 2
        is asked for to make sure."""
        records: list[Any] = []
        seen: set[int] = set()
        page = 1
        served_per_page: int | None = None  # what a full page holds on this server
        while True:
            batch = self.call(
                "ListProjects",
                {"PageResults": True, "PageNumber": page, "PageSize": self.page_size},
                records="Projects",
            )
            keys = [_project_key(r) for r in batch]
            if batch and all(k is not None and k in seen for k in keys):
                # A server that ignores paging answers every page with page one.
                LOGGER.warning("Ajera: ListProjects page %d only repeats earlier records; stopping", page)
                return records, page
            for record, key in zip(batch, keys):
                if key is None or key not in seen:
                    records.append(record)
                if key is not None:
                    seen.add(key)
            if not batch or (served_per_page is not None and len(batch) < served_per_page):
                return records, page
            if served_per_page is None:
                served_per_page = len(batch)
            page += 1

    def get_projects(self, keys: Sequence[int]) -> list[list[Any]]:
        def one(batch: list[int]) -> list[Any]:
            return self.call("GetProjects", {"RequestedProjects": batch}, records="Projects")

        return self._in_parallel(one, batched(list(keys), self.project_batch_size))


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


def _timesheet_key(record: Any) -> int | None:
    return lenient_key(record.get("Timesheet Key")) if isinstance(record, Mapping) else None


def lenient_date(*values: Any) -> date | None:
    """The first of ``values`` that starts with an ISO date (a time part is ignored)."""
    for value in values:
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()[:10])
            except ValueError:
                continue
    return None


def _week_start(record: Any) -> date | None:
    """The list record's ``Timesheet Date`` when readable (an unreadable one is left to validation)."""
    return lenient_date(record.get("Timesheet Date")) if isinstance(record, Mapping) else None


def _detail_key(detail: Any) -> int | None:
    return lenient_key(detail.get("TimesheetKey")) if isinstance(detail, Mapping) else None


def _project_key(record: Any) -> int | None:
    if not isinstance(record, Mapping):
        return None
    try:
        return ProjectListRecord.model_validate(record).project_key
    except ValidationError:
        return None


def project_keys(records: Iterable[Any]) -> list[int]:
    """Distinct project keys in list order (records without a usable key are left out)."""
    keys = (_project_key(r) for r in records)
    return list(dict.fromkeys(k for k in keys if k is not None))
