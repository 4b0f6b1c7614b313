"""Fixtures for the Ajera tests: the sandbox on loopback and resources pointed at it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.ajera import sandbox as ajera_sandbox
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.ajera.week import READINGS

ANCHOR = date(2025, 3, 29)  # a Saturday


def small_config(**overrides: Any) -> SandboxConfig:
    values = dict(seed=7, time_records=40, projects=6, employees=5, days=21, anchor_date=ANCHOR)
    values.update(overrides)
    return SandboxConfig(**values)


def resource_for(server: SandboxServer, **overrides: Any) -> AjeraResource:
    """A resource pointed at ``server``, reading weeks the way that sandbox serves them (unless
    ``timesheet_date`` says otherwise). No status scan unless a test asks for one: the scan is
    tested on its own, and the call counts of the other tests stay those of their window."""
    reading = ajera_sandbox.ajera_state(server).dataset.reading
    # The sandbox has no documented limit to protect; tests run faster than the default.
    values: dict[str, Any] = {
        "requests_per_second": 50.0,
        "backoff_cap_seconds": 0.2,
        "status_scan_days": 0,
        **overrides,
    }
    return AjeraResource.from_values(ajera_sandbox.sandbox_env(server.url, reading), **values)


@pytest.fixture
def ajera_server(serve_app) -> Callable[..., SandboxServer]:
    """Start an Ajera sandbox: ``ajera_server(config=None, **create_app_kwargs)``."""

    def start(config: SandboxConfig | None = None, **kwargs: Any) -> SandboxServer:
        return serve_app(ajera_sandbox.create_app(config or small_config(), **kwargs))

    return start


@pytest.fixture(params=READINGS)
def reading(request) -> str:
    """Each week reading (``AJERA_TIMESHEET_DATE``), served by the sandbox and read by the client."""
    return request.param
