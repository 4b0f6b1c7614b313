"""AIMS360 Aqua client: the Dagster resource that ties token, export jobs and downloads together.

Aqua is asynchronous: ``POST /reports/v1.0/exportdata`` queues a job and answers with its id
and publishlink; the job is polled on ``backgroundjob?$filter=jobId eq '...'`` until it is
Completed, then the publishlink serves the output (JSON, CSV or Excel). A completed job can be
rerun (same id, same publishlink) to refresh the data.

Each concern has its module (decisions where the docs are open are stated there and in
docs/vendors/aims360.md): ``auth`` (token and its cache), ``jobs`` (create, status, rerun,
wait), ``publishlinks`` (who gets the token, the download), ``exports`` and
``spreadsheets`` (reading the body as the requested format), ``views`` (``AIMS360_VIEWS``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from ...http import SYSTEM_CLOCK, Clock, VendorClient, VendorHTTPError
from ..base import VendorResource
from . import jobs, publishlinks
from .auth import CREDENTIAL_VARIABLES, TOKEN_PATH, Aims360Auth, forget_cached_tokens, strip_bearer
from .errors import (
    AccessTokenRejected,
    Aims360ConfigError,
    ExportJobFailed,
    PublishlinkGone,
    PublishlinkHostRefused,
)
from .exports import ExportFile, parse_export
from .jobs import (
    EXPORT_PATH,
    RERUN_PATH,
    RERUN_REFUSED_STATUSES,
    STATUS_GET_PATH,
    STATUS_POST_PATH,
    forget_status_forms,
)
from .models import BackgroundJob, ExportJob
from .publishlinks import GONE_STATUSES, REGIONAL_API_HOSTS
from .views import DEFAULT_VIEWS, ViewSpec, parse_views, snake_case

DEFAULT_BASE_URL = "https://api.aims360.rest"

OutputFormat = Literal["JSON", "CSV", "Excel"]
Scope = Literal["Private", "PeopleInOrganization", "Public"]


class Aims360Resource(VendorResource):
    """AIMS360 Aqua: export views through background jobs and publishlinks."""

    vendor_label: ClassVar[str] = "AIMS360"
    # No documented limit: stay gentle. The flow needs few calls (a status poll per tick).
    default_requests_per_second: ClassVar[float] = 2.0
    default_max_in_flight: ClassVar[int] = 2
    # A token-only or a credentials-only setup both load; a missing one fails with a message
    # naming the variables when the resource is first used.
    env_optional: ClassVar[Mapping[str, str]] = {
        "base_url": "AIMS360_BASE_URL",
        "client_id": "AIMS360_CLIENT_ID",
        "client_secret": "AIMS360_CLIENT_SECRET",
        "username": "AIMS360_USERNAME",
        "password": "AIMS360_PASSWORD",
        "access_token": "AIMS360_ACCESS_TOKEN",
    }

    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="AIMS360 API root (AIMS360_BASE_URL), e.g. https://apiwest.aims360.rest.",
    )
    client_id: str | None = Field(default=None, description="AIMS360_CLIENT_ID")
    client_secret: str | None = Field(default=None, description="AIMS360_CLIENT_SECRET")
    username: str | None = Field(default=None, description="AIMS360_USERNAME (API operator)")
    password: str | None = Field(default=None, description="AIMS360_PASSWORD")
    access_token: str | None = Field(default=None, description="AIMS360_ACCESS_TOKEN: a token generated in the ERP.")
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
        "publishlinks (AIMS360_PUBLISHLINK_HOSTS). AIMS360's regional API hosts trust each "
        "other without being listed.",
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
            return "AIMS360 credentials are not configured: set AIMS360_ACCESS_TOKEN, or all of " + ", ".join(
                CREDENTIAL_VARIABLES
            )
        return "AIMS360 client credentials are incomplete: " + ", ".join(missing) + " not set"

    def secret_values(self) -> list[str | None]:
        return [self.client_id, self.client_secret, self.password, strip_bearer(self.access_token)]

    def build_auth(self, client: VendorClient) -> Aims360Auth:
        if not strip_bearer(self.access_token) and not self.has_client_credentials:
            raise Aims360ConfigError(self.missing_credentials_message())
        return Aims360Auth(self, client)

    def allowed_token_hosts(self) -> tuple[str, ...]:
        return publishlinks.trusted_publishlink_hosts(self.base_url, self.publishlink_hosts)

    # -- endpoints -----------------------------------------------------------------------
    def create_export_job(
        self,
        view: ViewSpec,
        *,
        output_format: str | None = None,
        scope: str | None = None,
    ) -> ExportJob:
        return jobs.create_export_job(
            self.client,
            view.source,
            view.view_name,
            output_format or self.output_format,
            scope or self.publishlink_scope,
        )

    def job_status(self, job_id: str) -> BackgroundJob | None:
        """The job's current row; ``None`` when the API no longer knows the job (purged)."""
        return jobs.job_status(self.client, self.status_method, job_id)

    def rerun_job(self, job_id: str) -> ExportJob:
        return jobs.rerun_job(self.client, job_id)

    def may_send_token_to(self, link: str) -> bool:
        return self.client.may_send_credentials_to(self.client.url_for(link))

    def download_publishlink(
        self, link: str, scope: str | None, *, job_id: str = "", output_format: str | None = None
    ) -> ExportFile:
        """Fetch a job's output and read it as the format the job was created with
        (``output_format``; the resource's setting when not given)."""
        return publishlinks.download(self.client, link, scope, output_format or self.output_format, job_id=job_id)

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
        """Poll until the job completes; fail on Failed, on a vanished job and on timeout."""
        return jobs.wait_for_job(
            self.job_status,
            self.vendor_label,
            job_id,
            timeout_seconds=timeout_seconds,
            first_poll_seconds=first_poll_seconds,
            max_poll_seconds=max_poll_seconds,
            stale_completed_date=stale_completed_date,
            on_progress=on_progress,
            clock=clock,
        )


__all__ = [
    "AccessTokenRejected",
    "Aims360Auth",
    "Aims360ConfigError",
    "Aims360Resource",
    "CREDENTIAL_VARIABLES",
    "DEFAULT_BASE_URL",
    "DEFAULT_VIEWS",
    "EXPORT_PATH",
    "ExportFile",
    "ExportJob",
    "ExportJobFailed",
    "GONE_STATUSES",
    "PublishlinkGone",
    "PublishlinkHostRefused",
    "REGIONAL_API_HOSTS",
    "RERUN_PATH",
    "RERUN_REFUSED_STATUSES",
    "STATUS_GET_PATH",
    "STATUS_POST_PATH",
    "TOKEN_PATH",
    "ViewSpec",
    "forget_cached_tokens",
    "forget_status_forms",
    "parse_export",
    "parse_views",
    "snake_case",
]
