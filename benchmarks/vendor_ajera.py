"""Ajera throughput: what one materialization of ``raw/ajera/timesheets`` (the whole data
window) plus ``raw/ajera/projects`` sends, at the resource's default pace.

Ajera documents no rate limit, so the sandbox enforces none and ``documented_limit_rps`` and
``utilisation_pct`` are ``None``; the client's conservative default (5 requests/s, 2 in flight)
sets the pace. ``records`` is the number of timesheets (weeks) in the sandbox.

1. ``full``: every timesheet of the sandbox's data window, then all projects;
2. ``no_change``: the same again — timesheets carry no modified date, so a run re-reads its
   window;
3. ``after_1pct_changed``: after ~1 % of the timesheets were edited, the window re-read (the
   same calls: that is how edits are caught).

Each scenario uses a fresh resource (a new session), as separate runs do. Requests come from
the sandbox's own log.

    python -m benchmarks.vendor_ajera --records 3000
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import counted_row, incremental_scenarios, rows_cli
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.ajera.assets import build_timesheet_frame, fetch_project_records
from timesheet_assets.vendors.ajera.resource import AjeraResource
from timesheet_assets.vendors.ajera.sandbox import ajera_state, create_app, sandbox_env, touch_timesheets

VENDOR = "ajera"


def _run_once(scenario: str, server: SandboxServer, config: SandboxConfig) -> dict[str, Any]:
    env = sandbox_env(server.url)
    stats = server.sandbox.stats
    stats.reset()
    resource = AjeraResource.from_values(env)
    started = time.perf_counter()
    try:
        fetch = resource.fetch_timesheets(config.first_date, config.anchor_date)
        build_timesheet_frame(fetch)
        projects, _ = fetch_project_records(resource)
    finally:
        resource.close()
    return counted_row(VENDOR, scenario, stats, started, records=len(fetch.listed) + len(projects))


def run_benchmark(records: int) -> list[dict[str, Any]]:
    config = SandboxConfig(time_records=records, days=30)
    app = create_app(config)
    return incremental_scenarios(
        app,
        lambda name, server: _run_once(name, server, config),
        lambda: touch_timesheets(ajera_state(app), fraction=0.01),
    )


if __name__ == "__main__":
    rows_cli(__doc__.splitlines()[0], run_benchmark, 3000, "timesheets")
