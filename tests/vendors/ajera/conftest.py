"""Fixtures for the Ajera tests: the sandbox on loopback and resources pointed at it."""

from __future__ import annotations

from datetime import date
from typing import Any, Callable

import pytest

from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.ajera import sandbox as ajera_sandbox
from timesheet_assets.vendors.ajera.resource import AjeraResource

ANCHOR = date(2025, 3, 29)  # a Saturday: the last week in the data is complete


def small_config(**overrides: Any) -> SandboxConfig:
    values = dict(seed=7, time_records=40, projects=6, employees=5, days=21, anchor_date=ANCHOR)
    values.update(overrides)
    return SandboxConfig(**values)


def resource_for(server: SandboxServer, **overrides: Any) -> AjeraResource:
    # The sandbox has no documented limit to protect; tests run faster than the default.
    values: dict[str, Any] = {"requests_per_second": 50.0, "backoff_cap_seconds": 0.2, **overrides}
    return AjeraResource.from_values(ajera_sandbox.sandbox_env(server.url), **values)


@pytest.fixture
def ajera_server(serve_app) -> Callable[..., SandboxServer]:
    """Start an Ajera sandbox: ``ajera_server(config=None, **create_app_kwargs)``."""

    def start(config: SandboxConfig | None = None, **kwargs: Any) -> SandboxServer:
        return serve_app(ajera_sandbox.create_app(config or small_config(), **kwargs))

    return start
