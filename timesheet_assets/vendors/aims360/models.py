"""Pydantic models of the AIMS360 Aqua payloads.

The Jobs reference spells the job id ``jobID`` while the export and rerun answers say
``jobId``; booleans such as ``canReRun`` arrive as ``"Yes"``/``"No"``; numbers may be ints
where floats are shown and any optional value may be null or missing. The models accept all
of that and keep unknown keys (``extra="allow"``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from ...ingest.values import parse_utc_timestamp as parse_timestamp

COMPLETED = "completed"
FAILED = "failed"
# The docs list Queued, Completed and Failed. Anything else that clearly means "ended badly"
# is treated as Failed; everything unknown is treated as still running (the stall timeout
# catches a job that never moves).
FAILED_STATUSES = frozenset({"failed", "error", "errored", "cancelled", "canceled", "aborted"})

PUBLIC = "public"
PRIVATE = "private"
PEOPLE_IN_ORGANIZATION = "peopleinorganization"
TOKEN_SCOPES = frozenset({PRIVATE, PEOPLE_IN_ORGANIZATION})


def normalise_scope(scope: str | None) -> str | None:
    """``PUBLIC``, ``Public`` and ``public`` are one scope; ``People In Organization`` is
    ``PeopleInOrganization``."""
    if scope is None:
        return None
    return "".join(ch for ch in scope.lower() if ch.isalnum()) or None


def parse_yes_no(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"yes", "y", "true", "1"}:
        return True
    if text in {"no", "n", "false", "0"}:
        return False
    return None


class Aims360Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ExportJob(Aims360Model):
    """Answer of ``POST /reports/v1.0/exportdata`` and of the rerun endpoint."""

    job_id: str = Field(validation_alias=AliasChoices("jobId", "jobID", "JobId", "JobID", "id"))
    job_status: str | None = Field(default=None, validation_alias=AliasChoices("jobStatus", "JobStatus", "status"))
    publish_link: str | None = Field(
        default=None, validation_alias=AliasChoices("publishLink", "PublishLink", "publishlink")
    )
    publish_link_access_scope: str | None = Field(
        default=None,
        validation_alias=AliasChoices("publishLinkAccessScope", "PublishLinkAccessScope", "publishlinkAccessScope"),
    )

    @field_validator("job_id", mode="before")
    @classmethod
    def _job_id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value


class BackgroundJob(Aims360Model):
    """One row of the job status answer (``backgroundjob?$filter=jobId eq '...'``)."""

    job_id: str = Field(validation_alias=AliasChoices("jobID", "jobId", "JobID", "JobId"))
    job_status: str | None = Field(default=None, validation_alias=AliasChoices("jobStatus", "JobStatus"))
    job_status_text: str | None = Field(default=None, validation_alias=AliasChoices("jobStatusText", "JobStatusText"))
    percent_completed: float | None = Field(
        default=None, validation_alias=AliasChoices("percentCompleted", "PercentCompleted")
    )
    publish_link: str | None = Field(default=None, validation_alias=AliasChoices("publishLink", "PublishLink"))
    publish_link_access_scope: str | None = Field(
        default=None,
        validation_alias=AliasChoices("publishLinkAccessScope", "PublishLinkAccessScope"),
    )
    completed_date: str | None = Field(default=None, validation_alias=AliasChoices("completedDate", "CompletedDate"))
    purge_date_time: str | None = Field(default=None, validation_alias=AliasChoices("purgeDateTime", "PurgeDateTime"))
    purge_days: float | None = Field(default=None, validation_alias=AliasChoices("purgeDays", "PurgeDays"))
    can_rerun: bool | None = Field(default=None, validation_alias=AliasChoices("canReRun", "CanReRun", "canRerun"))

    @field_validator("job_id", mode="before")
    @classmethod
    def _job_id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("percent_completed", "purge_days", mode="before")
    @classmethod
    def _lenient_number(cls, value: Any) -> Any:
        # Informational fields: one the docs do not show in a readable shape ("n/a",
        # "30 days") must not make the whole row, and so the job, unreadable.
        if isinstance(value, str):
            try:
                return float(value.strip().rstrip("%"))
            except ValueError:
                return None
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @field_validator("completed_date", "purge_date_time", mode="before")
    @classmethod
    def _timestamp_text(cls, value: Any) -> Any:
        return None if value in ("", None) else str(value)

    @field_validator("can_rerun", mode="before")
    @classmethod
    def _yes_no(cls, value: Any) -> Any:
        return parse_yes_no(value)

    @property
    def status_key(self) -> str:
        return (self.job_status or "").strip().lower()

    @property
    def is_completed(self) -> bool:
        return self.status_key == COMPLETED

    @property
    def is_failed(self) -> bool:
        return self.status_key in FAILED_STATUSES

    @property
    def is_pending(self) -> bool:
        return not (self.is_completed or self.is_failed)

    def completes_after(self, stale_completed_date: str | None) -> bool:
        """Completed, and not the completion from before a rerun. Without a previous
        ``completedDate`` to compare (the Aqua page documents none), Completed is enough."""
        if not self.is_completed:
            return False
        return stale_completed_date is None or self.completed_date != stale_completed_date

    def purge_deadline(self) -> datetime | None:
        """When the output (and the publishlink) goes away: ``purgeDateTime`` when given,
        else ``completedDate`` + ``purgeDays``."""
        explicit = parse_timestamp(self.purge_date_time)
        if explicit is not None:
            return explicit
        completed = parse_timestamp(self.completed_date)
        if completed is not None and self.purge_days is not None:
            try:
                return completed + timedelta(days=self.purge_days)
            except (OverflowError, ValueError):  # absurd purgeDays (huge, NaN): no deadline known
                return None
        return None

    def describe(self) -> str:
        """Status for humans: ``Queued (40%)``, ``Failed: <status text>``."""
        status = self.job_status or "unknown status"
        if self.is_failed and self.job_status_text:
            return f"{status}: {self.job_status_text}"
        if self.percent_completed is not None and not self.is_completed:
            return f"{status} ({self.percent_completed:g}%)"
        return status


class ViewRow(Aims360Model):
    """A row of an exported view. Views are user-defined grids, so every column is an extra
    field; the model only insists on a JSON object."""


def job_rows(body: Any) -> list[dict[str, Any]]:
    """The job rows of a status answer: an OData ``{"value": [...]}`` envelope, a bare list,
    or a single job object."""
    if isinstance(body, list):
        return [row for row in body if isinstance(row, dict)]
    if isinstance(body, dict):
        for key in ("value", "Value", "items", "data"):
            if isinstance(body.get(key), list):
                return [row for row in body[key] if isinstance(row, dict)]
        if any(k in body for k in ("jobID", "jobId", "JobID", "JobId")):
            return [body]
    return []
