"""Raw Ajera assets: ``raw/ajera/timesheets`` (daily partitions on work date) and
``raw/ajera/projects`` (full refresh).

Timesheets are weeks, the warehouse is daily. Every run lists the weeks that touch its window
under either week reading, fetches their details in batches and explodes each detail line into
one row per day, keeping the days inside the window (``frame``). Daily partitions (not weekly)
because the conformed model and every other vendor are daily: a run replaces exactly its days.
A row's key names its day, and the asset declares it as the table's primary key, so a key lives
on one day only.

The same listing reaches back over the status scan window: weeks before the run's range whose
approval flags or totals differ from the warehouse are reported as ``days_to_reread`` for the
``reread_changed_days`` sensor (``scan``). Each week's ``Timesheet Total`` is reconciled with
the day rows the warehouse holds for it (``reconcile``).
"""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from ...ingest import (
    DATE_WINDOW_BACKFILL,
    build_raw_frame,
    daily_partitions,
    partition_window,
    permanent_errors_fail_fast,
    quarantine_check_result,
    quarantine_check_spec,
    raw_asset_defaults,
    raw_output,
)
from ...ingest.metadata import COLUMN_SCHEMA, declared_schema
from ...ingest.records import KEY_COLUMN
from ...storage import PRIMARY_KEY
from .frame import (
    SECTIONS,
    TIMESHEET_COLUMN_DESCRIPTIONS,
    TIMESHEET_COLUMNS,
    TimesheetRejected,
    _validated_lines,
    build_timesheet_frame,
    day_row_key,
    line_records,
)
from .projects import PROJECT_COLUMN_DESCRIPTIONS, PROJECT_COLUMNS, PROJECT_SPEC, fetch_project_records
from .reconcile import reconcile
from .resource import AjeraResource
from .scan import STORED_COLUMNS, TOTAL_COLUMN, changed_days

__all__ = [
    "PROJECTS_KEY",
    "PROJECT_COLUMNS",
    "PROJECT_SPEC",
    "SECTIONS",
    "TIMESHEETS_KEY",
    "TIMESHEET_COLUMNS",
    "TOTALS_CHECK",
    "TimesheetRejected",
    "_validated_lines",
    "ajera_projects",
    "ajera_timesheets",
    "build_timesheet_frame",
    "day_row_key",
    "fetch_project_records",
    "line_records",
]

VENDOR = "ajera"
TIMESHEETS_KEY = dg.AssetKey(["raw", VENDOR, "timesheets"])
PROJECTS_KEY = dg.AssetKey(["raw", VENDOR, "projects"])
TOTALS_CHECK = "timesheet_totals_reconcile"
DAYS_TO_REREAD = "days_to_reread"  # schedules.DAYS_TO_REREAD (not imported: schedules imports the vendors)


def scan_start(ajera: AjeraResource, last: date) -> date | None:
    """The first day of the status scan window, counted back from the run's last day."""
    days = ajera.status_scan_days
    if days is None:
        from ...schedules import deep_refresh_days

        days = deep_refresh_days(VENDOR)
    return last - timedelta(days=days - 1) if days > 0 else None


def stored_rows(context: dg.AssetExecutionContext) -> pd.DataFrame | None:
    """The raw table's rows as the warehouse holds them before this write (the columns the scan
    and the reconciliation need); ``None`` when the IO manager cannot read whole tables."""
    reader = getattr(context.resources.io_manager, "read_table", None)
    if reader is None:
        return None
    columns = [*STORED_COLUMNS, "regular_hours", "overtime_hours"]
    import duckdb  # here: loading the code location does not need DuckDB

    try:
        return reader(TIMESHEETS_KEY, [*columns, TOTAL_COLUMN])
    except duckdb.Error:
        # A table written before week totals were kept: compare flags only.
        return reader(TIMESHEETS_KEY, columns)


def scan_window(scan_from: date | None, first: date) -> dict[str, Any]:
    """The status scan's days (the change scan of Ajera: the days before the run's own), or
    why there was none."""
    if scan_from is None:
        return {"change_scan": "turned off (status_scan_days 0)"}
    return {
        "change_scan": "scanned",
        "change_scan_first": scan_from.isoformat(),
        "change_scan_last": (first - timedelta(days=1)).isoformat(),
    }


COMMON = raw_asset_defaults(VENDOR)


@dg.asset(
    key=TIMESHEETS_KEY,
    description="Ajera timesheet day-rows: one row per timesheet detail line (project or "
    "overhead) and work date, exploded from the weekly D1..D7 cells (AJERA_TIMESHEET_DATE says "
    "which day TimesheetDate is); payload = the line as served. Daily partitions on work_date; "
    "a range backfill is one run. Reports older changed days as days_to_reread.",
    partitions_def=daily_partitions(),
    backfill_policy=DATE_WINDOW_BACKFILL,
    metadata={
        "partition_expr": "work_date",
        PRIMARY_KEY: KEY_COLUMN,
        COLUMN_SCHEMA: declared_schema(TIMESHEET_COLUMNS, TIMESHEET_COLUMN_DESCRIPTIONS),
    },
    required_resource_keys={VENDOR, "io_manager"},
    check_specs=[
        dg.AssetCheckSpec(
            TOTALS_CHECK,
            asset=TIMESHEETS_KEY,
            description="Each fetched week's 'Timesheet Total' (ListTimesheets) equals the hours "
            "of the day rows the warehouse holds for that week (this run's days plus the stored "
            "other days); names the weeks, days and employees that differ.",
        ),
        quarantine_check_spec(TIMESHEETS_KEY),
    ],
    **COMMON,
)
def ajera_timesheets(context: dg.AssetExecutionContext) -> Iterator[Any]:
    ajera: AjeraResource = getattr(context.resources, VENDOR)
    first, last = partition_window(context)
    scan_from = scan_start(ajera, last)
    before = ajera.metrics.snapshot()
    with permanent_errors_fail_fast():
        fetch = ajera.fetch_timesheets(first, last, scan_from=scan_from)
    raw, weeks = build_timesheet_frame(fetch)
    delta = ajera.metrics.snapshot() - before
    stored = stored_rows(context)
    extra: dict[str, Any] = {}
    if fetch.scan_from is not None and stored is not None:
        scan = changed_days(
            fetch.scanned, stored, fetch.scan_from, first - timedelta(days=1), fetch.reading, fetch.listed_keys
        )
        extra.update(scan.metadata())
        extra[DAYS_TO_REREAD] = dg.MetadataValue.json(sorted(d.isoformat() for d in scan.days))
        if scan.days:
            context.log.info(
                f"Ajera: {len(scan.days)} day(s) before {first} changed since they were read "
                f"({len(scan.weeks_changed)} changed, {len(scan.weeks_new)} new, {len(scan.weeks_gone)} deleted week(s))"
            )
    if raw.quarantined:
        context.log.warning(f"Ajera: {raw.quarantined} timesheet(s) quarantined in {first}..{last}")
    yield raw_output(
        context,
        raw,
        delta,
        window_first=first.isoformat(),
        window_last=last.isoformat(),
        timesheet_date_reading=fetch.reading,
        records_listed=len(fetch.listed),
        list_requests=fetch.list_calls,
        list_truncated_answers=fetch.truncated_lists,
        detail_requests=fetch.get_calls,
        unrequested_details=fetch.unrequested_details,
        outside_window_skipped=fetch.outside_window,
        **scan_window(fetch.scan_from, first),
        **extra,
    )
    reconciliation = reconcile(weeks, raw.frame, stored, first, last)
    yield dg.AssetCheckResult(
        check_name=TOTALS_CHECK,
        asset_key=TIMESHEETS_KEY,
        passed=reconciliation.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=reconciliation.metadata(),
    )
    yield quarantine_check_result(TIMESHEETS_KEY, raw)


@dg.asset(
    key=PROJECTS_KEY,
    description="Ajera projects (ListProjects pages, then GetProjects in batches); full refresh "
    "each run; payload = the GetProjects project (with its invoice groups).",
    metadata={COLUMN_SCHEMA: declared_schema(PROJECT_COLUMNS, PROJECT_COLUMN_DESCRIPTIONS)},
    check_specs=[quarantine_check_spec(PROJECTS_KEY)],
    **COMMON,
)
def ajera_projects(context: dg.AssetExecutionContext, ajera: AjeraResource) -> Iterator[Any]:
    before = ajera.metrics.snapshot()
    with permanent_errors_fail_fast():
        records, stats = fetch_project_records(ajera)
    raw = build_raw_frame(PROJECT_SPEC, records)
    delta = ajera.metrics.snapshot() - before
    if stats["projects_missing_detail"]:
        context.log.warning(
            f"Ajera: GetProjects did not return {stats['projects_missing_detail']} listed project(s); "
            "their list records were kept"
        )
    yield raw_output(context, raw, delta, "result", **stats)
    yield quarantine_check_result(PROJECTS_KEY, raw)
