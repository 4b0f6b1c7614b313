"""Blikk throughput against its documented limit (4 requests/second per access token).

Starts the Blikk sandbox with the limit enforced and runs what one materialization of
``raw/blikk/time_reports`` + ``raw/blikk/projects`` sends, three times:

1. ``full``: a 30-day window of ``records`` time reports, projects with the internal and
   absence project registries (and user names when some reports carry none);
2. ``no_change``: the same again — Blikk has no updated-since filter for time reports, so a
   second run re-reads its window;
3. ``after_1pct_changed``: after ~1 % of the time reports were edited, the window re-read
   (which is how late edits are caught).

Each scenario uses a fresh resource (a new token), as separate runs do. Requests and rate
violations come from the sandbox's own log, not from the client.

    python -m benchmarks.vendor_blikk --records 6000
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import counted_row, incremental_scenarios, rows_cli
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.blikk.assets import lacks_user_name
from timesheet_assets.vendors.blikk.resource import DOCUMENTED_REQUESTS_PER_SECOND, BlikkResource
from timesheet_assets.vendors.blikk.sandbox import blikk_data, create_app, sandbox_env

VENDOR = "blikk"


def _run_once(scenario: str, server: SandboxServer, config: SandboxConfig) -> dict[str, Any]:
    env = sandbox_env(server.url)
    stats = server.sandbox.stats
    stats.reset()
    resource = BlikkResource.from_values(env)
    started = time.perf_counter()
    try:
        reports = resource.fetch_time_reports(config.first_date, config.anchor_date)
        projects = [
            resource.fetch_projects(),
            resource.fetch_internal_projects(),
            resource.fetch_absence_projects(),
        ]
        if any(lacks_user_name(record) for record in reports.records):
            resource.fetch_user_names()
    finally:
        resource.close()
    records = len(reports.records) + sum(len(listing.records) for listing in projects)
    return counted_row(
        VENDOR, scenario, stats, started, records=records, documented_limit_rps=DOCUMENTED_REQUESTS_PER_SECOND
    )


def run_benchmark(records: int) -> list[dict[str, Any]]:
    config = SandboxConfig(time_records=records, days=30)
    app = create_app(config)
    return incremental_scenarios(
        app, lambda name, server: _run_once(name, server, config), lambda: blikk_data(app).edit_fraction(0.01)
    )


if __name__ == "__main__":
    rows_cli(__doc__.splitlines()[0], run_benchmark, 6000, "time reports")
