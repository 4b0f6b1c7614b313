"""Named jobs: one refresh per vendor and one for everything.

A vendor's refresh carries the conformed tables with it: the run that re-reads a vendor's
work dates rebuilds ``conformed/timesheets`` for the same dates (and ``conformed/projects``),
so what the vendor changed reaches the conformed model in the same run, with no sensor to
remember. The schedules and the demo launch these jobs, so every run in the UI can be
re-executed.

Steps of one run execute in one process: a vendor's steps share its pool (one at a time
anyway), and a step that runs in the run's own process cannot outlive it.

Every refresh run carries ``dagster/max_runtime`` (``REFRESH_MAX_RUNTIME_SECONDS``): run
monitoring terminates and fails a refresh still running after it, so no run holds its
vendor's pool slot forever, even with a worker that is alive but stuck.
"""

from __future__ import annotations

import dagster as dg

from .conformed.assets import PROJECTS_KEY, TIMESHEETS_KEY
from .vendors.registry import VendorPlugin

REFRESH_ALL = "refresh_all"
MAX_RUNTIME_TAG = "dagster/max_runtime"
# A vendor's refresh reads at its documented rate in seconds to minutes (benchmarks/RESULTS.md;
# at most about two minutes a run in the deployment rehearsal, docs/operations.md): four hours
# is stuck, not slow. A longer backfill sets its own tag.
REFRESH_MAX_RUNTIME_SECONDS = 4 * 3600


def refresh_tags(**tags: str) -> dict[str, str]:
    return {MAX_RUNTIME_TAG: str(REFRESH_MAX_RUNTIME_SECONDS), **tags}


def refresh_job_name(vendor: str) -> str:
    return f"refresh_{vendor}"


def raw_refresh_keys(plugin: VendorPlugin) -> list[dg.AssetKey]:
    """The vendor's raw assets a refresh re-reads: timesheets (with the tables its step writes
    beside them) and projects."""
    keys: list[dg.AssetKey] = []
    if plugin.timesheets is not None:
        keys.append(plugin.timesheets[0])
        keys.extend(plugin.timesheet_companions)
    if plugin.projects is not None:
        keys.append(plugin.projects[0])
    return keys


def conformed_keys(plugin: VendorPlugin) -> list[dg.AssetKey]:
    """The conformed assets the vendor feeds."""
    keys: list[dg.AssetKey] = []
    if plugin.projects is not None or plugin.timesheets is not None:
        keys.append(PROJECTS_KEY)
    if plugin.timesheets is not None:
        keys.append(TIMESHEETS_KEY)
    return keys


def vendor_refresh_keys(plugin: VendorPlugin) -> list[dg.AssetKey]:
    return raw_refresh_keys(plugin) + conformed_keys(plugin)


def build_jobs(plugins: list[VendorPlugin]) -> list[dg.UnresolvedAssetJobDefinition]:
    jobs = [
        dg.define_asset_job(
            refresh_job_name(plugin.name),
            selection=dg.AssetSelection.assets(*keys),
            executor_def=dg.in_process_executor,
            description=f"Re-read {plugin.name}'s work dates (the run's partition range) and "
            "projects, and rebuild the conformed tables for the same dates.",
            tags=refresh_tags(**{"timesheet_assets/vendor": plugin.name}),
        )
        for plugin in plugins
        if (keys := vendor_refresh_keys(plugin))
    ]
    jobs.append(
        dg.define_asset_job(
            REFRESH_ALL,
            selection=dg.AssetSelection.all(),
            executor_def=dg.in_process_executor,
            description="Every asset of every enabled vendor and the conformed tables, for the "
            "run's partition range. The schedules launch it one vendor at a time.",
            tags=refresh_tags(),
        )
    )
    return jobs
