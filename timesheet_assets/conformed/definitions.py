"""Definitions of the conformed layer and the operations around it."""

from __future__ import annotations

import dagster as dg

from ..schedules import build_daily_refresh_schedule
from ..vendors.registry import VendorPlugin
from .assets import build_conformed_projects, build_conformed_timesheets


def conformed_definitions(plugins: list[VendorPlugin]) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_conformed_timesheets(plugins), build_conformed_projects(plugins)],
        schedules=[build_daily_refresh_schedule(plugins)],
        sensors=[
            dg.AutomationConditionSensorDefinition(
                "conformed_follows_raw",
                target=dg.AssetSelection.groups("conformed"),
                default_status=dg.DefaultSensorStatus.STOPPED,
                description="Materializes conformed assets after their raw inputs change "
                "(recent work dates only). Turn on in production; see docs/operations.md.",
            )
        ],
    )
