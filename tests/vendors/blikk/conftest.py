"""Blikk sandbox on 127.0.0.1 and resources pointed at it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.blikk.resource import BlikkResource
from timesheet_assets.vendors.blikk.sandbox import BlikkData, blikk_data, create_app, sandbox_env

FIXTURES = Path(__file__).parent / "fixtures"
# A fixed anchor inside the default partition range keeps partition keys stable across days.
ANCHOR = date(2025, 3, 31)


@pytest.fixture(scope="session")
def doc_examples() -> dict[str, Any]:
    """Every example response body of the Blikk API document, verbatim."""
    return json.loads((FIXTURES / "doc_examples.json").read_text(encoding="utf-8"))


@dataclass
class RunningBlikk:
    server: SandboxServer
    config: SandboxConfig
    data: BlikkData

    @property
    def stats(self):
        return self.server.sandbox.stats

    @property
    def knobs(self):
        return self.server.sandbox.knobs

    @property
    def env(self) -> dict[str, str]:
        return sandbox_env(self.server.url)

    def resource(self, **overrides: Any) -> BlikkResource:
        """The resource as deployed, except that the change scan is off unless asked for:
        these tests count and break the window read's requests; the scan's own requests,
        faults and watermark are tested in ``test_change_scan.py``."""
        return BlikkResource.from_values(self.env, **{"change_scan": False, **overrides})

    def statuses(self, path_suffix: str | None = None) -> list[int | None]:
        return [call.status for call in self.stats.calls(path_suffix)]


@pytest.fixture
def blikk(serve_app) -> Iterator[Callable[..., RunningBlikk]]:
    """Start a Blikk sandbox: ``blikk(time_records=..., days=...)`` or ``blikk(data=...)``."""

    def start(data: BlikkData | None = None, **config: Any) -> RunningBlikk:
        settings = {"anchor_date": ANCHOR, "days": 30, "time_records": 300, **config}
        cfg = SandboxConfig(**settings)
        app = create_app(cfg, data=data)
        return RunningBlikk(server=serve_app(app), config=cfg, data=blikk_data(app))

    yield start
