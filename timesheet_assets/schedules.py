"""The daily refresh: re-read each vendor's recent work dates (late edits and approvals land
there) and its projects; the conformed assets follow through their automation conditions."""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg

from .settings import SettingError
from .vendors.registry import VendorPlugin

DEFAULT_LOOKBACK_DAYS = 14
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def lookback_days(vendor: str) -> int:
    """``<VENDOR>_LOOKBACK_DAYS``, else ``TIMESHEET_LOOKBACK_DAYS``, else 14."""
    for name in (f"{vendor.upper()}_LOOKBACK_DAYS", "TIMESHEET_LOOKBACK_DAYS"):
        raw = os.environ.get(name)
        if raw is None:
            continue
        try:
            days = int(raw)
        except ValueError:
            raise SettingError(f"{name} must be a whole number of days, got {raw!r}") from None
        if days < 1:
            raise SettingError(f"{name} must be at least 1, got {days}")
        return days
    return DEFAULT_LOOKBACK_DAYS


def refreshed_keys(plugin: VendorPlugin) -> list[dg.AssetKey]:
    keys = [entry[0] for entry in (plugin.timesheets, plugin.projects) if entry is not None]
    if plugin.timesheets is not None:
        keys[1:1] = plugin.timesheet_companions
    return keys


def refresh_requests(plugins: list[VendorPlugin], scheduled_date) -> list[dg.RunRequest]:
    """One run per vendor: its timesheet window (single-run backfill) and its projects."""
    requests = []
    day = scheduled_date.isoformat()
    for plugin in plugins:
        keys = refreshed_keys(plugin)
        if not keys:
            continue
        tags = {"timesheet_assets/refresh": "daily", "timesheet_assets/vendor": plugin.name}
        if plugin.timesheets is not None and plugin.timesheets_daily_partitioned:
            first = scheduled_date - timedelta(days=lookback_days(plugin.name) - 1)
            tags |= {RANGE_START: first.isoformat(), RANGE_END: day}
        requests.append(
            dg.RunRequest(run_key=f"daily-refresh:{plugin.name}:{day}", asset_selection=keys, tags=tags)
        )
    return requests


def build_daily_refresh_schedule(plugins: list[VendorPlugin]) -> dg.ScheduleDefinition:
    keys = [key for plugin in plugins for key in refreshed_keys(plugin)]

    @dg.schedule(
        name="daily_refresh",
        cron_schedule=os.environ.get("TIMESHEET_REFRESH_CRON", "0 5 * * *"),
        execution_timezone="UTC",
        target=dg.AssetSelection.assets(*keys),
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Re-read each vendor's last N work days (TIMESHEET_LOOKBACK_DAYS, per vendor "
        "<VENDOR>_LOOKBACK_DAYS) and its projects; conformed assets follow by automation.",
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext):
        return refresh_requests(plugins, context.scheduled_execution_time.date())

    return daily_refresh
