"""Ajera's part of the code location: its raw assets and the resource they call, configured
from the environment variables of docs/contracts.md."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from ...code_references import with_code_references
from ..base import env_vars_if_set
from .assets import VENDOR, ajera_projects, ajera_timesheets
from .resource import AjeraResource


def ajera_resource(environ: Mapping[str, str] | None = None) -> AjeraResource:
    """Every value is a ``dg.EnvVar``: read when a run starts, never shown in the UI.
    ``AJERA_TIMESHEET_DATE`` only when set (``week_ending`` otherwise)."""
    return AjeraResource(
        base_url=dg.EnvVar("AJERA_BASE_URL"),
        api_id=dg.EnvVar("AJERA_API_ID"),
        username=dg.EnvVar("AJERA_USERNAME"),
        password=dg.EnvVar("AJERA_PASSWORD"),
        **env_vars_if_set(environ, timesheet_date="AJERA_TIMESHEET_DATE"),
    )


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=with_code_references([ajera_timesheets, ajera_projects]),
        resources={VENDOR: ajera_resource()},
    )
