"""Fixtures for the iBuildApp tests: the sandbox on loopback and a resource pointed at it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.ibuildapp import sandbox as ibuildapp_sandbox
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource

ANCHOR = date(2025, 3, 31)


def small_config(**overrides: Any) -> SandboxConfig:
    values: dict[str, Any] = dict(seed=5, time_records=120, projects=5, employees=6, days=10, anchor_date=ANCHOR)
    values.update(overrides)
    return SandboxConfig(**values)


def resource_for(server: SandboxServer, **overrides: Any) -> IBuildAppResource:
    # Fast retries and a quicker pace: the tests count calls and attempts, not seconds
    # (the default 5/s is exercised by the env-built resource and the benchmark).
    values: dict[str, Any] = {"backoff_cap_seconds": 0.2, "requests_per_second": 25.0, **overrides}
    return IBuildAppResource.from_values(ibuildapp_sandbox.sandbox_env(server.url), **values)


@pytest.fixture
def start_sandbox(serve_app) -> Callable[..., SandboxServer]:
    """Start the iBuildApp sandbox for a config (default: small) on 127.0.0.1."""

    def start(config: SandboxConfig | None = None, **app_options: Any) -> SandboxServer:
        return serve_app(ibuildapp_sandbox.create_app(config or small_config(), **app_options))

    return start
