"""Blikk public API client: token auth, paged lists, the endpoints the pipeline reads.

Decisions where the API document leaves room (also in ``docs/vendors/blikk.md``):

* **Token lifetime.** ``POST /v1/Auth/Token`` returns ``expires``; the token is reused until
  shortly before it (the margin is the smaller of ``renew_before_expiry_seconds`` and half
  the lifetime, so short-lived tokens are still used) and replaced at once on a 401. An
  ``expires`` that is missing, unreadable or already past by our clock (clock skew) means
  "reuse until rejected", never "fetch a token per request".
* **Rate limit.** "More than four requests during a given second" per token is read as a
  sliding one-second window. Requests are spaced evenly (burst 1) at 3.85/s, so any five
  consecutive requests span more than a second with ~40 ms to spare for scheduling jitter;
  the token request goes through the same limiter.
* **Paging.** Pages are 1-based, always ``pageSize=100`` (the maximum). Lists are sorted by
  ``createdDate`` ascending: it never changes, so records created during a walk land at the
  end instead of shifting the pages still to come (``updatedDate`` would move every edited
  record). The walk follows the latest ``totalPages`` but never beyond twice the first
  answer, stops on an empty page or a page with nothing new (a server ignoring ``page``),
  drops ids it has already seen, and re-reads the list once when the server's counts moved
  or fewer distinct records arrived than ``totalItemCount`` promised (not when the list
  outgrew the cap: a re-read would not keep up either). A clean re-read is
  the answer; if no read was clean, the union of all reads is kept (latest version of each
  id), so a record is never lost to a shifting page, at the price of possibly keeping one
  deleted during the read until the next run.
* **Self-contradicting pages.** A page with fewer items than its own ``totalItemCount`` and
  ``pageSize`` say it must hold (an empty page 2 of 3, ``items: null``) is malformed: it is
  retried like a cut-off body and then fails the run, instead of ending the walk early and
  replacing a whole window with part of it. A page that is not a paged list at all fails at
  once.
* **Parallel pages.** After page 1 names the page count, up to ``max_in_flight`` pages are in
  flight together, so the 4/s budget is used even when the API answers slower than 250 ms.
"""

from __future__ import annotations

import base64
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import Field, ValidationError

from ...http import (
    AuthHook,
    MalformedBody,
    VendorClient,
    VendorRejected,
    decode_json,
)
from ...ingest.compact import compact_record
from ..base import VendorResource
from .errors import blikk_error_message
from .models import ListEnvelope, TokenResponse, User

DEFAULT_BASE_URL = "https://publicapi.blikk.com/"
TOKEN_PATH = "/v1/Auth/Token"
TIME_REPORTS_PATH = "/v1/Core/TimeReports"
USER_DAY_STATISTICS_PATH = "/v1/Core/TimeReports/UserDayStatistics"
# "The date span can be a maximum of 31 days": spans are cut into pieces of 31 days counted
# with both ends, which also meets the looser reading (31 days between the bounds).
MAX_STATISTICS_SPAN_DAYS = 31
PROJECTS_PATH = "/v1/Core/Projects"
USERS_PATH = "/v1/Admin/Users"
INTERNAL_PROJECTS_PATH = "/v1/Admin/InternalProjects"
ABSENCE_PROJECTS_PATH = "/v1/Admin/AbsenceProjects"
MAX_PAGE_SIZE = 100
DOCUMENTED_REQUESTS_PER_SECOND = 4.0


# -- token authentication ---------------------------------------------------------------------
class BlikkTokenAuth:
    """Bearer token from ``POST /v1/Auth/Token`` (Basic id:secret), cached until shortly before
    ``expires``; shared by every thread of one client."""

    def __init__(self, client: VendorClient, basic_credentials: str, margin_seconds: float) -> None:
        self._client = client
        self._basic = basic_credentials
        self._margin = margin_seconds
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at: datetime | None = None
        self._sent = threading.local()
        self.tokens_fetched = 0

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._token is None or (self._renew_at is not None and self._client.clock.now() >= self._renew_at):
                self._fetch()
            token = self._token
        self._sent.token = token
        return {"Authorization": f"Bearer {token}"}

    def refresh(self) -> None:
        with self._lock:
            if self._token is not None and self._token != getattr(self._sent, "token", None):
                # Another thread already replaced the token this request was sent with.
                return
            self._token = None
            self._fetch()

    def _fetch(self) -> None:
        answer = self._client.request(
            "POST",
            TOKEN_PATH,
            headers={"Authorization": f"Basic {self._basic}"},
            authenticate=False,
            parse=_parse_token,
        )
        self._client.redact.add(answer.accessToken)
        self.tokens_fetched += 1
        self._token = answer.accessToken
        self._renew_at = None
        if answer.expires is not None:
            lifetime = (answer.expires - self._client.clock.now()).total_seconds()
            if lifetime > 0:
                # Half the lifetime at most, so a short-lived token still serves a while but
                # is not handed to a request that then queues behind the rate limiter past it.
                self._renew_at = answer.expires - timedelta(seconds=min(self._margin, lifetime / 2))
            else:
                self._client.log.warning(
                    "Blikk token 'expires' is already past by this machine's clock; "
                    "reusing the token until the API rejects it"
                )


def _parse_token(response: httpx.Response) -> TokenResponse:
    try:
        return TokenResponse.model_validate(decode_json(response))
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()) or "body"
        raise VendorRejected(f"token response is not a token ({fields} invalid)") from None


def _parse_page(response: httpx.Response, page: int | None = None, page_size: int | None = None) -> ListEnvelope:
    """A list page. Not a paged list at all → ``VendorRejected`` (fails at once). Fewer items
    than the page's own ``totalItemCount`` says it must hold → ``MalformedBody`` (retried like
    a cut-off body, then a clear failure): read as the end of the list, such a page would
    replace a whole window with part of it."""
    payload = decode_json(response)
    if not isinstance(payload, dict) or not isinstance(payload.get("items", []), (list, type(None))):
        raise VendorRejected("list response is not a paged list (no 'items' array)")
    try:
        envelope = ListEnvelope.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise VendorRejected(f"list response has invalid paging fields ({fields})") from None
    size = envelope.pageSize or page_size
    if page is not None and size and size > 0 and envelope.totalItemCount is not None:
        # The same answer's count says how full this page must be; deletions between two
        # requests change that count too, so this only fires on a self-contradicting page.
        expected = max(0, min(size, envelope.totalItemCount - (page - 1) * size))
        if len(envelope.items) < expected:
            raise MalformedBody(
                f"page {page} holds {len(envelope.items)} items where its totalItemCount "
                f"{envelope.totalItemCount} at pageSize {size} means {expected}"
            )
    return envelope


# -- paged lists ------------------------------------------------------------------------------
@dataclass
class ListFetch:
    """Everything one list read produced, and how the walk went (for metadata and checks).
    ``records`` holds each record as the read kept it (parsed, or ``compact_record`` text)."""

    path: str
    records: list[Any] = field(default_factory=list)
    page_requests: int = 0
    walks: int = 0
    server_total: int | None = None
    duplicates_skipped: int = 0
    changed_mid_walk: bool = False
    page_cap_hit: bool = False
    complete: bool = True
    records_taken: int = 0

    @property
    def records_read(self) -> int:
        return len(self.records) + self.records_taken

    def take_records(self) -> list[Any]:
        """The records, handed over: the caller may consume (and free) them as it goes;
        ``records_read`` still counts them."""
        taken, self.records = self.records, []
        self.records_taken += len(taken)
        return taken

    def as_metadata(self, prefix: str = "list") -> dict[str, Any]:
        return {
            f"{prefix}_requests": self.page_requests,
            f"{prefix}_walks": self.walks,
            f"{prefix}_server_total": self.server_total if self.server_total is not None else -1,
            f"{prefix}_duplicates_skipped": self.duplicates_skipped,
            f"{prefix}_changed_mid_walk": self.changed_mid_walk,
            f"{prefix}_complete": self.complete,
        }


@dataclass
class _Walk:
    """One pass over the pages."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    unkeyed: list[dict[str, Any]] = field(default_factory=list)
    totals: set[int] = field(default_factory=set)
    last_total: int | None = None
    pages: int = 0
    duplicates: int = 0
    cap_hit: bool = False
    stalled: bool = False

    @property
    def seen(self) -> int:
        return len(self.records) + len(self.unkeyed)

    @property
    def changed(self) -> bool:
        return len(self.totals) > 1

    @property
    def complete(self) -> bool:
        short = self.last_total is not None and self.seen < self.last_total
        return not (short or self.changed or self.cap_hit or self.stalled)


def _record_id(item: Any, key_field: str = "id") -> str | None:
    if isinstance(item, Mapping):
        value = item.get(key_field)
        if isinstance(value, bool) or value is None or value == "":
            return None
        return str(value)
    return None


def _page_count(envelope: ListEnvelope, page_size: int) -> int | None:
    if envelope.totalPages is not None and envelope.totalPages >= 0:
        return envelope.totalPages
    if envelope.totalItemCount is not None and envelope.totalItemCount >= 0:
        return math.ceil(envelope.totalItemCount / max(1, envelope.pageSize or page_size))
    return None


class BlikkResource(VendorResource):
    """Blikk public API (``https://publicapi.blikk.com/``): time reports, projects, users."""

    vendor_label: ClassVar[str] = "Blikk"
    default_requests_per_second: ClassVar[float] = 3.85
    default_max_in_flight: ClassVar[int] = 2
    env_required: ClassVar[Mapping[str, str]] = {"app_id": "BLIKK_APP_ID", "app_secret": "BLIKK_APP_SECRET"}
    env_optional: ClassVar[Mapping[str, str]] = {"base_url": "BLIKK_BASE_URL"}  # production host when unset

    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="API root (BLIKK_BASE_URL); https only, plain http only for loopback sandboxes.",
    )
    app_id: str = Field(description="API application id (BLIKK_APP_ID).")
    app_secret: str = Field(description="API application secret (BLIKK_APP_SECRET).")
    renew_before_expiry_seconds: float = Field(
        default=60.0, description="Fetch a new token this long before the current one expires."
    )
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    max_list_walks: int = Field(default=2, ge=1, description="Reads of one list when its counts move during a read.")
    max_pages: int = Field(default=10_000, ge=1, description="Hard stop for one list walk.")
    change_scan: bool = Field(
        default=True,
        description="Each time report run also scans reports by updatedDate, createdDate, "
        "attestedDate and sentToAttestDate (newest first, down to the previous run's watermark) "
        "and names the days outside its window that changed (days_to_reread).",
    )

    # -- credentials ----------------------------------------------------------------------
    def _basic_credentials(self) -> str:
        return base64.b64encode(f"{self.app_id}:{self.app_secret}".encode()).decode("ascii")

    def secret_values(self) -> list[str | None]:
        return [self.app_id, self.app_secret, self._basic_credentials()]

    def build_auth(self, client: VendorClient) -> AuthHook:
        return BlikkTokenAuth(client, self._basic_credentials(), self.renew_before_expiry_seconds)

    def error_message(self, response: httpx.Response) -> str | None:
        return blikk_error_message(response)

    # -- lists ------------------------------------------------------------------------------
    def list_page(self, path: str, params: Mapping[str, Any], page: int) -> ListEnvelope:
        """One page of a list at ``page_size`` (checked like every page of a walk)."""
        query = {**params, "page": page, "pageSize": self.page_size}
        return self.client.request(
            "GET", path, params=query, parse=lambda response: _parse_page(response, page, self.page_size)
        )

    def fetch_list(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        key_field: str = "id",
        keep: Callable[[Any], Any] | None = None,
    ) -> ListFetch:
        """Every record of a list endpoint, each ``key_field`` once (see the module docstring).
        ``keep`` turns each record into what the read holds until the end (``compact_record``
        for long lists); by default the parsed record itself."""
        params = dict(params or {})
        result = ListFetch(path=path)
        union: dict[str, Any] = {}
        walk = _Walk()
        for attempt in range(1, self.max_list_walks + 1):
            walk = self._walk(path, params, key_field, keep)
            union.update(walk.records)
            result.walks = attempt
            result.page_requests += walk.pages
            result.duplicates_skipped += walk.duplicates
            result.changed_mid_walk = result.changed_mid_walk or walk.changed
            result.page_cap_hit = result.page_cap_hit or walk.cap_hit
            if walk.complete:
                break
            # A list that outgrew the walk's page cap would outgrow a re-read just the same.
            more = attempt < self.max_list_walks and not walk.cap_hit
            self.client.log.warning(
                "Blikk %s changed while it was read (server total %s, distinct records %d, counts seen %s)%s",
                path,
                walk.last_total,
                walk.seen,
                sorted(walk.totals),
                "; reading it again" if more else "; keeping what was read",
            )
            if not more:
                break
        result.server_total = walk.last_total
        kept = walk.records if walk.complete else union
        result.records = list(kept.values()) + walk.unkeyed
        result.complete = walk.complete
        return result

    def _walk(
        self, path: str, params: Mapping[str, Any], key_field: str = "id", keep: Callable[[Any], Any] | None = None
    ) -> _Walk:
        walk = _Walk()
        hold = keep or (lambda item: item)

        def absorb(envelope: ListEnvelope) -> int:
            walk.pages += 1
            if envelope.totalItemCount is not None:
                walk.totals.add(envelope.totalItemCount)
                walk.last_total = envelope.totalItemCount
            fresh = 0
            for item in envelope.items:
                key = _record_id(item, key_field)
                if key is None:
                    walk.unkeyed.append(hold(item))
                    fresh += 1
                elif key in walk.records:
                    walk.duplicates += 1
                else:
                    walk.records[key] = hold(item)
                    fresh += 1
            return fresh

        first = self.list_page(path, params, 1)
        absorb(first)
        first_count = _page_count(first, self.page_size)
        if not first.items or (first_count is not None and first_count <= 1):
            return walk
        if first_count is None and len(first.items) < (first.pageSize or self.page_size):
            return walk
        # Counts may grow while we read; follow them, but never further than twice the first
        # answer, so a server that keeps growing cannot keep us reading forever.
        cap = self.max_pages if first_count is None else min(self.max_pages, max(2 * first_count, first_count + 2))
        known_last = first_count
        next_page = 2
        in_flight = max(1, self.effective_in_flight)
        pending: deque[tuple[int, Future[ListEnvelope]]] = deque()
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="blikk-pages") as pool:
            try:
                while True:
                    # Without a page count, probe one page at a time until a short page.
                    horizon = known_last if known_last is not None else next_page
                    while len(pending) < in_flight and next_page <= min(horizon, cap):
                        pending.append((next_page, pool.submit(self.list_page, path, params, next_page)))
                        next_page += 1
                        if known_last is None:
                            break
                    if not pending:
                        if known_last is not None and known_last > cap:
                            walk.cap_hit = True
                        break
                    _, future = pending.popleft()
                    envelope = future.result()
                    fresh = absorb(envelope)
                    if not envelope.items:
                        break
                    if fresh == 0:
                        walk.stalled = True
                        break
                    counted = _page_count(envelope, self.page_size)
                    if counted is not None:
                        known_last = counted
                    elif len(envelope.items) < (envelope.pageSize or self.page_size):
                        break
                    else:
                        known_last = None
            finally:
                for _, future in pending:
                    future.cancel()
        return walk

    # -- endpoints ------------------------------------------------------------------------
    def fetch_time_reports(
        self, first: date, last: date, *, compact: bool = False, keep: Callable[[Any], Any] | None = None
    ) -> ListFetch:
        """Time reports whose work date is within ``first``..``last`` (both inclusive), in one
        windowed list read; ``compact`` keeps each as its JSON text (``compact_record``),
        ``keep`` as it answers (``ingest.staged.StagedRecords`` stages it and answers its number)."""
        return self.fetch_list(
            TIME_REPORTS_PATH,
            {
                "filter.from": first.isoformat(),
                "filter.to": last.isoformat(),
                "sortBy": "createdDate",
                "sortOrder": "ascending",
            },
            keep=keep or (compact_record if compact else None),
        )

    def fetch_user_day_statistics(self, first: date, last: date) -> list[ListFetch]:
        """``UserDayStatistics`` for ``first``..``last`` (both inclusive): one paged read per
        piece of at most 31 days, users keyed by ``userId``."""
        listings = []
        start = first
        while start <= last:
            end = min(last, start + timedelta(days=MAX_STATISTICS_SPAN_DAYS - 1))
            listings.append(
                self.fetch_list(
                    USER_DAY_STATISTICS_PATH,
                    {
                        "filter.from": start.isoformat(),
                        "filter.to": end.isoformat(),
                        "sortBy": "name",
                        "sortOrder": "ascending",
                    },
                    key_field="userId",
                )
            )
            start = end + timedelta(days=1)
        return listings

    def fetch_projects(self) -> ListFetch:
        return self.fetch_list(PROJECTS_PATH, {"sortBy": "createdDate", "sortOrder": "ascending"})

    def fetch_internal_projects(self) -> ListFetch:
        return self.fetch_list(INTERNAL_PROJECTS_PATH, {"sortBy": "name", "sortOrder": "ascending"})

    def fetch_absence_projects(self) -> ListFetch:
        return self.fetch_list(ABSENCE_PROJECTS_PATH, {"sortBy": "name", "sortOrder": "ascending"})

    def fetch_users(self) -> ListFetch:
        return self.fetch_list(USERS_PATH, {"sortBy": "name", "sortOrder": "ascending"})

    def fetch_user_names(self) -> dict[str, str]:
        """User id → "first last" from the user registry; users that fail validation are
        skipped (names are an enrichment, not data of their own)."""
        names: dict[str, str] = {}
        for item in self.fetch_users().records:
            try:
                user = User.model_validate(item)
            except ValidationError:
                continue
            if user.display_name:
                names[str(user.id)] = user.display_name
        return names
