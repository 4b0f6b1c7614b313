"""Base class for the vendor resources: one place for base URL, timeouts, rate overrides and
the lifecycle of the shared HTTP client."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import dagster as dg
import httpx
from pydantic import Field, PrivateAttr

from ..http import (
    SYSTEM_CLOCK,
    AuthHook,
    Clock,
    RateLimiter,
    RequestMetrics,
    RetryPolicy,
    SecretRedactor,
    VendorClient,
    default_error_message,
)
from ..http.retry import RETRYABLE_STATUSES
from ..runs.status import guard_for


def env_vars_if_set(environ: Mapping[str, str] | None = None, **fields: str) -> dict[str, Any]:
    """``field=dg.EnvVar(variable)`` for each variable that is set (not blank) in ``environ``
    (default: the process environment). For optional settings: Dagster refuses an ``EnvVar``
    whose variable is unset, and the field's documented default applies instead."""
    env = os.environ if environ is None else environ
    return {field: dg.EnvVar(name) for field, name in fields.items() if env.get(name, "").strip()}


class VendorResource(dg.ConfigurableResource):
    """Shared settings and client lifecycle. Subclasses set the class constants, declare their
    credentials as fields (filled from ``dg.EnvVar``) and implement ``build_auth``."""

    vendor_label: ClassVar[str] = "vendor"
    default_requests_per_second: ClassVar[float] = 2.0
    default_max_in_flight: ClassVar[int] = 2
    # Statuses this vendor documents as transient (iBuildApp adds 500: "try again later").
    retry_statuses: ClassVar[frozenset[int]] = RETRYABLE_STATUSES
    # The environment variables of docs/contracts.md, field -> variable. Required ones are always
    # referenced; optional ones (a base URL with a documented default, one of two ways to
    # authenticate) only when set, since Dagster refuses an EnvVar whose variable is unset.
    env_required: ClassVar[Mapping[str, str]] = {}
    env_optional: ClassVar[Mapping[str, str]] = {}

    base_url: str = Field(description="API root URL; https only (plain http only for loopback).")
    timeout_seconds: float = Field(default=30.0, description="Per-request timeout (connect/read).")
    requests_per_second: float | None = Field(default=None, description="Override the documented/default request rate.")
    max_in_flight: int | None = Field(default=None, description="Override the parallel-call cap.")
    max_attempts: int = Field(default=6, description="Attempts per request before giving up.")
    backoff_cap_seconds: float = Field(default=30.0, description="Longest backoff between attempts.")
    ca_bundle: str | None = Field(
        default=None, description="Path to a CA bundle for TLS verification (never disables it)."
    )

    @classmethod
    def env_settings(cls, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Field values as ``dg.EnvVar``s: read when a run starts, never shown in the UI."""
        values: dict[str, Any] = {field: dg.EnvVar(name) for field, name in cls.env_required.items()}
        return {**values, **env_vars_if_set(environ, **cls.env_optional)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any):
        """The resource as deployed (``env_settings``)."""
        return cls(**{**cls.env_settings(environ), **overrides})

    @classmethod
    def from_values(cls, values: Mapping[str, str], **overrides: Any):
        """The resource from plain values keyed by variable name, e.g. a sandbox's env."""
        names = {**cls.env_required, **cls.env_optional}
        return cls(**{**{f: values[n] for f, n in names.items() if n in values}, **overrides})

    _client: VendorClient | None = PrivateAttr(default=None)
    _metrics: RequestMetrics = PrivateAttr(default_factory=RequestMetrics)

    # -- what subclasses provide --------------------------------------------------------
    def secret_values(self) -> list[str | None]:
        """Credentials to scrub from every message this resource produces."""
        return []

    def build_auth(self, client: VendorClient) -> AuthHook | None:
        return None

    def error_message(self, response: httpx.Response) -> str | None:
        return default_error_message(response)

    def allowed_token_hosts(self) -> tuple[str, ...]:
        return ()

    def close_session(self, client: VendorClient) -> None:
        """Called before the client closes (e.g. Ajera's ``EndAPISession``)."""

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def metrics(self) -> RequestMetrics:
        return self._metrics

    @property
    def effective_rate(self) -> float:
        return self.requests_per_second or self.default_requests_per_second

    @property
    def effective_in_flight(self) -> int:
        return self.max_in_flight or self.default_max_in_flight

    def open_client(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.BaseTransport | None = None,
        logger: Any = None,
        between_requests: Callable[[], None] | None = None,
    ) -> VendorClient:
        # Each step opens its own client, right after the vendor's previous step (in this run or
        # another) sent its last request: the new limiter keeps the spacing across that handoff.
        limiter = RateLimiter(
            self.effective_rate,
            burst=1,
            max_in_flight=self.effective_in_flight,
            clock=clock,
            as_if_one_just_went=True,
        )
        client = VendorClient(
            self.vendor_label,
            self.base_url,
            limiter=limiter,
            retry=RetryPolicy(
                max_attempts=self.max_attempts,
                backoff_cap_seconds=self.backoff_cap_seconds,
                retry_statuses=self.retry_statuses,
            ),
            timeout=self.timeout_seconds,
            metrics=self._metrics,
            clock=clock,
            redactor=SecretRedactor(self.secret_values()),
            error_message=self.error_message,
            allowed_token_hosts=self.allowed_token_hosts(),
            transport=transport,
            verify=self.ca_bundle or True,
            logger=logger,
            between_requests=between_requests,
        )
        client.auth = self.build_auth(client)
        return client

    @property
    def client(self) -> VendorClient:
        """The open client; opened lazily when the resource is used outside a Dagster run."""
        if self._client is None:
            self._client = self.open_client()
        return self._client

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Inside a run, every request first makes sure the run is still in progress: a step
        # whose run was failed or canceled stops calling the vendor (timesheet_assets.runs).
        self._client = self.open_client(logger=context.log, between_requests=guard_for(context))

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            try:
                self.close_session(self._client)
            finally:
                self._client.close()
                self._client = None
