"""Shared fixtures: sandboxes on loopback, a temp warehouse, a temp Dagster instance."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from timesheet_assets.sandbox.server import SandboxServer

# Definitions must not pick up a developer's vendor selection or warehouse.
os.environ.pop("TIMESHEET_VENDORS", None)


@pytest.fixture(autouse=True)
def default_sigterm() -> None:
    """Give every test a default SIGTERM. A pytest-xdist worker ignores SIGINT, and each
    in-process Dagster run, when it ends, points SIGTERM at SIGINT's handler
    (``dagster._utils.interrupts``): SIGTERM becomes ignored in the worker and in every process
    it starts afterwards, so a command a test stops with SIGTERM would never stop."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


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
def instance() -> Iterator[dg.DagsterInstance]:
    """An in-memory Dagster instance: runs, event logs, materializations, cursors and checks
    behave as on disk, at a fraction of the cost (``instance_for_test`` builds SQLite storages
    on disk and commits every event: about 0.35 s CPU to build and 0.4 s per range run).
    Tests that need storage another process can read use ``sqlite_instance``."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def sqlite_instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on SQLite files under the test's temp dir (``DAGSTER_HOME`` set)."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst
