"""The refresh schedules and the sensor that follows changes found beyond their windows.

* ``daily_refresh`` re-reads each vendor's last N work days (late edits, approvals, deletions
  and late records land there) with its projects, and the conformed tables for those days.
* ``deep_refresh`` (weekly) does the same over a long window, for the changes older than the
  daily lookback that the vendor's API cannot point at (deletions and moves, mostly).
* ``reread_changed_days`` reads what the vendors' change scans found outside the window of the
  run that found them (a raw timesheet materialization's ``days_to_reread`` metadata) and
  re-reads those days, raw and conformed.

Each schedule launches one run per vendor of the ``refresh_all`` job, with the vendor's raw
assets and the conformed assets it feeds; a vendor's failure leaves the others' runs alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import date, timedelta

import dagster as dg

from .jobs import REFRESH_ALL, conformed_keys, vendor_refresh_keys
from .settings import first_number_setting, partitions_start_date
from .vendors.registry import VendorPlugin

DEFAULT_LOOKBACK_DAYS = 14
DEFAULT_DEEP_REFRESH_DAYS = 120
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
REFRESH_TAG = "timesheet_assets/refresh"
VENDOR_TAG = "timesheet_assets/vendor"
# Metadata a raw timesheet materialization carries when its change scan found changed records
# on work dates outside the run's range: a JSON list of ISO dates.
DAYS_TO_REREAD = "days_to_reread"
# Days closer than this are re-read in one run rather than one run each.
MERGE_GAP_DAYS = 7


def _days_setting(names: tuple[str, ...], default: int) -> int:
    return int(first_number_setting(names, default, whole=True, unit="days"))


def lookback_days(vendor: str) -> int:
    """``<VENDOR>_LOOKBACK_DAYS``, else ``TIMESHEET_LOOKBACK_DAYS``, else 14."""
    return _days_setting((f"{vendor.upper()}_LOOKBACK_DAYS", "TIMESHEET_LOOKBACK_DAYS"), DEFAULT_LOOKBACK_DAYS)


def deep_refresh_days(vendor: str) -> int:
    """``<VENDOR>_DEEP_REFRESH_DAYS``, else ``TIMESHEET_DEEP_REFRESH_DAYS``, else 120."""
    return _days_setting(
        (f"{vendor.upper()}_DEEP_REFRESH_DAYS", "TIMESHEET_DEEP_REFRESH_DAYS"), DEFAULT_DEEP_REFRESH_DAYS
    )


def first_partition_day() -> date:
    return date.fromisoformat(partitions_start_date())


def range_tags(first: date, last: date) -> dict[str, str]:
    return {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}


def refresh_requests(plugins: list[VendorPlugin], scheduled_date: date, *, kind: str = "daily") -> list[dg.RunRequest]:
    """One run per vendor: its timesheet window (a single-run backfill), its projects and the
    conformed tables for the same window."""
    requests = []
    day = scheduled_date.isoformat()
    for plugin in plugins:
        keys = vendor_refresh_keys(plugin)
        if not keys:
            continue
        tags = {REFRESH_TAG: kind, VENDOR_TAG: plugin.name}
        if plugin.timesheets is not None:
            days = deep_refresh_days(plugin.name) if kind == "deep" else lookback_days(plugin.name)
            # Dagster refuses a range that starts before the first partition.
            first = max(scheduled_date - timedelta(days=days - 1), first_partition_day())
            tags |= range_tags(first, max(first, scheduled_date))
        requests.append(dg.RunRequest(run_key=f"{kind}-refresh:{plugin.name}:{day}", asset_selection=keys, tags=tags))
    return requests


def build_daily_refresh_schedule(plugins: list[VendorPlugin]) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_refresh",
        cron_schedule=os.environ.get("TIMESHEET_REFRESH_CRON", "0 5 * * *"),
        execution_timezone="UTC",
        job_name=REFRESH_ALL,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Each vendor's last N work days (TIMESHEET_LOOKBACK_DAYS, per vendor "
        "<VENDOR>_LOOKBACK_DAYS, default 14) and its projects, with the conformed tables for "
        "the same days: one run per vendor.",
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext):
        return refresh_requests(plugins, context.scheduled_execution_time.date())

    return daily_refresh


def build_deep_refresh_schedule(plugins: list[VendorPlugin]) -> dg.ScheduleDefinition:
    windowed = [p for p in plugins if p.timesheets is not None and p.timesheets_daily_partitioned]

    @dg.schedule(
        name="deep_refresh",
        cron_schedule=os.environ.get("TIMESHEET_DEEP_REFRESH_CRON", "0 2 * * 0"),
        execution_timezone="UTC",
        job_name=REFRESH_ALL,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Weekly: each windowed vendor's last N work days (TIMESHEET_DEEP_REFRESH_DAYS, "
        "per vendor <VENDOR>_DEEP_REFRESH_DAYS, default 120) with the conformed tables, to catch "
        "deletions and moves older than the daily lookback.",
    )
    def deep_refresh(context: dg.ScheduleEvaluationContext):
        return refresh_requests(windowed, context.scheduled_execution_time.date(), kind="deep")

    return deep_refresh


def day_ranges(days: Iterable[date], merge_gap: int = MERGE_GAP_DAYS) -> list[tuple[date, date]]:
    """Sorted days as inclusive ranges, joining days at most ``merge_gap`` apart."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and (day - ranges[-1][1]).days <= merge_gap:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _days_in(metadata: dict) -> set[date]:
    entry = metadata.get(DAYS_TO_REREAD)
    value = getattr(entry, "value", entry)
    if isinstance(value, str):
        value = json.loads(value or "[]")
    return {date.fromisoformat(str(day)) for day in value or ()}


def build_reread_sensor(plugins: list[VendorPlugin]) -> dg.SensorDefinition:
    feeding = [p for p in plugins if p.timesheets is not None]

    @dg.sensor(
        name="reread_changed_days",
        job_name=REFRESH_ALL,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-reads the work days a vendor's change scan found changed outside the "
        "run that found them (raw and conformed; conformed only where the raw table is "
        "incremental). Light: it reads the instance's event log, never a vendor.",
    )
    def reread_changed_days(context: dg.SensorEvaluationContext):
        cursor: dict[str, int] = json.loads(context.cursor or "{}")
        requests: list[dg.RunRequest] = []
        for plugin in feeding:
            key = plugin.timesheets[0]  # type: ignore[index]
            after = cursor.get(plugin.name)
            result = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=1000, ascending=True
            )
            if not result.records:
                continue
            days: set[date] = set()
            for record in result.records:
                materialization = record.asset_materialization
                if materialization is not None:
                    days |= _days_in(dict(materialization.metadata))
            newest = result.records[-1].storage_id
            cursor[plugin.name] = newest
            keys = vendor_refresh_keys(plugin) if plugin.timesheets_daily_partitioned else conformed_keys(plugin)
            start = first_partition_day()
            for first, last in day_ranges(day for day in days if day >= start):
                requests.append(
                    dg.RunRequest(
                        run_key=f"reread:{plugin.name}:{first}:{last}:{newest}",
                        asset_selection=keys,
                        tags={REFRESH_TAG: "changed-days", VENDOR_TAG: plugin.name, **range_tags(first, last)},
                    )
                )
        context.update_cursor(json.dumps(cursor))
        return requests

    return reread_changed_days
