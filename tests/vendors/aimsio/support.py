"""Helpers for the Aimsio tests: a sandbox on loopback, a resource pointed at it, request
counts from the sandbox's log, and raw-asset runs through Dagster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import dagster as dg

from tests.support.dagster_helpers import materialize, read_table
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.aimsio import sandbox as aimsio_sandbox
from timesheet_assets.vendors.aimsio.assets import build_assets
from timesheet_assets.vendors.aimsio.resource import AimsioResource
from timesheet_assets.vendors.aimsio.sandbox import AimsioStore

API = "/rest/api/standard/v1"
TIMECARDS = "CurrentTimeCard"
JOB_ORDERS = "JobOrder"
ANCHOR = date(2026, 3, 31)
TIMECARDS_KEY = ["raw", "aimsio", "timecards"]
JOB_ORDERS_KEY = ["raw", "aimsio", "job_orders"]

# Built once without step retries: failure tests must fail now, not retry 30 s later.
TIMECARDS_ASSET, JOB_ORDERS_ASSET = build_assets(retry_policy=None)


def config(records: int, **overrides: Any) -> SandboxConfig:
    values: dict[str, Any] = {"time_records": records, "anchor_date": ANCHOR, "projects": 6}
    values.update(overrides)
    return SandboxConfig(**values)


def start(serve_app: Callable[[Any], SandboxServer], cfg: SandboxConfig) -> tuple[SandboxServer, AimsioStore]:
    server = serve_app(aimsio_sandbox.create_app(cfg))
    return server, server.app.state.store


def resource_for(server: SandboxServer, **overrides: Any) -> AimsioResource:
    return AimsioResource.from_values(aimsio_sandbox.sandbox_env(server.url), **overrides)


def list_calls(server: SandboxServer, endpoint: str = TIMECARDS) -> int:
    return len([r for r in server.sandbox.stats.calls() if r.path == f"{API}/{endpoint}"])


def detail_calls(server: SandboxServer, endpoint: str = TIMECARDS) -> list[str]:
    prefix = f"{API}/{endpoint}/"
    return [r.path[len(prefix) :] for r in server.sandbox.stats.calls() if r.path.startswith(prefix)]


def full_refresh_config(*op_names: str) -> dict[str, Any]:
    return {"ops": {name: {"config": {"full_refresh": True}} for name in op_names}}


def run_raw(
    server: SandboxServer,
    warehouse: str,
    instance: dg.DagsterInstance,
    *,
    assets: list[Any] | None = None,
    resource: AimsioResource | None = None,
    resources: dict[str, Any] | None = None,
    run_config: Any = None,
    raise_on_error: bool = True,
    window: tuple[date, date] | None = None,
) -> dg.ExecuteInProcessResult:
    """``window``: the run's partition range (the work dates its conformed step would rebuild)."""
    return materialize(
        assets or [TIMECARDS_ASSET],
        {"aimsio": resource or resource_for(server), **(resources or {})},
        warehouse,
        first=window[0] if window else None,
        last=window[1] if window else None,
        instance=instance,
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def stored_versions(warehouse: str, table: str = "aimsio.timecards") -> dict[str, int]:
    """What the next run compares the listing with: record key → stored ``updatedAt``."""
    frame = read_table(warehouse, table)
    return dict(zip(frame["record_key"], frame["source_updated_at_ms"].astype("int64")))


def unthrottled(server: SandboxServer, **overrides: Any) -> AimsioResource:
    """For tests about something other than the documented limit: the sandbox stops enforcing
    it and the client stops pacing, so a few dozen calls do not cost seconds each test."""
    server.sandbox.rate_rule = None
    return resource_for(server, requests_per_second=500.0, **overrides)
