"""iBuildApp fetch benchmark against the local sandbox.

Scenarios: a full load of the sandbox's 30-day window plus projects; the same load again
(nothing changed: iBuildApp has no updated-since filter, so a re-read costs the same); and the
lookback re-read after ~1 % of the entries were approved. The vendor documents no rate limit:
``documented_limit_rps`` and ``utilisation_pct`` are ``None``; the sandbox still rejects more
than ``SANDBOX_GUARD_RPS`` requests per second so ``rate_violations`` shows whether the
client's own default (5/s) holds.

    .venv/bin/python benchmarks/vendor_ibuildapp.py 5000
"""

from __future__ import annotations

import math
import time
from datetime import date
from typing import Any

from benchmarks.common import counted_row, incremental_scenarios, rows_cli
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource
from timesheet_assets.vendors.ibuildapp.sandbox import approve_pending, create_app, sandbox_env, state_of

VENDOR = "ibuildapp"
SANDBOX_GUARD_RPS = 10
ANCHOR = date(2025, 3, 31)


def _scenario(name: str, server: SandboxServer, config: SandboxConfig, env: dict[str, str]) -> dict[str, Any]:
    stats = server.sandbox.stats
    stats.reset()
    resource = IBuildAppResource.from_values(env)
    started = time.perf_counter()
    try:
        entries = resource.search_time_entries(config.first_date, config.anchor_date)
        projects = resource.search_projects()
    finally:
        resource.close()
    return counted_row(VENDOR, name, stats, started, records=len(entries.records) + len(projects.records))


def run_benchmark(records: int) -> list[dict[str, Any]]:
    config = SandboxConfig(time_records=records, anchor_date=ANCHOR, days=30)
    app = create_app(config, requests_per_second=SANDBOX_GUARD_RPS)
    return incremental_scenarios(
        app,
        lambda name, server: _scenario(name, server, config, sandbox_env(server.url)),
        lambda: approve_pending(state_of(app), 0.01),
        changed_name="changed_1pct_lookback_reread",
    )


def expected_requests(records: int, projects: int = SandboxConfig().projects, page_size: int = 500) -> int:
    """One login plus one call per page of each search."""
    return 1 + max(1, math.ceil(records / page_size)) + max(1, math.ceil(projects / page_size))


if __name__ == "__main__":
    rows_cli(__doc__.splitlines()[0], run_benchmark, 5000, "time entries")
