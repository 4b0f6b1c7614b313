"""Local fake of the AIMS360 Aqua API, as strict as its documentation.

Endpoints:

* ``POST /authentication/v1/authentication/Token`` — OAuth password-grant form (client id,
  client secret, username, password); ``{"access_token", "token_type", "expires_in"}``.
* ``POST /reports/v1.0/exportdata`` — validates ``exportType`` (View), the view, the output
  format and the publishlink scope; queues a job.
* Job status, both documented spellings: ``GET /jobsmanagement/odata/v1.0/backgroundjob`` and
  ``POST /jobsmanagement/v1.0/backgroundjob``, with ``$filter=jobId eq '<id>'`` (required);
  OData ``{"value": [...]}`` answer, empty when the job is unknown or purged.
* ``POST /jobsmanagement/v1.0/backgroundjob/{jobId}/rerun`` (and the Aqua page's
  ``backgroundjob?$filter=jobId eq'<id>'/rerun`` spelling) — refused when ``canReRun`` is No.
* ``GET /reports/v1.0/publishlink/{a}/{b}`` — enforces the scope: Public needs nothing,
  Private only the creator's token, PeopleInOrganization any token of the creator's
  organisation; anything else is "Access Denied" (401 without a valid token, 403 with one).

Job lifecycle: a job walks Queued 0% → Queued with ``progress`` percentages → its outcome
(Completed, Failed, or Stuck: never moves again). It advances one step per status poll
(deterministic, the default) or one step per ``step_seconds``. Tests set the lifecycle of
the next jobs with ``state.next_lifecycles``. Knobs on the state serve what an independent
implementation of the same docs may choose (sparse job rows, one status form or filter
spelling, one rerun form, ``null`` for an empty JSON export, Excel as a legacy .xls, other
content types for the files); ``publishlink_instead`` serves a body that is no export at
all (plain text, an HTML page, nothing) under HTTP 200. No rate limit is documented, so
none is enforced. Every request, with its headers, is in ``sandbox.stats.log`` (framework).
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...sandbox.data import SandboxConfig, person_name
from ...sandbox.framework import Sandbox, build_app
from ...sandbox.tokens import IssuedToken, bearer_token
from .models import PEOPLE_IN_ORGANIZATION, PRIVATE, PUBLIC, normalise_scope

CLIENT_ID = "aims360-sandbox-client"
CLIENT_SECRET = "aims360-sandbox-secret-7f3e"
USERNAME = "api.operator@sandbox-apparel.test"
PASSWORD = "operator-password-91c2"
COLLEAGUE = "colleague@sandbox-apparel.test"
COLLEAGUE_PASSWORD = "colleague-password-4d8a"
OUTSIDER = "outsider@other-apparel.test"
OUTSIDER_PASSWORD = "outsider-password-2b6f"
OTHER_CLIENT_ID = "aims360-other-client"
OTHER_CLIENT_SECRET = "aims360-other-secret-5a1d"
ORGANISATION = "AZ022"
OTHER_ORGANISATION = "AZ077"

TOKEN_PATH = "/authentication/v1/authentication/Token"
ACCESS_DENIED = "Access Denied"
SCOPE_NAMES = {PUBLIC: "Public", PRIVATE: "Private", PEOPLE_IN_ORGANIZATION: "PeopleInOrganization"}
FORMATS = {"json": "JSON", "csv": "CSV", "excel": "Excel"}
_FILTER = re.compile(r"^\s*jobid\s+eq\s*'((?:[^']|'')*)'\s*(/rerun)?\s*$", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# Seeded views
# --------------------------------------------------------------------------------------
def _iso(d: date) -> str:
    return d.isoformat()


def _orders(config: SandboxConfig, count: int) -> list[dict[str, Any]]:
    rng = config.rng("aims360:orders")
    rows = []
    for i in range(count):
        first, last = person_name(rng)
        ordered = config.first_date + timedelta(days=rng.randrange(config.days))
        notes = rng.choice([None, None, "Ship complete", 'Call "Dock 4", before delivery', "Hold, credit check"])
        rows.append(
            {
                "Order No": f"{i + 1:07d}",
                "Customer": f"{last} Apparel",
                "Buyer": f"{first} {last}",
                "Order Date": _iso(ordered),
                "Start Ship": _iso(ordered + timedelta(days=rng.randint(7, 30))),
                "Total Qty": rng.randint(12, 2400),
                "Total Amount": round(rng.uniform(150, 25000), 2),
                "Rush": rng.random() < 0.15,
                "Notes": notes,
                "Last Modified": f"{_iso(ordered)}T{rng.randint(6, 18):02d}:{rng.randint(0, 59):02d}:00Z",
            }
        )
    return rows


def _invoices(config: SandboxConfig, count: int) -> list[dict[str, Any]]:
    rng = config.rng("aims360:invoices")
    rows = []
    for i in range(count):
        _, last = person_name(rng)
        invoiced = config.first_date + timedelta(days=rng.randrange(config.days))
        rows.append(
            {
                "Invoice No": f"INV{i + 1:06d}",
                "Customer": f"{last} Apparel",
                "Invoice Date": _iso(invoiced),
                "Amount": round(rng.uniform(50, 9000), 2),
                "Balance": round(rng.uniform(0, 50), 2),
            }
        )
    return rows


def _styles(config: SandboxConfig, count: int) -> list[dict[str, Any]]:
    rng = config.rng("aims360:styles")
    colours = ("Black", "Navy", "Heather Grey", "Olive", "White")
    return [
        {
            "Style": f"ST-{i + 1:05d}",
            "Color": rng.choice(colours),
            "Description": f"{rng.choice(('Tee', 'Hoodie', 'Chino', 'Parka'))} {i + 1}",
            "Wholesale Price": round(rng.uniform(4, 80), 2),
            "Active": rng.random() < 0.9,
        }
        for i in range(count)
    ]


VIEW_BUILDERS = {
    ("orders", "open orders"): ("Orders", "Open Orders", _orders, 1),
    ("invoices", "open invoices"): ("Invoices", "Open Invoices", _invoices, 2),
    ("styles", "all styles"): ("Styles", "All Styles", _styles, 3),
}


@dataclass
class SandboxView:
    source: str
    view_name: str
    base_rows: list[dict[str, Any]]
    version: int = 0

    def rows(self, version: int | None = None) -> list[dict[str, Any]]:
        """Rows as of ``version``: each change touches about 1% of the rows (at least one)."""
        version = self.version if version is None else version
        rows = [dict(r) for r in self.base_rows]
        for change in range(1, version + 1):
            always = (change * 7) % len(rows) if rows else -1
            for index, row in enumerate(rows):
                if (index + change * 37) % 100 == 0 or index == always:
                    for key, value in row.items():
                        if isinstance(value, float):
                            row[key] = round(value + change, 2)
                            break
        return rows


# --------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobLifecycle:
    """How a job behaves: ``queued_polls`` steps at Queued 0%, one step per ``progress``
    percentage, then ``outcome``. ``step_seconds=None`` advances per status poll."""

    queued_polls: int = 1
    progress: tuple[int, ...] = (50,)
    outcome: Literal["Completed", "Failed", "Stuck"] = "Completed"
    step_seconds: float | None = None
    can_rerun: bool = True
    purge_days: int = 30
    failure_text: str = "Export failed: the view query timed out"

    def states(self) -> list[tuple[str, int]]:
        states = [("Queued", 0)] * (1 + self.queued_polls) + [("Queued", p) for p in self.progress]
        if self.outcome != "Stuck":
            states.append((self.outcome, 100 if self.outcome == "Completed" else states[-1][1]))
        return states


@dataclass
class SandboxJob:
    job_id: str
    row_id: int
    view: SandboxView
    output_format: str
    scope: str  # normalised
    creator: str
    organisation: str
    link_parts: tuple[str, str]
    link_base: str
    lifecycle: JobLifecycle
    created_at: datetime
    started_monotonic: float
    step: int = 0
    attempts: int = 0
    completed_date: str | None = None
    snapshot_version: int | None = None
    purged: bool = False
    status_polls: int = 0

    @property
    def publish_link(self) -> str:
        return f"{self.link_base}/reports/v1.0/publishlink/{self.link_parts[0]}/{self.link_parts[1]}"

    def state(self) -> tuple[str, int]:
        states = self.lifecycle.states()
        return states[min(self.step, len(states) - 1)]


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass
class Aims360SandboxState:
    config: SandboxConfig
    views: dict[tuple[str, str], SandboxView]
    default_lifecycle: JobLifecycle = field(default_factory=JobLifecycle)
    next_lifecycles: deque = field(default_factory=deque)
    # Publishlinks point here instead of at the API host (tests: a "foreign" host).
    link_base_url: str | None = None
    # Echo scopes in upper case (the API's spelling varies).
    upper_case_scopes: bool = False
    # Doc-conformant variants an independent implementation may choose:
    # status rows holding only the fields the Aqua page shows for job answers (no
    # completedDate, percentCompleted, canReRun, purge fields) ...
    sparse_job_rows: bool = False
    # ... only some of the documented job status forms ("GET" odata, "POST"); others are 404 ...
    status_forms: tuple[str, ...] = ("GET", "POST")
    # ... only some rerun forms ("path": .../backgroundjob/{id}/rerun, "filter": the Aqua
    # page's backgroundjob?$filter=jobId eq'{id}'/rerun); others are 404 ...
    rerun_forms: tuple[str, ...] = ("path", "filter")
    # ... only one spelling of the filter: "doc" (``jobId eq'<id>'``, as the Aqua page writes
    # it) or "odata" (``jobId eq '<id>'``); None takes both ...
    filter_spelling: str | None = None
    # ... an empty JSON export served as ``null`` (as Go marshals an empty slice) ...
    json_null_when_empty: bool = False
    # ... "Excel" as a legacy (97-2003) workbook, "xls", instead of "xlsx" ...
    excel_file: str = "xlsx"
    # ... and files served with other content types, per output format (e.g. a CSV as
    # application/vnd.ms-excel, JSON as text/plain): the docs name none.
    media_types: dict[str, str] = field(default_factory=dict)
    # Misbehaviour: a body served with HTTP 200 instead of the completed output, as
    # (body, content type): "Access Denied" as text, an HTML page, an empty body.
    publishlink_instead: tuple[bytes, str] | None = None
    jobs: dict[str, SandboxJob] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _row_ids: int = 52700
    _last_completion: datetime | None = None

    # -- test helpers ------------------------------------------------------------------
    def view(self, label: str) -> SandboxView:
        source, _, view_name = label.partition("/")
        return self.views[(source.strip().lower(), view_name.strip().lower())]

    def view_rows(self, label: str) -> list[dict[str, Any]]:
        return self.view(label).rows()

    def change_view(self, label: str) -> None:
        """About 1% of the view's rows change (seen by jobs that complete afterwards)."""
        with self.lock:
            self.view(label).version += 1

    def queue_lifecycles(self, *lifecycles: JobLifecycle) -> None:
        """Lifecycles for the next created or rerun jobs, in order."""
        with self.lock:
            self.next_lifecycles.extend(lifecycles)

    def purge(self, job_id: str) -> None:
        with self.lock:
            self.jobs[job_id].purged = True

    def job(self, job_id: str) -> SandboxJob:
        return self.jobs[job_id]

    # -- internals -----------------------------------------------------------------------
    def take_lifecycle(self) -> JobLifecycle:
        return self.next_lifecycles.popleft() if self.next_lifecycles else self.default_lifecycle

    def advance(self, job: SandboxJob, *, by_poll: bool) -> None:
        states = job.lifecycle.states()
        if job.lifecycle.step_seconds is None:
            if by_poll:
                job.step = min(job.step + 1, len(states) - 1)
        else:
            elapsed = time.monotonic() - job.started_monotonic
            job.step = min(int(elapsed / job.lifecycle.step_seconds), len(states) - 1)
        status, _ = job.state()
        if status == "Completed" and job.completed_date is None:
            now = _now()
            # Two completions of one job must never share a completedDate.
            if self._last_completion is not None and now <= self._last_completion:
                now = self._last_completion + timedelta(milliseconds=1)
            self._last_completion = now
            job.completed_date = _stamp(now)
            job.snapshot_version = job.view.version

    def scope_name(self, scope: str) -> str:
        name = SCOPE_NAMES[scope]
        return name.upper() if self.upper_case_scopes else name

    def job_row(self, job: SandboxJob, base: str) -> dict[str, Any]:
        status, percent = job.state()
        if self.sparse_job_rows:
            return {
                "jobId": job.job_id,
                "jobStatus": status,
                "publishLink": job.publish_link,
                "publishLinkAccessScope": self.scope_name(job.scope),
            }
        completed = job.completed_date if status == "Completed" else None
        purge_at = job.created_at + timedelta(days=job.lifecycle.purge_days)
        text = {
            "Completed": "Export completed.",
            "Failed": job.lifecycle.failure_text,
        }.get(status, "Export is in the queue." if percent == 0 else "Export is running.")
        return {
            "ID": job.row_id,
            "jobCategoryID": 1002,
            "categoryName": "Reports",
            "jobSubCategoryID": 1010,
            "subCategoryName": "Aqua Export",
            "jobDescription": f"Export view {job.view.source} - {job.view.view_name}",
            "clientRequestId": None,
            "jobStatus": status,
            "jobStatusText": text,
            "publishLink": job.publish_link,
            "requestURL": f"{base}/reports/v1.0/exportdata",
            "publishLinkAccessScope": self.scope_name(job.scope),
            "percentCompleted": percent,
            "jobID": job.job_id,
            "responseType": "File Attachment",
            "response": None,
            "startDate": _stamp(job.created_at),
            "completedDate": completed,
            "purgeDateTime": _stamp(purge_at),
            "clientID": CLIENT_ID if job.organisation == ORGANISATION else OTHER_CLIENT_ID,
            "DatabaseName": f"{job.organisation}Data1",
            "accountCode": job.organisation,
            "purgeDays": job.lifecycle.purge_days,
            "canReRun": "Yes" if job.lifecycle.can_rerun else "No",
            "maximumDateTimeToExecuteJob": None,
            "numberOfAttempts": job.attempts,
            "CanPublish": "Yes",
            "createdBy": job.creator,
            "createdDate": _stamp(job.created_at),
            "modifiedBy": job.creator,
            "modifiedDate": completed or _stamp(job.created_at),
            "rowversion": "AAAAAAAIJCU=",
        }


USERS = {
    USERNAME: (PASSWORD, ORGANISATION),
    COLLEAGUE: (COLLEAGUE_PASSWORD, ORGANISATION),
    OUTSIDER: (OUTSIDER_PASSWORD, OTHER_ORGANISATION),
}
CLIENTS = {CLIENT_ID: (CLIENT_SECRET, ORGANISATION), OTHER_CLIENT_ID: (OTHER_CLIENT_SECRET, OTHER_ORGANISATION)}


def _message(text: str, status: int) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status)


def _unauthorised() -> JSONResponse:
    return _message("Authorization has been denied for this request.", 401)


def _not_found() -> JSONResponse:
    return _message("Not Found", 404)


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def state_of(app_or_server: Any) -> Aims360SandboxState:
    """The AIMS360 state behind a sandbox app or a running ``SandboxServer``."""
    app = getattr(app_or_server, "app", app_or_server)
    return app.state.sandbox.extra["aims360"]


def create_app(config: SandboxConfig) -> Starlette:
    rows = config.time_records
    views = {
        key: SandboxView(source, view_name, builder(config, max(1, rows // divisor)))
        for key, (source, view_name, builder, divisor) in VIEW_BUILDERS.items()
    }
    state = Aims360SandboxState(config=config, views=views)
    sandbox = Sandbox(name="aims360")
    sandbox.extra["aims360"] = state

    def principal(request: Request) -> IssuedToken | None:
        return sandbox.tokens.validate(bearer_token(request.headers))

    def organisation_of(user: str) -> str:
        return USERS[user][1] if user in USERS else ""

    async def token(request: Request) -> Response:
        # A form body, as OAuth token endpoints take (parsed here: no multipart library).
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return JSONResponse(
                {"error": "invalid_request", "error_description": "The token request must be a form body."},
                status_code=400,
            )
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        grant = (form.get("grant_type") or "password").lower()
        if grant != "password":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        client = CLIENTS.get(str(form.get("client_id") or ""))
        if client is None or client[0] != form.get("client_secret"):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "The client credentials are invalid."},
                status_code=400,
            )
        user = USERS.get(str(form.get("username") or ""))
        if user is None or user[0] != form.get("password") or user[1] != client[1]:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "The user name or password is incorrect."},
                status_code=400,
            )
        issued = sandbox.tokens.issue(str(form.get("username")), lifetime_seconds=86400)
        return JSONResponse({"access_token": issued.token, "token_type": "bearer", "expires_in": 86399})

    async def export_data(request: Request) -> Response:
        caller = principal(request)
        if caller is None:
            return _unauthorised()
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return _message("The request body is not valid JSON.", 400)
        if not isinstance(body, dict):
            return _message("The request body must be a JSON object.", 400)
        if str(body.get("exportType", "")).lower() != "view":
            return _message("exportType must be 'View'.", 400)
        settings = body.get("exportDataSettings")
        if not isinstance(settings, dict) or not settings.get("source") or not settings.get("viewName"):
            return _message("exportDataSettings must name the source and viewName.", 400)
        key = (str(settings["source"]).strip().lower(), str(settings["viewName"]).strip().lower())
        view = state.views.get(key)
        if view is None:
            return _message(f"View '{settings['viewName']}' was not found for source '{settings['source']}'.", 400)
        output_format = FORMATS.get(str(body.get("outputFormat", "")).strip().lower())
        if output_format is None:
            return _message("outputFormat must be JSON, CSV or Excel.", 400)
        scope = normalise_scope(str(body.get("publishLinkAccessScope") or ""))
        if scope not in SCOPE_NAMES:
            return _message("publishLinkAccessScope must be Public, Private or PeopleInOrganization.", 400)
        now = _now()
        with state.lock:
            state._row_ids += 1
            job = SandboxJob(
                job_id=f"{uuid.uuid4()}-{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}",
                row_id=state._row_ids,
                view=view,
                output_format=output_format,
                scope=scope,
                creator=caller.principal,
                organisation=organisation_of(caller.principal),
                link_parts=(secrets.token_hex(12), secrets.token_hex(12)),
                link_base=state.link_base_url or _base(request),
                lifecycle=state.take_lifecycle(),
                created_at=now,
                started_monotonic=time.monotonic(),
            )
            state.jobs[job.job_id] = job
        return JSONResponse(
            {
                "jobId": job.job_id,
                "jobStatus": "Queued",
                "publishLink": job.publish_link,
                "publishLinkAccessScope": state.scope_name(job.scope),
            }
        )

    def visible_job(caller: IssuedToken, job_id: str) -> SandboxJob | None:
        job = state.jobs.get(job_id)
        if job is None or job.purged or job.organisation != organisation_of(caller.principal):
            return None
        return job

    def rerun(caller: IssuedToken, job_id: str) -> Response:
        with state.lock:
            job = visible_job(caller, job_id)
            if job is None:
                return _message(f"Job '{job_id}' was not found.", 404)
            state.advance(job, by_poll=False)
            status, _ = job.state()
            if status not in ("Completed", "Failed"):
                return _message(f"Job '{job_id}' is still running.", 409)
            if not job.lifecycle.can_rerun:
                return _message(f"Job '{job_id}' cannot be rerun (canReRun is No).", 400)
            job.lifecycle = replace(state.take_lifecycle(), can_rerun=job.lifecycle.can_rerun)
            job.step = 0
            job.attempts += 1
            job.completed_date = None
            job.started_monotonic = time.monotonic()
            # The last completed output stays behind the publishlink until the rerun ends.
            return JSONResponse(
                {
                    "jobId": job.job_id,
                    "jobStatus": "Queued",
                    "publishLink": job.publish_link,
                    "publishLinkAccessScope": state.scope_name(job.scope),
                }
            )

    async def job_status(request: Request) -> Response:
        if request.method not in state.status_forms:
            return _not_found()
        caller = principal(request)
        if caller is None:
            return _unauthorised()
        raw_filter = request.query_params.get("$filter")
        match = _FILTER.match(raw_filter or "")
        spaced = bool(re.search(r"eq\s+'", raw_filter or "", re.IGNORECASE))
        if state.filter_spelling is not None and spaced != (state.filter_spelling == "odata"):
            match = None
        if match is None:
            return _message("The query must filter on jobId: $filter=jobId eq '<jobId>'.", 400)
        job_id = match.group(1).replace("''", "'")
        if match.group(2):
            if request.method != "POST":
                return _message("Rerun requires POST.", 405)
            if "filter" not in state.rerun_forms:
                return _not_found()
            return rerun(caller, job_id)
        base = _base(request)
        with state.lock:
            job = visible_job(caller, job_id)
            rows = []
            if job is not None:
                job.status_polls += 1
                state.advance(job, by_poll=True)
                rows.append(state.job_row(job, base))
        return JSONResponse(
            {"@odata.context": f"{base}/jobsmanagement/odata/v1.0/$metadata#backgroundjob", "value": rows}
        )

    async def rerun_route(request: Request) -> Response:
        if "path" not in state.rerun_forms:
            return _not_found()
        caller = principal(request)
        if caller is None:
            return _unauthorised()
        return rerun(caller, request.path_params["job_id"])

    async def publishlink(request: Request) -> Response:
        parts = (request.path_params["a"], request.path_params["b"])
        with state.lock:
            job = next((j for j in state.jobs.values() if j.link_parts == parts), None)
            if job is None:
                return _message("The publishlink was not found.", 404)
            if job.purged:
                return _message("The publishlink has expired.", 410)
            if job.scope != PUBLIC:
                token = bearer_token(request.headers)
                caller = sandbox.tokens.validate(token)
                if caller is None:
                    return _message(ACCESS_DENIED, 401)
                allowed = (
                    caller.principal == job.creator
                    if job.scope == PRIVATE
                    else organisation_of(caller.principal) == job.organisation
                )
                if not allowed:
                    return _message(ACCESS_DENIED, 403)
            state.advance(job, by_poll=False)
            version = job.snapshot_version
            fmt = job.output_format
            view = job.view
        if version is None:
            return _message("The output of this job is not available yet.", 404)
        if state.publishlink_instead is not None:
            body, media_type = state.publishlink_instead
            return Response(body, media_type=media_type)
        rows = view.rows(version)
        name = f"{view.source}_{view.view_name}".replace(" ", "_")
        if fmt == "JSON" and not rows and state.json_null_when_empty:
            response = Response(b"null", media_type="application/json")
        elif fmt == "Excel" and state.excel_file == "xls":
            response = render_xls(rows, name)
        else:
            response = render_output(rows, fmt, name)
        if fmt in state.media_types:
            response.headers["content-type"] = state.media_types[fmt]
        return response

    routes = [
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route("/reports/v1.0/exportdata", export_data, methods=["POST"]),
        Route("/jobsmanagement/odata/v1.0/backgroundjob", job_status, methods=["GET"]),
        Route("/jobsmanagement/v1.0/backgroundjob", job_status, methods=["POST"]),
        Route("/jobsmanagement/v1.0/backgroundjob/{job_id}/rerun", rerun_route, methods=["POST"]),
        Route("/reports/v1.0/publishlink/{a}/{b}", publishlink, methods=["GET"]),
    ]
    return build_app(sandbox, routes)


def render_output(rows: list[dict[str, Any]], output_format: str, name: str) -> Response:
    if output_format == "JSON":
        return JSONResponse(rows)
    if output_format == "CSV":
        buffer = io.StringIO()
        headers = list(rows[0]) if rows else []
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(headers)
        for row in rows:
            writer.writerow(["" if row.get(h) is None else _csv_value(row.get(h)) for h in headers])
        return Response(
            buffer.getvalue().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    headers = list(rows[0]) if rows else []
    sheet.append(headers)
    for row in rows:
        sheet.append([row.get(h) for h in headers])
    out = io.BytesIO()
    book.save(out)
    return Response(
        out.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


def render_xls(rows: list[dict[str, Any]], name: str) -> Response:
    """The view as a legacy Excel 97-2003 workbook (BIFF8 in an OLE2 file)."""
    import xlwt  # only this variant needs it (a dev dependency)

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Export")
    headers = list(rows[0]) if rows else []
    for column, header in enumerate(headers):
        sheet.write(0, column, header)
    for line, row in enumerate(rows, start=1):
        for column, header in enumerate(headers):
            value = row.get(header)
            if value is not None:
                sheet.write(line, column, value)
    out = io.BytesIO()
    book.save(out)
    return Response(
        out.getvalue(),
        media_type="application/vnd.ms-excel",
        headers={"Content-Disposition": f'attachment; filename="{name}.xls"'},
    )


def _csv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sandbox_env(base_url: str) -> dict[str, str]:
    return {
        "AIMS360_BASE_URL": base_url,
        "AIMS360_CLIENT_ID": CLIENT_ID,
        "AIMS360_CLIENT_SECRET": CLIENT_SECRET,
        "AIMS360_USERNAME": USERNAME,
        "AIMS360_PASSWORD": PASSWORD,
        "AIMS360_VIEWS": "Orders/Open Orders",
    }


def expected_timesheets(config: SandboxConfig, first: date, last: date) -> dict:
    """AIMS360 is an apparel ERP: it feeds no timesheet lines."""
    return {"lines": 0, "total_hours": 0.0}


def expected_projects(config: SandboxConfig) -> int:
    return 0
