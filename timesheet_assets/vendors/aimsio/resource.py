"""Aimsio API client: HTTP Basic auth, GET-all stubs then GET-single details in parallel.

Decisions where the API document is silent (also in ``docs/vendors/aimsio.md``):

* Hosts: ``https://portal.aimsio.com/`` (live, the default) and ``https://sandbox.aimsio.com/``
  (the account's test environment). ``AIMSIO_BASE_URL`` is the host root; the API path
  ``/rest/api/standard/v1/`` is appended unless the URL already ends with it.
* Endpoints: GET-all ``CurrentTimeCard`` and GET-single ``CurrentTimeCard/{guid}`` (the one
  timecard operation the document shows), ``JobOrder`` and ``JobOrder/{guid}`` for job orders.
  Both names are settings in case an account exposes them differently.
* GET-all is documented as "a JSON array"; the document's only GET-all example
  (``NonRecurringBillableItem``) wraps it as ``{"value": [...]}``. Both are read; 204,
  ``null``, ``{}`` and ``{"value": null}`` are an empty list. Stubs are
  identified by ``guid``, or by ``id`` when there is no ``guid`` (the document says "guid/id").
* Limit: "more than 10 calls per second" are queued, a queue longer than 5 s times out, and
  "up to 10 parallel calls are permitted". The limiter runs at 9.8 calls/s with burst 1 (even
  spacing, so no sliding one-second window ever holds 11 calls) and 10 in flight, shared by
  the detail threads. A timeout (the sandbox answers 504) or a refusal (429) is retried by the
  shared client.
* What changed: the list gives every current record with its ``updatedAt``; a detail is
  fetched when the identifier is not stored yet or its ``updatedAt`` differs from the stored
  one (``changed_stubs``). No global high-water mark: a mobile form synced late or a skewed
  clock can list an ``updatedAt`` older than records already stored, and it is still fetched.
* Records that left the list: one GET-single each (``ask_after_vanishing``), at most
  ``vanished_lookups_per_run`` per run; a 404 (or other refusal) is recorded as the answer.
* Auth failures: Basic credentials cannot be renewed, so the client's one re-authentication
  on 401 resends the same header and the second 401 fails with a message naming the settings.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import httpx
from pydantic import Field, ValidationError

from ...http import (
    VendorAuthError,
    VendorClient,
    VendorHTTPError,
    VendorOutageError,
    VendorRejected,
    decode_json,
    default_error_message,
)
from ..base import VendorResource
from .models import ListStub

PORTAL_URL = "https://portal.aimsio.com/"
SANDBOX_URL = "https://sandbox.aimsio.com/"
API_PATH = "/rest/api/standard/v1/"
TIMECARD_ENDPOINT = "CurrentTimeCard"
JOB_ORDER_ENDPOINT = "JobOrder"

T = TypeVar("T")
# A payroll close can take hundreds of timecards off the open list at once; asking about each
# costs one call at 10/s, so a run spends at most ~31 s on them and the rest follow next run.
VANISHED_LOOKUPS_PER_RUN = 300

_AUTH_HINT = "check AIMSIO_USERNAME / AIMSIO_PASSWORD and that Aimsio support has enabled API permissions for this user"


class BasicAuth:
    """The ``Authorization: Basic`` header. ``refresh`` has nothing to renew: a rejected
    username/password stays rejected, so the client's single retry fails the same way."""

    def __init__(self, username: str, password: str) -> None:
        self._header = {"Authorization": "Basic " + basic_token(username, password)}

    def headers(self) -> Mapping[str, str]:
        return self._header

    def refresh(self) -> None:
        return None


def basic_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class Stub:
    """A GET-all element: the identifier used for GET-single and its ``updatedAt``."""

    identifier: str
    updated_at: int | None
    raw: Mapping[str, Any]


@dataclass
class StubListing:
    stubs: list[Stub] = field(default_factory=list)
    # Elements without guid/id (or not objects): no detail can be fetched for them, so they
    # are kept as quarantined rows instead of being dropped.
    unusable: list[tuple[Any, str]] = field(default_factory=list)

    @property
    def max_updated_at(self) -> int | None:
        values = [s.updated_at for s in self.stubs if s.updated_at is not None]
        return max(values) if values else None


@dataclass
class ChangedRecords:
    """What one incremental (or full) pass fetched: the listing, the stubs whose detail was
    requested (new, changed, or not comparable) and their details in the same order."""

    listing: StubListing
    changed: list[Stub]
    details: list[Any]

    @property
    def unchanged(self) -> int:
        return len(self.listing.stubs) - len(self.changed)

    @property
    def listed_versions(self) -> dict[str, int | None]:
        """Identifier → listed ``updatedAt``: what the warehouse holds once these details are
        written, i.e. the ``known`` argument of the next pass."""
        return {s.identifier: s.updated_at for s in self.listing.stubs}


@dataclass(frozen=True)
class DetailAnswer:
    """What GET-single answered for a record that left the listing: a body (``status`` 200)
    or the HTTP status of a refusal (404 for a GUID the API no longer serves)."""

    identifier: str
    status: int
    body: Any = None


def unusable_stub_key(element: Any) -> str:
    """A stable key for a stub that has no identifier, so reruns replace rather than pile up."""
    text = json.dumps(element, sort_keys=True, separators=(",", ":"), default=str)
    return "stub:" + hashlib.sha1(text.encode()).hexdigest()[:16]


def parse_stub_list(response: httpx.Response) -> list[Any]:
    # The document shows no empty answer: 204, ``null``, ``{}`` and ``{"value": null}`` all
    # say "no records". An object with other keys (an error envelope) still fails.
    if response.status_code == 204:
        return []
    body = decode_json(response)
    if isinstance(body, dict) and isinstance(body.get("value"), list):
        return body["value"]
    if isinstance(body, list):
        return body
    if body is None or body == {} or (isinstance(body, dict) and set(body) == {"value"} and body["value"] is None):
        return []
    raise VendorRejected(
        "expected a JSON array of {dtype, guid, updatedAt} stubs, got "
        + (f"an object with keys {sorted(body)[:8]}" if isinstance(body, dict) else type(body).__name__)
    )


def read_stubs(elements: Sequence[Any]) -> StubListing:
    """Usable stubs in list order, one per identifier: a list naming a record twice keeps its
    newest entry, so one run never upserts two rows under the same key."""
    listing = StubListing()
    seen: dict[str, int] = {}
    for element in elements:
        if not isinstance(element, Mapping):
            listing.unusable.append((element, "list element is not a JSON object"))
            continue
        try:
            stub = ListStub.model_validate(element)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            listing.unusable.append((element, f"list stub invalid: {reason}"))
            continue
        if not stub.identifier:
            listing.unusable.append((element, "list stub has neither guid nor id"))
            continue
        found = Stub(stub.identifier, stub.updated_at, element)
        if found.identifier in seen:
            index = seen[found.identifier]
            if (found.updated_at or 0) > (listing.stubs[index].updated_at or 0):
                listing.stubs[index] = found
            continue
        seen[found.identifier] = len(listing.stubs)
        listing.stubs.append(found)
    return listing


def changed_stubs(stubs: Sequence[Stub], known: Mapping[str, int | None] | None) -> list[Stub]:
    """Stubs whose detail must be fetched: every stub when nothing is known (first load, full
    refresh); else those whose identifier is not stored, whose ``updatedAt`` differs from the
    stored one (in either direction: a form synced late or a skewed clock can list an
    ``updatedAt`` older than other records'), or that cannot be compared (no ``updatedAt``)."""
    if known is None:
        return list(stubs)
    return [
        s for s in stubs if s.updated_at is None or s.identifier not in known or known[s.identifier] != s.updated_at
    ]


class AimsioResource(VendorResource):
    """Aimsio standard REST API (Basic auth, 10 calls/s, 10 in flight)."""

    vendor_label: ClassVar[str] = "Aimsio"
    # Just under the documented 10/s: with burst 1 the calls are evenly spaced, so no
    # one-second window ever holds more than 10 even with a little scheduling jitter.
    default_requests_per_second: ClassVar[float] = 9.8
    default_max_in_flight: ClassVar[int] = 10
    env_required: ClassVar[Mapping[str, str]] = {"username": "AIMSIO_USERNAME", "password": "AIMSIO_PASSWORD"}
    # Not a secret and documented (the live portal) when unset.
    env_optional: ClassVar[Mapping[str, str]] = {"base_url": "AIMSIO_BASE_URL"}

    base_url: str = Field(
        default=PORTAL_URL,
        description="Aimsio host: https://portal.aimsio.com/ (live) or https://sandbox.aimsio.com/ "
        "(the account's test environment). The API path is appended.",
    )
    username: str = Field(description="API user (AIMSIO_USERNAME).")
    password: str = Field(description="API user's password (AIMSIO_PASSWORD).")
    api_path: str = Field(default=API_PATH, description="Path of the standard API under the host.")
    timecard_endpoint: str = Field(default=TIMECARD_ENDPOINT)
    job_order_endpoint: str = Field(default=JOB_ORDER_ENDPOINT)
    vanished_lookups_per_run: int = Field(
        default=VANISHED_LOOKUPS_PER_RUN,
        ge=0,
        description="At most this many GET-single calls per run and entity for records that "
        "left the listing (each is asked once; the rest wait for the next runs). 300 calls "
        "take ~31 s at the documented 10 calls/s.",
    )

    def secret_values(self) -> list[str | None]:
        return [self.password, basic_token(self.username, self.password)]

    def build_auth(self, client: VendorClient) -> BasicAuth:
        return BasicAuth(self.username, self.password)

    def error_message(self, response: httpx.Response) -> str | None:
        message = default_error_message(response)
        if response.status_code in (401, 403):
            return f"{message}; {_AUTH_HINT}" if message else _AUTH_HINT
        return message

    # -- paths ------------------------------------------------------------------------------
    def endpoint_path(self, endpoint: str, identifier: str | None = None) -> str:
        base_path = httpx.URL(self.base_url).path.rstrip("/")
        api = "/" + self.api_path.strip("/")
        prefix = "" if base_path.endswith(api) else api
        path = f"{prefix}/{endpoint.strip('/')}"
        if identifier is not None:
            path += "/" + quote(identifier, safe="")
        return path

    # -- calls ------------------------------------------------------------------------------
    def list_stubs(self, endpoint: str) -> StubListing:
        elements = self.client.request("GET", self.endpoint_path(endpoint), parse=parse_stub_list)
        return read_stubs(elements)

    def _in_parallel(self, call: Callable[[str], T], identifiers: Sequence[str]) -> list[T]:
        """``call`` for each identifier, in parallel up to the in-flight limit; results in
        input order. The first failure cancels the calls not yet started and is raised."""
        if not identifiers:
            return []
        workers = max(1, min(self.effective_in_flight, len(identifiers)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aimsio-detail")
        try:
            futures: list[Future] = [pool.submit(call, identifier) for identifier in identifiers]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                raise failed.exception()  # type: ignore[misc]
            return [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def get_details(self, endpoint: str, identifiers: Sequence[str]) -> list[Any]:
        """GET-single for each identifier (see ``_in_parallel``)."""
        client = self.client  # opened once, before the threads share it
        return self._in_parallel(
            lambda identifier: client.get_json(self.endpoint_path(endpoint, identifier)), identifiers
        )

    def ask_after_vanishing(self, endpoint: str, identifiers: Sequence[str]) -> list[DetailAnswer]:
        """GET-single for records that left the listing. A refusal (404, or any other 4xx/500
        the API may give for a record it no longer serves) is an answer to record, not a
        failure; outages and rejected credentials still fail the run like any other call."""
        client = self.client

        def ask(identifier: str) -> DetailAnswer:
            path = self.endpoint_path(endpoint, identifier)
            try:
                return DetailAnswer(identifier, 200, client.get_json(path))
            except (VendorOutageError, VendorAuthError):
                raise
            except VendorHTTPError as exc:
                if exc.status is None:
                    raise
                return DetailAnswer(identifier, exc.status)

        return self._in_parallel(ask, identifiers)

    def fetch_changed(self, endpoint: str, known: Mapping[str, int | None] | None) -> ChangedRecords:
        """One list call, then details for the stubs ``changed_stubs`` picks against ``known``
        (identifier → the ``updatedAt`` stored with it; ``None``: fetch every detail)."""
        listing = self.list_stubs(endpoint)
        changed = changed_stubs(listing.stubs, known)
        details = self.get_details(endpoint, [s.identifier for s in changed])
        return ChangedRecords(listing=listing, changed=changed, details=details)

    def fetch_timecards(self, known: Mapping[str, int | None] | None = None) -> ChangedRecords:
        return self.fetch_changed(self.timecard_endpoint, known)

    def fetch_job_orders(self, known: Mapping[str, int | None] | None = None) -> ChangedRecords:
        return self.fetch_changed(self.job_order_endpoint, known)
