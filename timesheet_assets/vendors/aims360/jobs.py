"""AIMS360 background jobs: creating an export, reading a job's status, rerunning it, waiting.

Decisions where the docs are open or disagree (see docs/vendors/aims360.md):

* Job status: the Jobs reference documents ``GET /jobsmanagement/odata/v1.0/backgroundjob``,
  the Aqua page ``POST /jobsmanagement/v1.0/backgroundjob``; the resource's ``status_method``
  picks one (default GET, the Jobs reference); a server lacking it (404/405) gets the other
  form, one refusing the filter spelling (400) the Aqua page's ``eq'<id>'``, remembered per
  host. The answer may be an OData ``{"value": [...]}`` envelope, a list or one object; no
  row (or 404 from both forms) means the job is unknown (purged).
* Rerun: ``POST /jobsmanagement/v1.0/backgroundjob/{jobId}/rerun`` (the Jobs reference; the
  Aqua page's ``backgroundjob?$filter=.../rerun`` spelling, tried when the path form is
  404/405, is the same call).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ...http import SYSTEM_CLOCK, Clock, VendorClient, VendorHTTPError
from .errors import ExportJobFailed
from .models import COMPLETED, FAILED_STATUSES, BackgroundJob, ExportJob, job_rows

EXPORT_PATH = "/reports/v1.0/exportdata"
STATUS_GET_PATH = "/jobsmanagement/odata/v1.0/backgroundjob"
STATUS_POST_PATH = "/jobsmanagement/v1.0/backgroundjob"
RERUN_PATH = "/jobsmanagement/v1.0/backgroundjob/{job_id}/rerun"

# Answers to a rerun that mean "this job cannot be rerun; create a new one".
RERUN_REFUSED_STATUSES = frozenset({400, 403, 404, 405, 409, 410, 422})
# API host -> the job status form (method, filter spelling) that answered there (per process).
_STATUS_FORM_SEEN: dict[str, tuple[str, str]] = {}
# ``jobId eq '<id>'`` (OData) and ``jobId eq'<id>'`` (as the Aqua page writes it).
_FILTER_SPELLINGS = ("eq '", "eq'")


def forget_status_forms() -> None:
    _STATUS_FORM_SEEN.clear()


def _job_filter(job_id: str, spelling: str, suffix: str = "") -> str:
    literal = job_id.replace("'", "''")  # OData doubles quotes inside a string literal
    return "?$filter=" + quote(f"jobId {spelling}{literal}'{suffix}", safe="'")


def export_job_of(body: Any, vendor: str, path: str) -> ExportJob:
    """The job named by an exportdata or rerun answer (an object, or a list of one)."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    try:
        return ExportJob.model_validate(body)
    except ValueError as exc:
        raise VendorHTTPError(vendor, "POST", path, 200, 1, f"unexpected answer: {exc.__class__.__name__}") from None


def create_export_job(client: VendorClient, source: str, view_name: str, output_format: str, scope: str) -> ExportJob:
    body = client.post_json(
        EXPORT_PATH,
        json_body={
            "exportType": "View",
            "exportDataSettings": {"source": source, "viewName": view_name},
            "outputFormat": output_format,
            "publishLinkAccessScope": scope,
        },
    )
    return export_job_of(body, client.vendor, EXPORT_PATH)


def job_status(client: VendorClient, status_method: str, job_id: str) -> BackgroundJob | None:
    """The job's current row; ``None`` when the API no longer knows the job (purged).

    The docs name two status forms and spell the filter ``jobId eq'<id>'`` while OData
    wants ``jobId eq '<id>'``; a server may take only one of each. The configured form
    with the OData spelling goes first, the other spelling on 400, the other form on
    404/405; what answered is remembered for this API host. 404 from both forms means
    the job is unknown."""
    host = str(client.base_url)
    other = "GET" if status_method == "POST" else "POST"
    candidates = [(m, sp) for m in (status_method, other) for sp in _FILTER_SPELLINGS]
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
            body = client.request_json(method, path + _job_filter(job_id, spelling))
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


def rerun_job(client: VendorClient, job_id: str) -> ExportJob:
    path = RERUN_PATH.format(job_id=quote(job_id, safe=""))
    try:
        body = client.post_json(path)
    except VendorHTTPError as exc:
        if exc.status not in (404, 405):
            raise
        body, path = _rerun_by_filter(client, job_id, exc)
    if isinstance(body, dict) and not any(k in body for k in ("jobId", "jobID", "JobId", "JobID")):
        # The rerun keeps the job id; an answer that does not repeat it still means it.
        body = {**body, "jobId": job_id}
    return export_job_of(body, client.vendor, path)


def _rerun_by_filter(client: VendorClient, job_id: str, refused: VendorHTTPError) -> tuple[Any, str]:
    """The Aqua page's spelling, ``POST backgroundjob?$filter=jobId eq '<id>'/rerun``,
    for servers that implement it as written. A server that reads it as a plain status
    query answers the job's finished row: that is no rerun, so ``refused`` stands."""
    learned = _STATUS_FORM_SEEN.get(str(client.base_url))
    spelling = learned[1] if learned else _FILTER_SPELLINGS[0]
    path = STATUS_POST_PATH
    body = client.post_json(path + _job_filter(job_id, spelling, "/rerun"))
    rows = job_rows(body)
    if len(rows) == 1:
        status = str(rows[0].get("jobStatus") or rows[0].get("JobStatus") or "").strip().lower()
        if status != COMPLETED and status not in FAILED_STATUSES:
            return rows[0], path
    raise refused


def wait_for_job(
    read_status: Callable[[str], BackgroundJob | None],
    vendor: str,
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
        job = read_status(job_id)
        if job is None:
            raise ExportJobFailed(vendor, f"AIMS360 job {job_id} is no longer known to the API (purged)")
        if on_progress is not None:
            on_progress(job)
        if job.completes_after(stale_completed_date):
            return job
        if job.is_failed:
            raise ExportJobFailed(vendor, f"AIMS360 job {job_id} {job.describe()}")
        waited = clock.monotonic() - started
        if waited + delay > timeout_seconds:
            raise ExportJobFailed(
                vendor,
                f"AIMS360 job {job_id} did not complete within {timeout_seconds:g} s (last status {job.describe()})",
            )
        clock.sleep(delay)
        delay = min(max_poll_seconds, delay * 1.5)
