"""The code location: ``defs`` (``@dg.definitions``) is what ``dg check defs``, ``dagster dev``,
the code server and ``dagster definitions validate`` load (location name ``timesheet_assets``
everywhere: ``pyproject.toml``, ``workspace.yaml``, ``deploy/``, ``location.py``).

The definitions are built when Dagster loads them, not when this module is imported. Each
vendor folder's ``definitions.py`` gathers its assets, checks, sensors and the resource built
from its environment variables; ``build_definitions`` merges them with the conformed layer,
the jobs, schedules and sensors that span vendors."""

from __future__ import annotations

import dagster as dg

from .alerts import ALERT_SENSORS
from .freshness import with_freshness
from .settings import enabled_vendors
from .storage import warehouse_io_manager
from .vendors.registry import VendorPlugin, load_plugin


def enabled_plugins(vendors: tuple[str, ...] | None = None) -> list[VendorPlugin]:
    return [load_plugin(v) for v in (enabled_vendors() if vendors is None else vendors)]


def build_definitions(vendors: tuple[str, ...] | None = None) -> dg.Definitions:
    from .conformed.definitions import conformed_definitions
    from .jobs import build_jobs
    from .schedules import build_daily_refresh_schedule, build_deep_refresh_schedule, build_reread_sensor

    plugins = enabled_plugins(vendors)
    defs = dg.Definitions.merge(
        # Runs launched from the asset graph execute their steps in the run worker too, as the
        # named jobs do: no step process that outlives a killed worker, and no step process
        # start-up (seconds each) between a vendor's steps, which run one at a time anyway.
        dg.Definitions(resources={"io_manager": warehouse_io_manager()}, executor=dg.in_process_executor),
        *(plugin.definitions() for plugin in plugins),
        conformed_definitions(plugins),
        dg.Definitions(
            jobs=build_jobs(plugins),
            schedules=[build_daily_refresh_schedule(plugins), build_deep_refresh_schedule(plugins)],
            sensors=[build_reread_sensor(plugins), *ALERT_SENSORS],
        ),
    )
    # Every asset says when it is overdue; the alert sensors post what turns overdue.
    return with_freshness(defs)


@dg.definitions
def defs() -> dg.Definitions:
    """The vendors ``TIMESHEET_VENDORS`` enables (default: all five)."""
    return build_definitions()
