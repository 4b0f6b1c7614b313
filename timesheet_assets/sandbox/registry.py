"""Which vendor sandboxes exist, and how to start them all on loopback."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from ..settings import VENDOR_NAMES
from .data import SandboxConfig
from .server import SandboxServer


@dataclass
class RunningSandbox:
    vendor: str
    server: SandboxServer
    env: dict[str, str]


def sandbox_module(vendor: str):
    return importlib.import_module(f"timesheet_assets.vendors.{vendor}.sandbox")


@contextmanager
def serve_sandboxes(
    vendors: tuple[str, ...] = VENDOR_NAMES,
    config: SandboxConfig | None = None,
    base_port: int = 0,
) -> Iterator[dict[str, RunningSandbox]]:
    """Start each vendor's sandbox (port ``base_port + i``, or free ports when 0) and yield
    the servers with the environment variables that point the resources at them."""
    config = config or SandboxConfig()
    running: dict[str, RunningSandbox] = {}
    with ExitStack() as stack:
        for offset, vendor in enumerate(vendors):
            module = sandbox_module(vendor)
            app = module.create_app(config)
            port = base_port + offset if base_port else 0
            server = stack.enter_context(SandboxServer(app, port=port))
            running[vendor] = RunningSandbox(vendor, server, module.sandbox_env(server.url))
        yield running
