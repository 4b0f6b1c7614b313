"""Aimsio's part of the code location: its raw assets and the resource they call, configured
from the environment variables of docs/contracts.md."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from ...code_references import with_code_references
from ..base import env_vars_if_set
from .assets import RESOURCE_KEY, raw_job_orders, raw_timecards
from .resource import AimsioResource
from .settings import vanished_timecards


def aimsio_resource(environ: Mapping[str, str] | None = None) -> AimsioResource:
    """Credentials are ``dg.EnvVar``s: read when a run starts, never shown in the UI.
    ``AIMSIO_BASE_URL`` only when set (the live portal otherwise)."""
    return AimsioResource(
        username=dg.EnvVar("AIMSIO_USERNAME"),
        password=dg.EnvVar("AIMSIO_PASSWORD"),
        **env_vars_if_set(environ, base_url="AIMSIO_BASE_URL"),
    )


def definitions() -> dg.Definitions:
    vanished_timecards()  # a misspelt setting fails when the code location loads, naming it
    return dg.Definitions(
        assets=with_code_references([raw_timecards, raw_job_orders]),
        resources={RESOURCE_KEY: aimsio_resource()},
    )
