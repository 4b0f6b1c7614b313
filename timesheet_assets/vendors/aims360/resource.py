"""AIMS360 Aqua client: token, export jobs, job status, rerun and publishlink downloads.

Aqua is asynchronous: ``POST /reports/v1.0/exportdata`` queues a job and answers with its id
and publishlink; the job is polled on ``backgroundjob?$filter=jobId eq '...'`` until it is
Completed, then the publishlink serves the output (JSON, CSV or Excel). A completed job can be
rerun (same id, same publishlink) to refresh the data.

Decisions where the docs are open or disagree (see docs/vendors/aims360.md):

* Token: ``POST /authentication/v1/authentication/Token`` with an OAuth password-grant form
  (``grant_type=password``, ``client_id``, ``client_secret``, ``username``, ``password``);
  the answer's ``access_token`` is used as a bearer token. Its lifetime is undocumented, so
  it is reused (also across sensor ticks, per process) until a 401, then fetched once more.
  A token generated in the ERP (``AIMS360_ACCESS_TOKEN``) is used as is; when it is rejected
  and no client credentials are configured, the error says so.
* Job status: the Jobs reference documents ``GET /jobsmanagement/odata/v1.0/backgroundjob``,
  the Aqua page ``POST /jobsmanagement/v1.0/backgroundjob``; ``status_method`` picks one
  (default GET, the Jobs reference); a server lacking it (404/405) gets the other form, one
  refusing the filter spelling (400) the Aqua page's ``eq'<id>'``, remembered per host. The
  answer may be an OData ``{"value": [...]}`` envelope, a list or one object; no row (or
  404 from both forms) means the job is unknown (purged).
* Rerun: ``POST /jobsmanagement/v1.0/backgroundjob/{jobId}/rerun`` (the Jobs reference; the
  Aqua page's ``backgroundjob?$filter=.../rerun`` spelling, tried when the path form is
  404/405, is the same call).
* Publishlinks: the bearer token is sent only when the scope is Private or
  PeopleInOrganization (any case or spacing) **and** the link is on the configured API host
  or a host listed in ``publishlink_hosts``. A Public link is fetched without any
  credentials wherever it lives. A token-scoped link on any other host is refused before a
  request is made: fetching it without the token could only end in "Access Denied", and
  sending the token would hand it to a host nobody configured.
* A publishlink answering 404 or 410 is treated as expired/purged (``PublishlinkGone``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ClassVar, Literal, Mapping
from urllib.parse import quote

import httpx
from pydantic import Field

from ...http import (
    SYSTEM_CLOCK,
    Clock,
    MalformedBody,
    VendorAuthError,
    VendorClient,
    VendorHTTPError,
    VendorRejected,
    decode_json,
)
from ...http.errors import VendorError
from ...settings import SettingError
from ..base import VendorResource
from .models import (
    COMPLETED,
    FAILED_STATUSES,
    TOKEN_SCOPES,
    BackgroundJob,
    ExportJob,
    job_rows,
    normalise_scope,
)

DEFAULT_BASE_URL = "https://api.aims360.rest"
TOKEN_PATH = "/authentication/v1/authentication/Token"
EXPORT_PATH = "/reports/v1.0/exportdata"
STATUS_GET_PATH = "/jobsmanagement/odata/v1.0/backgroundjob"
STATUS_POST_PATH = "/jobsmanagement/v1.0/backgroundjob"
RERUN_PATH = "/jobsmanagement/v1.0/backgroundjob/{job_id}/rerun"

CREDENTIAL_VARIABLES = (
    "AIMS360_CLIENT_ID",
    "AIMS360_CLIENT_SECRET",
    "AIMS360_USERNAME",
    "AIMS360_PASSWORD",
)
# Answers to a rerun that mean "this job cannot be rerun; create a new one".
RERUN_REFUSED_STATUSES = frozenset({400, 403, 404, 405, 409, 410, 422})
# API host -> the job status form (method, filter spelling) that answered there (per process).
_STATUS_FORM_SEEN: dict[str, tuple[str, str]] = {}
# ``jobId eq '<id>'`` (OData) and ``jobId eq'<id>'`` (as the Aqua page writes it).
_FILTER_SPELLINGS = ("eq '", "eq'")


def _job_filter(job_id: str, spelling: str, suffix: str = "") -> str:
    literal = job_id.replace("'", "''")  # OData doubles quotes inside a string literal
    return "?$filter=" + quote(f"jobId {spelling}{literal}'{suffix}", safe="'")
GONE_STATUSES = frozenset({404, 410})

OutputFormat = Literal["JSON", "CSV", "Excel"]
Scope = Literal["Private", "PeopleInOrganization", "Public"]


class Aims360ConfigError(SettingError):
    """AIMS360 settings are missing or malformed; the message names the variables."""


class PublishlinkGone(VendorError):
    """The publishlink answered 404/410: the output expired or the job was purged."""


class PublishlinkHostRefused(VendorError, SettingError):
    """A token-scoped publishlink on a host that is not trusted with the bearer token (a
    setting to change, ``AIMS360_PUBLISHLINK_HOSTS``: no retry can fix it)."""


class ExportJobFailed(VendorError):
    """A job ended Failed, vanished, or did not complete in time (manual materialization)."""


class AccessTokenRejected(VendorError, SettingError):
    """The ERP-generated token was refused and there are no client credentials to get another
    (a setting to change: no retry can fix it)."""


# --------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ViewSpec:
    """One configured AIMS360 view (``Source/View Name``)."""

    source: str
    view_name: str

    @property
    def label(self) -> str:
        return f"{self.source}/{self.view_name}"

    @property
    def slug(self) -> str:
        return snake_case(f"{self.source} {self.view_name}")


def snake_case(text: str) -> str:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", spaced).strip("_").lower()


DEFAULT_VIEWS = "Orders/Open Orders"


def parse_views(raw: str | None, *, variable: str = "AIMS360_VIEWS") -> tuple[ViewSpec, ...]:
    """``Source/View Name`` pairs separated by ``;``. Only the first ``/`` separates: view
    names may contain slashes, sources do not."""
    text = DEFAULT_VIEWS if raw is None or not raw.strip() else raw
    views: list[ViewSpec] = []
    seen: dict[str, str] = {}
    for index, part in enumerate(text.split(";"), start=1):
        entry = part.strip()
        if not entry:
            continue
        source, sep, view_name = entry.partition("/")
        source, view_name = source.strip(), view_name.strip()
        if not sep or not source or not view_name:
            raise Aims360ConfigError(
                f"{variable} entry {index} ({entry!r}) is not 'Source/View Name'; "
                f"expected e.g. 'Orders/Open Orders;Invoices/Open Invoices'"
            )
        view = ViewSpec(source, view_name)
        if not view.slug:
            raise Aims360ConfigError(
                f"{variable} entry {index} ({entry!r}) has no letters or digits to name an asset"
            )
        if view.slug in seen:
            raise Aims360ConfigError(
                f"{variable} names {seen[view.slug]!r} and {entry!r}, which both map to asset "
                f"raw/aims360/{view.slug}"
            )
        seen[view.slug] = entry
        views.append(view)
    if not views:
        raise Aims360ConfigError(f"{variable} names no view; expected e.g. '{DEFAULT_VIEWS}'")
    return tuple(views)


# --------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------
# Token lifetime is undocumented; sensor ticks open a fresh resource each time, so tokens are
# kept per process (per API host and credentials) instead of being fetched on every tick.
_TOKEN_CACHE: dict[str, str] = {}
_TOKEN_LOCK = threading.Lock()


def forget_cached_tokens() -> None:
    with _TOKEN_LOCK:
        _TOKEN_CACHE.clear()


def forget_status_forms() -> None:
    _STATUS_FORM_SEEN.clear()


class Aims360Auth:
    """Bearer token from the password grant, or the ERP-generated token; refreshed on 401."""

    def __init__(self, resource: "Aims360Resource", client: VendorClient) -> None:
        self._resource = resource
        self._client = client
        self._static = _strip_bearer(resource.access_token)
        self._token: str | None = None
        self._static_rejected = False
        self._lock = threading.Lock()

    @property
    def _cache_key(self) -> str:
        # Keyed by every credential, so a changed password never reuses the old token.
        r = self._resource
        material = "\0".join(
            (str(self._client.base_url), r.client_id or "", r.client_secret or "", r.username or "", r.password or "")
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def token(self) -> str:
        with self._lock:
            if self._token is None:
                if self._static and not self._static_rejected:
                    self._token = self._static
                else:
                    with _TOKEN_LOCK:
                        cached = _TOKEN_CACHE.get(self._cache_key)
                    if cached:
                        self._client.redact.add(cached)
                    self._token = cached or self._fetch()
            return self._token

    def refresh(self) -> None:
        with self._lock:
            stale, self._token = self._token, None
            if stale is not None and stale == self._static:
                self._static_rejected = True
                if not self._resource.has_client_credentials:
                    raise AccessTokenRejected(
                        self._client.vendor,
                        "AIMS360 rejected AIMS360_ACCESS_TOKEN (HTTP 401); generate a new access "
                        "token in the ERP or configure " + ", ".join(CREDENTIAL_VARIABLES),
                    )
            with _TOKEN_LOCK:
                if _TOKEN_CACHE.get(self._cache_key) == stale:
                    _TOKEN_CACHE.pop(self._cache_key, None)
            self._token = self._fetch()

    def _fetch(self) -> str:
        r = self._resource
        if not r.has_client_credentials:
            raise Aims360ConfigError(r.missing_credentials_message())
        body = self._client.request(
            "POST",
            TOKEN_PATH,
            data={
                "grant_type": "password",
                "client_id": r.client_id,
                "client_secret": r.client_secret,
                "username": r.username,
                "password": r.password,
            },
            authenticate=False,
            parse=decode_json,
        )
        token = None
        if isinstance(body, dict):
            token = body.get("access_token") or body.get("accessToken") or body.get("token")
        if not isinstance(token, str) or not token:
            raise VendorAuthError(
                self._client.vendor, "POST", TOKEN_PATH, 200, 1, "token answer holds no access_token"
            )
        self._client.redact.add(token)
        with _TOKEN_LOCK:
            _TOKEN_CACHE[self._cache_key] = token
        return token


def _strip_bearer(token: str | None) -> str | None:
    if not token or not token.strip():
        return None
    token = token.strip()
    return token[7:].strip() if token[:7].lower() == "bearer " else token


# --------------------------------------------------------------------------------------
# Export output
# --------------------------------------------------------------------------------------
@dataclass
class ExportFile:
    """A downloaded job output and the rows parsed from it."""

    output_format: str  # "JSON", "CSV" or "Excel" as detected from the body
    records: list[Any]
    bytes: int
    content_type: str | None


_ROW_LIST_KEYS = ("value", "Value", "data", "Data", "rows", "Rows", "items", "records")


def parse_export(content: bytes, content_type: str | None = None) -> ExportFile:
    """Rows of a publishlink body. The format is read from the body itself (a JSON array or
    object, an xlsx zip, else CSV), since content types on file downloads are unreliable."""
    kind = (content_type or "").lower()
    stripped = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if content.startswith(b"PK\x03\x04") or "spreadsheetml" in kind or "ms-excel" in kind:
        return ExportFile("Excel", _excel_rows(content), len(content), content_type)
    if stripped[:1] in (b"[", b"{") or "json" in kind:
        return ExportFile("JSON", _json_rows(stripped), len(content), content_type)
    return ExportFile("CSV", _csv_rows(content), len(content), content_type)


def _json_rows(content: bytes) -> list[Any]:
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedBody(f"publishlink JSON could not be decoded ({type(exc).__name__}: {exc})") from None
    if body is None:
        return []  # an empty export, as some serializers write an empty list
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in _ROW_LIST_KEYS:
            if isinstance(body.get(key), list):
                return body[key]
            if key in body and body[key] is None:
                return []
        # Rows under a key of the server's choosing next to counts or links: the one list of
        # objects. A grid row has no list-valued cells, so this is never a one-row export.
        lists = [v for v in body.values() if isinstance(v, list)]
        if len(lists) == 1 and all(isinstance(row, dict) for row in lists[0]):
            return lists[0]
        message = next(
            (body[k] for k in ("message", "Message", "error", "detail") if isinstance(body.get(k), str)),
            None,
        )
        if message:
            raise VendorRejected(message)
        # A view export with exactly one row, served as an object.
        return [body]
    raise VendorRejected("publishlink JSON is neither a list of rows nor an object")


def _decode_text(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


def _unique_headers(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for position, name in enumerate(headers, start=1):
        name = name.strip() or f"column_{position}"
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name} ({count + 1})")
    return unique


def _csv_records(text: str) -> list[list[str]]:
    """CSV records, strictly parsed when possible so that a file ending inside a quoted field
    (cut off) is noticed; sloppy quoting (``"x"y``) is read leniently, as Excel would."""
    try:
        return list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise MalformedBody("publishlink CSV ends inside a quoted field: the file is truncated") from None
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise MalformedBody(f"publishlink CSV could not be read ({exc})") from None


def _csv_rows(content: bytes) -> list[dict[str, Any]]:
    text = _decode_text(content)
    records = _csv_records(text)
    if not records:
        return []
    headers = _unique_headers(records[0])
    body = records[1:]
    last = body[-1] if body else None
    if (
        last is not None
        and 0 < len(last) < len(headers)
        and any(v.strip() for v in last)
        and not text.endswith(("\n", "\r"))
    ):
        # A last row with missing cells and no line break after it is a file cut off mid-row,
        # not a short row: loading it would silently drop the rest of the export.
        raise MalformedBody(
            f"publishlink CSV ends mid-row (row {len(body)} has {len(last)} of {len(headers)} "
            "columns and no line break): the file is truncated"
        )
    rows = []
    for values in body:
        if not values or all(v == "" for v in values):
            continue
        row: dict[str, Any] = {}
        for position, value in enumerate(values):
            name = headers[position] if position < len(headers) else f"column_{position + 1}"
            row[name] = value
        for name in headers[len(values):]:
            row[name] = None
        rows.append(row)
    return rows


def _excel_rows(content: bytes) -> list[dict[str, Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is a malformed body
        raise MalformedBody(f"publishlink Excel file could not be read ({type(exc).__name__})") from exc
    try:
        sheet = book.worksheets[0]
        rows_iter = sheet.iter_rows(values_only=True)
        try:
            headers = _unique_headers(["" if h is None else str(h) for h in next(rows_iter)])
        except StopIteration:
            return []
        rows = []
        for values in rows_iter:
            if values is None or all(v is None or v == "" for v in values):
                continue
            row = {}
            for position, value in enumerate(values):
                if position >= len(headers) and value is None:
                    continue
                name = headers[position] if position < len(headers) else f"column_{position + 1}"
                row[name] = value.isoformat() if isinstance(value, datetime) else value
            rows.append(row)
        return rows
    except Exception as exc:  # noqa: BLE001 - a sheet that cannot be read is a malformed body
        raise MalformedBody(f"publishlink Excel file could not be read ({type(exc).__name__})") from None
    finally:
        book.close()


def _parse_download(response: httpx.Response) -> ExportFile:
    return parse_export(response.content, response.headers.get("content-type"))


# --------------------------------------------------------------------------------------
# The resource
# --------------------------------------------------------------------------------------
class Aims360Resource(VendorResource):
    """AIMS360 Aqua: export views through background jobs and publishlinks."""

    vendor_label: ClassVar[str] = "AIMS360"
    # No documented limit: stay gentle. The flow needs few calls (a status poll per tick).
    default_requests_per_second: ClassVar[float] = 2.0
    default_max_in_flight: ClassVar[int] = 2
    # A token-only or a credentials-only setup both load; a missing one fails with a message
    # naming the variables when the resource is first used.
    env_optional: ClassVar[Mapping[str, str]] = {
        "base_url": "AIMS360_BASE_URL", "client_id": "AIMS360_CLIENT_ID",
        "client_secret": "AIMS360_CLIENT_SECRET", "username": "AIMS360_USERNAME",
        "password": "AIMS360_PASSWORD", "access_token": "AIMS360_ACCESS_TOKEN",
    }

    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="AIMS360 API root (AIMS360_BASE_URL), e.g. https://apiwest.aims360.rest.",
    )
    client_id: str | None = Field(default=None, description="AIMS360_CLIENT_ID")
    client_secret: str | None = Field(default=None, description="AIMS360_CLIENT_SECRET")
    username: str | None = Field(default=None, description="AIMS360_USERNAME (API operator)")
    password: str | None = Field(default=None, description="AIMS360_PASSWORD")
    access_token: str | None = Field(
        default=None, description="AIMS360_ACCESS_TOKEN: a token generated in the ERP."
    )
    output_format: OutputFormat = Field(default="JSON", description="Export output format.")
    publishlink_scope: Scope = Field(
        default="Private",
        description="Access scope requested for new publishlinks (Private keeps the link "
        "useless without the creator's token).",
    )
    status_method: Literal["GET", "POST"] = Field(
        default="GET",
        description="GET /jobsmanagement/odata/v1.0/backgroundjob (Jobs reference) or POST "
        "/jobsmanagement/v1.0/backgroundjob (Aqua page).",
    )
    publishlink_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts besides the API host trusted with the bearer token on token-scoped "
        "publishlinks (AIMS360_PUBLISHLINK_HOSTS).",
    )

    # -- credentials ---------------------------------------------------------------------
    @property
    def has_client_credentials(self) -> bool:
        return all((self.client_id, self.client_secret, self.username, self.password))

    def missing_credentials_message(self) -> str:
        given = {
            "AIMS360_CLIENT_ID": self.client_id,
            "AIMS360_CLIENT_SECRET": self.client_secret,
            "AIMS360_USERNAME": self.username,
            "AIMS360_PASSWORD": self.password,
        }
        missing = [name for name, value in given.items() if not value]
        if len(missing) == len(given):
            return (
                "AIMS360 credentials are not configured: set AIMS360_ACCESS_TOKEN, or all of "
                + ", ".join(CREDENTIAL_VARIABLES)
            )
        return "AIMS360 client credentials are incomplete: " + ", ".join(missing) + " not set"

    def secret_values(self) -> list[str | None]:
        return [self.client_id, self.client_secret, self.password, _strip_bearer(self.access_token)]

    def build_auth(self, client: VendorClient) -> Aims360Auth:
        if not _strip_bearer(self.access_token) and not self.has_client_credentials:
            raise Aims360ConfigError(self.missing_credentials_message())
        return Aims360Auth(self, client)

    def allowed_token_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in self.publishlink_hosts if h.strip())

    # -- endpoints -----------------------------------------------------------------------
    def create_export_job(
        self,
        view: ViewSpec,
        *,
        output_format: str | None = None,
        scope: str | None = None,
    ) -> ExportJob:
        body = self.client.post_json(
            EXPORT_PATH,
            json_body={
                "exportType": "View",
                "exportDataSettings": {"source": view.source, "viewName": view.view_name},
                "outputFormat": output_format or self.output_format,
                "publishLinkAccessScope": scope or self.publishlink_scope,
            },
        )
        return _export_job(body, self.vendor_label, EXPORT_PATH)

    def job_status(self, job_id: str) -> BackgroundJob | None:
        """The job's current row; ``None`` when the API no longer knows the job (purged).

        The docs name two status forms and spell the filter ``jobId eq'<id>'`` while OData
        wants ``jobId eq '<id>'``; a server may take only one of each. The configured form
        with the OData spelling goes first, the other spelling on 400, the other form on
        404/405; what answered is remembered for this API host. 404 from both forms means
        the job is unknown."""
        host = str(self.client.base_url)
        other = "GET" if self.status_method == "POST" else "POST"
        candidates = [(m, sp) for m in (self.status_method, other) for sp in _FILTER_SPELLINGS]
        learned = _STATUS_FORM_SEEN.get(host)
        if learned in candidates:
            candidates.remove(learned)
            candidates.insert(0, learned)
        body: Any = None
        errors: list[VendorHTTPError] = []
        missing_methods: set[str] = set()
        for method, spelling in candidates:
            if method in missing_methods:
                continue
            path = STATUS_POST_PATH if method == "POST" else STATUS_GET_PATH
            try:
                body = self.client.request_json(method, path + _job_filter(job_id, spelling))
            except VendorHTTPError as exc:
                if exc.status in (404, 405):
                    missing_methods.add(method)
                elif exc.status != 400:
                    raise
                errors.append(exc)
                continue
            _STATUS_FORM_SEEN[host] = (method, spelling)
            break
        else:
            if all(exc.status == 404 for exc in errors):
                return None
            raise next((exc for exc in errors if exc.status == 400), errors[0])
        jobs = []
        for row in job_rows(body):
            try:
                jobs.append(BackgroundJob.model_validate(row))
            except ValueError:
                continue  # a row without a job id cannot be ours
        matching = [job for job in jobs if job.job_id == job_id]
        if matching:
            return matching[0]
        # An answer whose one row spells the id differently is still the filtered job; several
        # rows none of which is ours mean the filter was ignored and the job is unknown.
        return jobs[0] if len(jobs) == 1 else None

    def rerun_job(self, job_id: str) -> ExportJob:
        path = RERUN_PATH.format(job_id=quote(job_id, safe=""))
        try:
            body = self.client.post_json(path)
        except VendorHTTPError as exc:
            if exc.status not in (404, 405):
                raise
            body, path = self._rerun_by_filter(job_id, exc)
        if isinstance(body, dict) and not any(k in body for k in ("jobId", "jobID", "JobId", "JobID")):
            # The rerun keeps the job id; an answer that does not repeat it still means it.
            body = {**body, "jobId": job_id}
        return _export_job(body, self.vendor_label, path)

    def _rerun_by_filter(self, job_id: str, refused: VendorHTTPError) -> tuple[Any, str]:
        """The Aqua page's spelling, ``POST backgroundjob?$filter=jobId eq '<id>'/rerun``,
        for servers that implement it as written. A server that reads it as a plain status
        query answers the job's finished row: that is no rerun, so ``refused`` stands."""
        learned = _STATUS_FORM_SEEN.get(str(self.client.base_url))
        spelling = learned[1] if learned else _FILTER_SPELLINGS[0]
        path = STATUS_POST_PATH
        body = self.client.post_json(path + _job_filter(job_id, spelling, "/rerun"))
        rows = job_rows(body)
        if len(rows) == 1:
            status = str(rows[0].get("jobStatus") or rows[0].get("JobStatus") or "").strip().lower()
            if status != COMPLETED and status not in FAILED_STATUSES:
                return rows[0], path
        raise refused

    def may_send_token_to(self, link: str) -> bool:
        return self.client.may_send_credentials_to(self.client.url_for(link))

    def download_publishlink(self, link: str, scope: str | None, *, job_id: str = "") -> ExportFile:
        """Fetch and parse a job output, with the bearer token only where it belongs."""
        url = self.client.url_for(link)  # refuses plain http outside loopback
        wants_token = normalise_scope(scope) in TOKEN_SCOPES
        if wants_token and not self.client.may_send_credentials_to(url):
            raise PublishlinkHostRefused(
                self.vendor_label,
                f"AIMS360 publishlink of job {job_id or '?'} is on host {url.host}, which is not "
                f"the configured API host {self.client.base_url.host}; its scope ({scope}) needs "
                "the bearer token, which is only sent to the API host. Add the host to "
                "AIMS360_PUBLISHLINK_HOSTS if it is a genuine AIMS360 host.",
            )
        try:
            return self.client.request("GET", link, authenticate=wants_token, parse=_parse_download)
        except VendorHTTPError as exc:
            # The link's path is a capability for Public links: keep it out of messages.
            masked = type(exc)(
                exc.vendor, exc.method, "/reports/v1.0/publishlink/***", exc.status, exc.attempts,
                exc.vendor_message,
            )
            if exc.status in GONE_STATUSES:
                raise PublishlinkGone(
                    self.vendor_label,
                    f"AIMS360 publishlink of job {job_id or '?'} is gone (HTTP {exc.status}"
                    f"{': ' + exc.vendor_message if exc.vendor_message else ''}); the output "
                    "expired or the job was purged",
                ) from None
            raise masked from None

    # -- the whole flow, for runs without a sensor ---------------------------------------
    def start_export(self, view: ViewSpec, *, rerun_job_id: str | None = None, log: Any = None) -> ExportJob:
        """Rerun ``rerun_job_id`` when the API allows it, else create a new job."""
        if rerun_job_id:
            try:
                return self.rerun_job(rerun_job_id)
            except VendorHTTPError as exc:
                if exc.status not in RERUN_REFUSED_STATUSES:
                    raise
                if log is not None:
                    log.info(
                        f"AIMS360 job {rerun_job_id} cannot be rerun (HTTP {exc.status}"
                        f"{': ' + exc.vendor_message if exc.vendor_message else ''}); creating a new job"
                    )
        return self.create_export_job(view)

    def wait_for_job(
        self,
        job_id: str,
        *,
        timeout_seconds: float,
        first_poll_seconds: float = 1.0,
        max_poll_seconds: float = 30.0,
        stale_completed_date: str | None = None,
        on_progress: Callable[[BackgroundJob], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> BackgroundJob:
        """Poll until the job completes; fail on Failed, on a vanished job and on timeout.

        ``stale_completed_date`` is the completion of the run before a rerun: until the API
        reports a different one, the rerun has not finished.
        """
        started = clock.monotonic()
        delay = first_poll_seconds
        while True:
            job = self.job_status(job_id)
            if job is None:
                raise ExportJobFailed(
                    self.vendor_label, f"AIMS360 job {job_id} is no longer known to the API (purged)"
                )
            if on_progress is not None:
                on_progress(job)
            if job.completes_after(stale_completed_date):
                return job
            if job.is_failed:
                raise ExportJobFailed(self.vendor_label, f"AIMS360 job {job_id} {job.describe()}")
            waited = clock.monotonic() - started
            if waited + delay > timeout_seconds:
                raise ExportJobFailed(
                    self.vendor_label,
                    f"AIMS360 job {job_id} did not complete within {timeout_seconds:g} s "
                    f"(last status {job.describe()})",
                )
            clock.sleep(delay)
            delay = min(max_poll_seconds, delay * 1.5)


def _export_job(body: Any, vendor: str, path: str) -> ExportJob:
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    try:
        return ExportJob.model_validate(body)
    except ValueError as exc:
        raise VendorHTTPError(vendor, "POST", path, 200, 1, f"unexpected answer: {exc.__class__.__name__}") from None
