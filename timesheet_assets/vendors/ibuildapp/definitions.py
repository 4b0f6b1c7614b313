"""iBuildApp's part of the code location: its raw assets and the resource they call,
configured from the environment variables of docs/contracts.md."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from ...code_references import with_code_references
from ..base import env_vars_if_set
from .assets import VENDOR, projects, time_entries
from .resource import IBuildAppResource


def ibuildapp_resource(environ: Mapping[str, str] | None = None) -> IBuildAppResource:
    """Every value is a ``dg.EnvVar``: read when a run starts, never shown in the UI. A token
    or e-mail + password, whichever is set (the resource names what is missing when a run
    starts); ``IBUILDAPP_TIMEZONE`` only when set (UTC otherwise, with a warning)."""
    return IBuildAppResource(
        base_url=dg.EnvVar("IBUILDAPP_BASE_URL"),
        app_code=dg.EnvVar("IBUILDAPP_APP_CODE"),
        **env_vars_if_set(
            environ,
            token="IBUILDAPP_TOKEN",
            email="IBUILDAPP_EMAIL",
            password="IBUILDAPP_PASSWORD",
            timezone="IBUILDAPP_TIMEZONE",
        ),
    )


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=with_code_references([time_entries, projects]),
        resources={VENDOR: ibuildapp_resource()},
    )
