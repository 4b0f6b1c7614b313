"""AIMS360 Aqua: requests and time for the export-job flow (no documented rate limit).

Starts the AIMS360 sandbox (jobs advance one step per status poll: Queued 0% → 50% →
Completed) and runs, with the resource's conservative default rate, what a materialization
without the sensor sends:

1. ``full``: create an export job for ``Orders/Open Orders`` (``records`` rows), poll it to
   completion, download the publishlink (JSON);
2. ``no_change``: rerun the same job (``/rerun``: same job id and publishlink), poll, download;
3. ``after_1pct_changed``: after ~1 % of the view's rows changed, the same rerun flow. Aqua
   exports a whole view each time, so the cost does not depend on how much changed.

Each scenario uses a fresh resource and token, as separate runs do. Requests and rate
violations come from the sandbox's own log.

    python -m benchmarks.vendor_aims360 --records 6000
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import counted_row, incremental_scenarios, rows_cli
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.aims360.resource import Aims360Resource, ViewSpec, forget_cached_tokens
from timesheet_assets.vendors.aims360.sandbox import create_app, sandbox_env, state_of

VENDOR = "aims360"
VIEW = ViewSpec("Orders", "Open Orders")


def _run_once(scenario: str, server: SandboxServer, rerun_job_id: str | None) -> tuple[dict[str, Any], str]:
    env = sandbox_env(server.url)
    stats = server.sandbox.stats
    stats.reset()
    forget_cached_tokens()
    resource = Aims360Resource.from_values(env)
    started = time.perf_counter()
    try:
        job = resource.start_export(VIEW, rerun_job_id=rerun_job_id)
        done = resource.wait_for_job(job.job_id, timeout_seconds=120, first_poll_seconds=0.1)
        export = resource.download_publishlink(
            done.publish_link or job.publish_link or "", done.publish_link_access_scope, job_id=done.job_id
        )
    finally:
        resource.close()
    return counted_row(VENDOR, scenario, stats, started, records=len(export.records)), done.job_id


def run_benchmark(records: int) -> list[dict[str, Any]]:
    config = SandboxConfig(time_records=records, days=30)
    app = create_app(config)
    first_job: dict[str, str] = {}

    def run(scenario: str, server: SandboxServer) -> dict[str, Any]:
        # The first run creates the export job; the later ones rerun it, as the sensor does.
        row, job_id = _run_once(scenario, server, first_job.get("id"))
        first_job.setdefault("id", job_id)
        return row

    return incremental_scenarios(app, run, lambda: state_of(app).change_view(VIEW.label))


if __name__ == "__main__":
    rows_cli(__doc__.splitlines()[0], run_benchmark, 6000, "rows in the exported view")
