"""AIMS360 fixtures: the sandbox on loopback, a resource pointed at it, a controllable sensor
clock and a helper that evaluates one sensor tick against a real Dagster instance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.vendors.aims360 import sandbox as aims_sandbox
from timesheet_assets.vendors.aims360.assets import (
    Aims360Settings,
    build_export_sensor,
    build_view_asset,
)
from timesheet_assets.vendors.aims360.resource import Aims360Resource, ViewSpec, forget_status_forms, parse_views

ROWS = 24
CONFIG = SandboxConfig(seed=7, time_records=ROWS, anchor_date=date(2024, 5, 31), days=30)
OP = "raw__aims360__orders_open_orders"
OPEN_ORDERS = ViewSpec("Orders", "Open Orders")  # the view whose op is OP


class FakeNow:
    """The sensor's wall clock; moves only when a test says so."""

    def __init__(self) -> None:
        # Starts at the real time: job timestamps from the sandbox (purge dates) line up.
        self.at = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _fresh_status_forms():
    # The status form learned per API host must not leak to a later sandbox on the same port.
    forget_status_forms()
    yield
    forget_status_forms()


@pytest.fixture
def aims(serve_app):
    """A running AIMS360 sandbox (``.url``, ``.sandbox`` stats, ``.state`` jobs and views)."""
    server = serve_app(aims_sandbox.create_app(CONFIG))
    server.state = aims_sandbox.state_of(server)
    return server


def make_resource(url: str, **overrides: Any) -> Aims360Resource:
    settings = dict(
        base_url=url,
        client_id=aims_sandbox.CLIENT_ID,
        client_secret=aims_sandbox.CLIENT_SECRET,
        username=aims_sandbox.USERNAME,
        password=aims_sandbox.PASSWORD,
        # The sandbox has no documented limit; keep tests from waiting on the gentle default.
        requests_per_second=100.0,
        max_in_flight=4,
        max_attempts=2,
        backoff_cap_seconds=0.05,
    )
    settings.update(overrides)
    return Aims360Resource(**settings)


@pytest.fixture
def resource(aims) -> Aims360Resource:
    return make_resource(aims.url)


@pytest.fixture
def now() -> FakeNow:
    return FakeNow()


def make_settings(views: str = "Orders/Open Orders", **overrides: Any) -> Aims360Settings:
    values = dict(
        views=parse_views(views),
        sensor_interval_seconds=30,
        stall_timeout_seconds=600.0,
        refresh_interval_seconds=3600.0,
        max_attempts=3,
        failure_cooldown_seconds=1800.0,
        poll_timeout_seconds=20.0,
    )
    values.update(overrides)
    return Aims360Settings(**values)


@dataclass
class SensorHarness:
    """Evaluates ticks the way the daemon does: cursor in, cursor out, real instance."""

    sensor: dg.SensorDefinition
    instance: dg.DagsterInstance
    resource: Aims360Resource
    settings: Aims360Settings
    cursor: str | None = None
    history: list[Any] = field(default_factory=list)

    def tick(self) -> Any:
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"aims360": self.resource}
        ) as context:
            data = self.sensor.evaluate_tick(context)
        if data.cursor is not None:
            self.cursor = data.cursor
        self.history.append(data)
        return data

    def assets(self) -> list[dg.AssetsDefinition]:
        return [build_view_asset(view, self.settings) for view in self.settings.views]


@pytest.fixture
def harness(instance, resource, now) -> Callable[..., SensorHarness]:
    def build(settings: Aims360Settings | None = None, res: Aims360Resource | None = None) -> SensorHarness:
        settings = settings or make_settings()
        return SensorHarness(build_export_sensor(settings, now=now), instance, res or resource, settings)

    return build


def status_calls(server) -> int:
    """Job status calls (either documented form); reruns end in /rerun and are not counted."""
    return server.sandbox.stats.count("/backgroundjob")


def calls(server, fragment: str, method: str | None = None) -> int:
    """Requests the sandbox received whose path contains ``fragment``."""
    return sum(1 for r in server.sandbox.stats.calls(method=method) if fragment in r.path)
