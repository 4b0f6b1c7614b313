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
import sys
import time
from datetime import date
from typing import Any

from benchmarks.common import scenario_row
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.ibuildapp.resource import IBuildAppResource
from timesheet_assets.vendors.ibuildapp.sandbox import approve_pending, create_app, sandbox_env, state_of

VENDOR = "ibuildapp"
SANDBOX_GUARD_RPS = 10
ANCHOR = date(2025, 3, 31)


def _resource(env: dict[str, str]) -> IBuildAppResource:
    return IBuildAppResource(
        base_url=env["IBUILDAPP_BASE_URL"],
        app_code=env["IBUILDAPP_APP_CODE"],
        email=env["IBUILDAPP_EMAIL"],
        password=env["IBUILDAPP_PASSWORD"],
    )


def _scenario(name: str, server: SandboxServer, config: SandboxConfig, env: dict[str, str]) -> dict[str, Any]:
    stats = server.sandbox.stats
    requests_before, violations_before = stats.requests, stats.violations
    resource = _resource(env)
    started = time.perf_counter()
    try:
        entries = resource.search_time_entries(config.first_date, config.anchor_date)
        projects = resource.search_projects()
    finally:
        resource.close()
    wall = time.perf_counter() - started
    requests = stats.requests - requests_before
    records = len(entries.records) + len(projects.records)
    return scenario_row(
        VENDOR, name, requests=requests, records=records, wall_s=wall,
        rate_violations=stats.violations - violations_before,
    )


def run_benchmark(records: int) -> list[dict[str, Any]]:
    config = SandboxConfig(time_records=records, anchor_date=ANCHOR, days=30)
    app = create_app(config, requests_per_second=SANDBOX_GUARD_RPS)
    with SandboxServer(app) as server:
        env = sandbox_env(server.url)
        results = [
            _scenario("full", server, config, env),
            _scenario("no_change", server, config, env),
        ]
        approve_pending(state_of(app), 0.01)
        results.append(_scenario("changed_1pct_lookback_reread", server, config, env))
    return results


def expected_requests(records: int, projects: int = SandboxConfig().projects, page_size: int = 500) -> int:
    """One login plus one call per page of each search."""
    return 1 + max(1, math.ceil(records / page_size)) + max(1, math.ceil(projects / page_size))


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    for row in run_benchmark(count):
        print(row)
