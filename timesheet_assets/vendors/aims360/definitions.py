"""AIMS360's part of the code location: one raw asset per configured view, the export sensor
that drives them and the resource they call, configured from the environment variables of
docs/contracts.md and docs/vendors/aims360.md."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime

import dagster as dg

from ...code_references import with_code_references
from ..base import env_vars_if_set
from .resource import Aims360Resource
from .sensor import build_export_sensor
from .settings import Aims360Settings, resource_options
from .view_asset import GROUP, build_view_asset


def aims360_resource(environ: Mapping[str, str] | None = None) -> Aims360Resource:
    """Credentials are ``dg.EnvVar``s: read when a run starts, never shown in the UI. Only the
    variables that are set are referenced, so a token-only or a credentials-only setup loads,
    and a missing one fails with a message naming the variables when the resource is first
    used. The export options are plain values checked here (``resource_options``)."""
    env = os.environ if environ is None else environ
    return Aims360Resource(
        **env_vars_if_set(
            env,
            base_url="AIMS360_BASE_URL",
            client_id="AIMS360_CLIENT_ID",
            client_secret="AIMS360_CLIENT_SECRET",
            username="AIMS360_USERNAME",
            password="AIMS360_PASSWORD",
            access_token="AIMS360_ACCESS_TOKEN",
        ),
        **resource_options(env),
    )


def definitions(
    environ: Mapping[str, str] | None = None,
    now: Callable[[], datetime] | None = None,
) -> dg.Definitions:
    settings = Aims360Settings.from_env(environ)
    return dg.Definitions(
        assets=with_code_references([build_view_asset(view, settings) for view in settings.views]),
        sensors=[build_export_sensor(settings, now)],
        resources={GROUP: aims360_resource(environ)},
    )
