"""Shared fixtures: sandboxes on loopback, a temp warehouse, a temp Dagster instance."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from timesheet_assets.sandbox.server import SandboxServer

# Definitions must not pick up a developer's vendor selection or warehouse.
os.environ.pop("TIMESHEET_VENDORS", None)


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], SandboxServer]]:
    """Start an ASGI app on 127.0.0.1 (free port); stopped after the test."""
    servers: list[SandboxServer] = []

    def start(app: Any) -> SandboxServer:
        server = SandboxServer(app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse.duckdb")


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst
