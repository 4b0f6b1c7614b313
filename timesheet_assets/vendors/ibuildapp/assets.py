"""Raw iBuildApp assets: ``raw/ibuildapp/time_entries`` (daily partitions on the start day, with
``raw/ibuildapp/time_entry_side_tables`` written by the same step) and ``raw/ibuildapp/projects``
(full refresh).

A run of the time entries, in order: the login must be an administrator (``account.py``: a
plain user's search returns only that user's entries, which would replace every day with one
person's hours); the change scan asks ``user/history`` what changed since the last run
(``changes.py``) and reports the days outside the run's own as ``days_to_reread`` for the
``reread_changed_days`` sensor; then the window is read page by page (``entries.py``), checked
against the search's ``count`` (the ``vendor_count_matches_rows`` check), and written, each key
on one day only (``primary_key`` metadata: an entry whose start moved leaves its old day).
"""

from collections.abc import Iterator
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd

from ...ingest import (
    DATE_WINDOW_BACKFILL,
    QUARANTINE_CHECK,  # noqa: F401 - re-exported: the check's name next to the assets
    RawFrame,
    build_raw_frame,
    daily_partitions,
    partition_window,
    permanent_errors_fail_fast,
    quarantine_check_result,
    quarantine_check_spec,
    raw_asset_defaults,
    raw_output,
)
from ...ingest.metadata import COLUMN_SCHEMA, declared_schema, table_output
from ...ingest.records import KEY_COLUMN, QUARANTINE_COLUMN
from ...schedules import DAYS_TO_REREAD, REFRESH_TAG
from ...storage import PRIMARY_KEY
from .account import require_admin
from .changes import ChangeScan, previous_watermark, scan_changes
from .entries import (  # noqa: F401 - re-exported: the load path's names next to the assets
    BATCH_RECORDS,
    TimeEntryLoad,
    _epochs,
    _texts,
    batch_frame,
    finish_time_entries,
    join_side_tables,
    load_time_entries,
    record_spec,
)
from .records import (  # noqa: F401 - re-exported
    PROJECT_COLUMN_DESCRIPTIONS,
    PROJECT_COLUMNS,
    TIME_ENTRY_COLUMN_DESCRIPTIONS,
    TIME_ENTRY_COLUMNS,
    project_spec,
    split_by_window,
    time_entry_spec,
)
from .resource import ENV_TIMEZONE, IBuildAppResource, SearchResult
from .side_tables import (  # noqa: F401 - re-exported
    SIDE_TABLE_COLUMN_DESCRIPTIONS,
    SIDE_TABLE_COLUMNS,
    SIDE_TABLE_REFERENCES,
    side_table_frame,
)

VENDOR = "ibuildapp"
TIME_ENTRIES_KEY = dg.AssetKey(["raw", VENDOR, "time_entries"])
SIDE_TABLES_KEY = dg.AssetKey(["raw", VENDOR, "time_entry_side_tables"])
PROJECTS_KEY = dg.AssetKey(["raw", VENDOR, "projects"])
RECONCILIATION_CHECK = "vendor_count_matches_rows"
# The tag value of the runs the ``reread_changed_days`` sensor launches.
CHANGED_DAYS_RUN = "changed-days"
# The side tables keep no quarantine column: their objects are not validated, only kept.
SIDE_TABLE_SCHEMA = declared_schema(SIDE_TABLE_COLUMNS, SIDE_TABLE_COLUMN_DESCRIPTIONS, without=(QUARANTINE_COLUMN,))

TIMEZONE_WARNING = (
    f"{ENV_TIMEZONE} is not set: work dates are the UTC days of each entry's start_time. The API "
    "document's examples are in California (UTC-8/-7), where every entry started after 16:00 "
    f"local time would land on the next day; set {ENV_TIMEZONE} to the company's IANA zone "
    "(e.g. America/Los_Angeles)."
)


def _search_metadata(result: SearchResult | TimeEntryLoad, logins: int) -> dict[str, Any]:
    return {
        "list_requests": result.pages,
        "list_server_total": result.reported_count if result.reported_count is not None else -1,
        "list_duplicates_skipped": result.duplicates_dropped,
        "list_walks": result.reads,
        "logins": logins,
    }


def timezone_metadata(resource: IBuildAppResource) -> dict[str, Any]:
    configured = resource.timezone_configured
    metadata: dict[str, Any] = {
        "timezone": resource.zone_name,
        "timezone_source": ENV_TIMEZONE if configured else f"default ({ENV_TIMEZONE} not set)",
    }
    if not configured:
        metadata["timezone_warning"] = TIMEZONE_WARNING
    return metadata


def change_scan_for_run(context: dg.AssetExecutionContext, resource: IBuildAppResource) -> ChangeScan:
    """The run's change scan: none in runs the sensor launched for changed days (they would
    report each other's days back and forth) nor when turned off; the watermark carries on."""
    since = previous_watermark(context.instance, TIME_ENTRIES_KEY)
    if context.run.tags.get(REFRESH_TAG) == CHANGED_DAYS_RUN:
        return ChangeScan(since, since, skipped="re-read of changed days: not scanned")
    if not resource.change_scan:
        return ChangeScan(since, since, skipped="turned off (change_scan)")
    return scan_changes(resource, since)


def days_to_reread(days: list[date], first: date, last: date) -> list[date]:
    """Changed days outside the run's own that have a partition to re-read."""
    partitions = daily_partitions()
    earliest = date.fromisoformat(partitions.get_first_partition_key() or "9999-12-31")
    latest_key = partitions.get_last_partition_key()
    latest = date.fromisoformat(latest_key) if latest_key else earliest
    return [day for day in days if not first <= day <= last and earliest <= day <= latest]


def reconciliation_check_spec() -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        RECONCILIATION_CHECK,
        asset=TIME_ENTRIES_KEY,
        description="The search's `count` (the entries iBuildApp says match the run's window) equals the "
        "entries the run landed plus those it left to other days for starting outside the window.",
    )


def reconciliation_check_result(raw: RawFrame, load: TimeEntryLoad) -> dg.AssetCheckResult:
    landed, outside, count = len(raw.frame), load.outside_window, load.reported_count
    metadata: dict[str, Any] = {
        "list_server_total": count if count is not None else -1,
        "rows_landed": landed,
        "outside_window_skipped": outside,
        "list_walks": load.reads,
        "clean_read": load.complete,
    }
    if count is None or not load.count_checkable:
        return dg.AssetCheckResult(
            asset_key=TIME_ENTRIES_KEY,
            check_name=RECONCILIATION_CHECK,
            passed=True,
            severity=dg.AssetCheckSeverity.ERROR,
            description="The search served no count that is its total: nothing to compare.",
            metadata=metadata,
        )
    difference = landed + outside - count
    metadata["difference"] = difference
    description = None
    if difference:
        description = (
            f"iBuildApp counts {count} entries for the window; the run landed {landed} and left {outside} "
            f"to other days ({difference:+d})."
        )
        if load.problems:
            description += f" The list changed while it was read: {'; '.join(load.problems)}."
        if load.not_in_last_read:
            description += (
                " Kept although the last read did not serve them (possibly deleted during the read): "
                + ", ".join(f"{r['record_key']} ({r['work_date']}, user {r['user_id']})" for r in load.not_in_last_read)
            )
            metadata["not_in_last_read"] = dg.MetadataValue.json(load.not_in_last_read)
    return dg.AssetCheckResult(
        asset_key=TIME_ENTRIES_KEY,
        check_name=RECONCILIATION_CHECK,
        passed=difference == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


COMMON: dict[str, Any] = raw_asset_defaults(VENDOR)


ENTRY_OUT_DEFAULTS: dict[str, Any] = dict(
    group_name=COMMON["group_name"],
    kinds=COMMON["kinds"],
    owners=COMMON["owners"],
    dagster_type=pd.DataFrame,
    # The step can be subset (either asset alone); the function yields exactly the selected.
    is_required=False,
)
TIME_ENTRIES_OUTPUT = TIME_ENTRIES_KEY.to_python_identifier()
SIDE_TABLES_OUTPUT = SIDE_TABLES_KEY.to_python_identifier()


@dg.multi_asset(
    name="time_entries",
    outs={
        TIME_ENTRIES_OUTPUT: dg.AssetOut(
            key=TIME_ENTRIES_KEY,
            description=(
                "iBuildApp time entries (ts/search) by day of start_time in IBUILDAPP_TIMEZONE, with "
                "user, task and project names joined from the same calls. Changes on days outside a "
                "run are found through user/history and re-read by the reread_changed_days sensor."
            ),
            # An entry whose start moved to another day is removed from its old day on write.
            metadata={
                "partition_expr": "work_date",
                PRIMARY_KEY: KEY_COLUMN,
                COLUMN_SCHEMA: declared_schema(TIME_ENTRY_COLUMNS, TIME_ENTRY_COLUMN_DESCRIPTIONS),
            },
            **ENTRY_OUT_DEFAULTS,
        ),
        SIDE_TABLES_OUTPUT: dg.AssetOut(
            key=SIDE_TABLES_KEY,
            description=(
                "The users, tasks and projects objects each day's iBuildApp time entries joined "
                "(ts/search `with` side tables), once per day and object, as served."
            ),
            metadata={"partition_expr": "work_date", COLUMN_SCHEMA: SIDE_TABLE_SCHEMA},
            **ENTRY_OUT_DEFAULTS,
        ),
    },
    partitions_def=daily_partitions(),
    check_specs=[quarantine_check_spec(TIME_ENTRIES_KEY), reconciliation_check_spec()],
    backfill_policy=DATE_WINDOW_BACKFILL,
    pool=COMMON["pool"],
    retry_policy=COMMON["retry_policy"],
    can_subset=True,
)
def time_entries(
    context: dg.AssetExecutionContext, ibuildapp: IBuildAppResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    first, last = partition_window(context)
    selected = context.selected_asset_keys
    before, logins_before = ibuildapp.metrics.snapshot(), ibuildapp.logins
    with permanent_errors_fail_fast():
        account = require_admin(ibuildapp)
        scan = change_scan_for_run(context, ibuildapp) if TIME_ENTRIES_KEY in selected else None
        raw, result = load_time_entries(ibuildapp, first, last)
    outside = result.outside_window
    delta = ibuildapp.metrics.snapshot() - before
    if not ibuildapp.timezone_configured:
        context.log.warning(TIMEZONE_WARNING)
    if not result.complete:
        context.log.warning(
            f"iBuildApp ts/search changed in each of {result.reads} reads ({'; '.join(result.problems)}); "
            "kept the union of the reads"
        )
    context.log.info(
        f"iBuildApp ts/search {first}..{last}: {raw.records_served} entries in {result.pages} "
        f"page(s), {raw.quarantined} quarantined, {outside} outside the window"
    )
    if TIME_ENTRIES_KEY in selected:
        assert scan is not None
        reread = days_to_reread(scan.days, first, last)
        if reread:
            context.log.info(
                f"iBuildApp user/history: {len(scan.changed_ids)} entries changed since the last scan; "
                f"days to re-read outside {first}..{last}: {', '.join(d.isoformat() for d in reread)}"
            )
        yield raw_output(
            context,
            raw,
            delta,
            output_name=TIME_ENTRIES_OUTPUT,
            window_first=first.isoformat(),
            window_last=last.isoformat(),
            outside_window_skipped=outside,
            account_roles=", ".join(account.roles) if account.checked else "not checked (admin_roles empty)",
            **timezone_metadata(ibuildapp),
            **scan.metadata(),
            **{DAYS_TO_REREAD: dg.MetadataValue.json([d.isoformat() for d in reread])},
            **_search_metadata(result, ibuildapp.logins - logins_before),
        )
        yield quarantine_check_result(TIME_ENTRIES_KEY, raw)
        yield reconciliation_check_result(raw, result)
    if SIDE_TABLES_KEY in selected:
        sides = result.side_tables
        yield table_output(
            context,
            sides,
            SIDE_TABLE_COLUMN_DESCRIPTIONS,
            SIDE_TABLES_OUTPUT,
            **{f"{table}_objects": int((sides["side_table"] == table).sum()) for table, _ in SIDE_TABLE_REFERENCES},
            window_first=first.isoformat(),
            window_last=last.isoformat(),
        )


@dg.asset(
    key=PROJECTS_KEY,
    description="iBuildApp projects (project/search, full refresh) with client and task names.",
    metadata={COLUMN_SCHEMA: declared_schema(PROJECT_COLUMNS, PROJECT_COLUMN_DESCRIPTIONS)},
    check_specs=[quarantine_check_spec(PROJECTS_KEY)],
    **COMMON,
)
def projects(
    context: dg.AssetExecutionContext, ibuildapp: IBuildAppResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    before, logins_before = ibuildapp.metrics.snapshot(), ibuildapp.logins
    with permanent_errors_fail_fast():
        result = ibuildapp.search_projects()
    raw = build_raw_frame(project_spec(result.related), result.records)
    delta = ibuildapp.metrics.snapshot() - before
    context.log.info(
        f"iBuildApp project/search: {raw.records_served} projects in {result.pages} page(s), "
        f"{raw.quarantined} quarantined"
    )
    yield raw_output(context, raw, delta, **_search_metadata(result, ibuildapp.logins - logins_before))
    yield quarantine_check_result(PROJECTS_KEY, raw)


ASSETS = (time_entries, projects)
