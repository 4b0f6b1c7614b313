"""Blikk's part of the code location: its raw assets, the reconciliation check and the
resource they call, configured from the environment variables of docs/contracts.md."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from ...code_references import with_code_references
from ..base import env_vars_if_set
from .assets import blikk_projects, blikk_time_reports
from .keys import RESOURCE_KEY
from .reconcile import reported_hours_match_blikk
from .resource import BlikkResource


def blikk_resource(environ: Mapping[str, str] | None = None) -> BlikkResource:
    """Credentials are ``dg.EnvVar``s: read when a run starts, never shown in the UI.
    ``BLIKK_BASE_URL`` only when set (the production host otherwise)."""
    return BlikkResource(
        app_id=dg.EnvVar("BLIKK_APP_ID"),
        app_secret=dg.EnvVar("BLIKK_APP_SECRET"),
        **env_vars_if_set(environ, base_url="BLIKK_BASE_URL"),
    )


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=with_code_references([blikk_time_reports, blikk_projects]),
        asset_checks=[reported_hours_match_blikk],
        resources={RESOURCE_KEY: blikk_resource()},
    )
