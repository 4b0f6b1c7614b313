"""Blikk raw assets: ``raw/blikk/time_reports`` (daily partitions on work date) and
``raw/blikk/projects`` (full refresh).

Time reports have no updated-since filter, so a run reads its whole work-date window (one
paged query for the run, however many days it covers) and replaces those partitions; late
edits in the window are picked up by re-running recent days. The read's rows go to a staging
table of the warehouse as pages arrive (``ingest/staged.py``), so a year's backfill is not held
in the run worker. Before the window read, the run scans the
reports changed since the previous run on any work date (``change_scan.py``) and names the
changed days outside its window in ``days_to_reread``, which the ``reread_changed_days``
sensor re-reads; the check ``reported_hours_match_blikk`` (``reconcile.py``) compares the
warehouse with Blikk's own hours per user and day. Projects have no change filter either and are
few, so each run reads them all — with the internal and absence project registries, which
time reports are booked on too — and replaces the table.

Vendor calls run inside the shared ``permanent_errors_fail_fast()``: outages (429/502/503/504
after all attempts, timeouts, resets, truncated bodies) reach the step retry policy; errors no
retry can fix (other 4xx, 500, a page that is not a paged list) fail the step at once. A 403
or 404 on the optional reads (user names, the two registries) is a warning instead.
"""

# No ``from __future__ import annotations`` here: Dagster inspects the context annotation.
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd

from ...http import VendorHTTPError
from ...ingest import (
    DATE_WINDOW_BACKFILL,
    RawFrame,
    RawSpec,
    build_raw_frame,
    daily_partitions,
    partition_window,
    permanent_errors_fail_fast,
    quarantine_check_result,
    quarantine_check_spec,
    raw_asset_defaults,
    raw_output,
)
from ...ingest.compact import build_raw_frame_by_chunks
from ...ingest.metadata import COLUMN_SCHEMA, declared_schema, staged_raw_output
from ...ingest.records import KEY_COLUMN, QUARANTINE_COLUMN
from ...ingest.staged import StagedRaw, StagedRecords, staging_table
from ...schedules import DAYS_TO_REREAD
from ...storage import PRIMARY_KEY, StagingTable
from .change_scan import WATERMARK_KEY, parse_watermark, scan_changes, scan_metadata, stored_watermark
from .columns import PROJECT_COLUMN_DESCRIPTIONS, PROJECT_COLUMNS, TIME_REPORT_COLUMN_DESCRIPTIONS, TIME_REPORT_COLUMNS
from .conform import ABSENCE_PREFIX, INTERNAL_PREFIX
from .keys import GROUP, PROJECTS_KEY, RESOURCE_KEY, TIME_REPORTS_KEY
from .models import AbsenceProject, NameRef, Project, RegistryProject, TimeReport, parse_blikk_date
from .resource import BlikkResource, ListFetch

# Answers that mean an optional read (user names, the two registries) is not available to
# this API application: no permission (403), or an endpoint this deployment lacks (404).
OPTIONAL_READ_UNAVAILABLE = frozenset({403, 404})


def _id(ref: NameRef | None) -> str | None:
    return str(ref.id) if ref is not None and ref.id is not None else None


def _name(ref: NameRef | None) -> str | None:
    return ref.name if ref is not None else None


def _string(value: Any) -> str | None:
    return None if value is None else str(value)


def time_report_rows(report: TimeReport, user_names: Mapping[str, str]) -> list[dict[str, Any]]:
    user_id = str(report.user.id)
    name = (report.user.name or "").strip() or user_names.get(user_id)
    return [
        {
            "record_key": str(report.id),
            "work_date": report.date,
            "user_id": user_id,
            "employee_name": name,
            "project_id": _id(report.project),
            "project_number": report.project.number if report.project else None,
            "project_name": _name(report.project),
            "internal_project_id": _id(report.internalProject),
            "internal_project_name": _name(report.internalProject),
            "absence_project_id": _id(report.absenceProject),
            "absence_project_name": _name(report.absenceProject),
            "contact_id": _id(report.contact),
            "contact_name": _name(report.contact),
            "activity_name": _name(report.activity),
            "time_code_name": _name(report.timeCode),
            "time_article_name": _name(report.timeArticle),
            "clock_start": report.clockStart,
            "clock_end": report.clockEnd,
            "hours": report.hours,
            "invoiceable_hours": report.invoiceableHours,
            "break_minutes": report.breakMinutes,
            "comment": report.comment,
            "internal_comment": report.internalComment,
            "sent_to_attest": report.is_sent_to_attest,
            "attested": report.is_attested,
            "sent_to_attest_at": report.sent_to_attest_at,
            "attested_at": report.attested_at,
            "invoice_id": _string(report.invoiceId),
            "created_at": report.createdDate,
            "updated_at": report.updatedDate,
        }
    ]


def _lenient_work_date(record: Mapping[str, Any]) -> date | None:
    try:
        return parse_blikk_date(record.get("date"))
    except ValueError:
        return None


def time_report_spec(user_names: Mapping[str, str] | None = None) -> RawSpec[TimeReport]:
    names = dict(user_names or {})
    return RawSpec(
        model=TimeReport,
        columns=TIME_REPORT_COLUMNS,
        to_rows=lambda report: time_report_rows(report, names),
        key_of=lambda record: record.get("id"),
        date_column="work_date",
        date_of=_lenient_work_date,
        descriptions=TIME_REPORT_COLUMN_DESCRIPTIONS,
    )


def project_rows(project: Project) -> list[dict[str, Any]]:
    status = project.status
    return [
        {
            "record_key": str(project.id),
            "project_type": "project",
            "project_id": str(project.id),
            "order_number": project.orderNumber,
            "title": project.title,
            "status_id": _string(status.id) if status else None,
            "status_name": status.name if status else None,
            "status_is_completed": status.isCompletedStatus if status else None,
            "start_date": project.startDate,
            "end_date": project.endDate,
            "invoice_type": project.invoiceType,
            "customer_id": _id(project.customer),
            "customer_name": _name(project.customer),
            "manager_id": _id(project.projectManager),
            "manager_name": _name(project.projectManager),
            "created_at": project.created,
            "updated_at": project.updated,
        }
    ]


PROJECT_SPEC: RawSpec[Project] = RawSpec(
    model=Project,
    columns=PROJECT_COLUMNS,
    to_rows=project_rows,
    key_of=lambda record: record.get("id"),
    descriptions=PROJECT_COLUMN_DESCRIPTIONS,
)


def registry_project_rows(project: RegistryProject, kind: str, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "record_key": f"{prefix}{project.id}",
            "project_type": kind,
            "project_id": str(project.id),
            "title": project.name,
            "is_active": project.isActive,
            "created_at": project.created,
            "updated_at": project.updated,
        }
    ]


def _registry_spec(model: type[RegistryProject], kind: str, prefix: str) -> RawSpec[Any]:
    return RawSpec(
        model=model,
        columns=PROJECT_COLUMNS,
        to_rows=lambda project: registry_project_rows(project, kind, prefix),
        key_of=lambda record: f"{prefix}{record.get('id')}" if record.get("id") is not None else None,
        descriptions=PROJECT_COLUMN_DESCRIPTIONS,
    )


INTERNAL_PROJECT_SPEC = _registry_spec(RegistryProject, "internal", INTERNAL_PREFIX)
ABSENCE_PROJECT_SPEC = _registry_spec(AbsenceProject, "absence", ABSENCE_PREFIX)


def combine_raw(parts: list[RawFrame]) -> RawFrame:
    frames = [part.frame for part in parts if len(part.frame)]
    frame = pd.concat(frames, ignore_index=True) if frames else parts[0].frame
    return RawFrame(
        frame=frame,
        records_served=sum(part.records_served for part in parts),
        quarantined=sum(part.quarantined for part in parts),
        descriptions={name: text for part in parts for name, text in part.descriptions.items()},
    )


def split_by_window(records: list[Any], first: date, last: date) -> tuple[list[Any], int]:
    """Records inside the window, and how many fell outside it. The server filters by date
    already; a record outside would land in a partition this run does not own, so it is left
    to the run that owns its day. Records without a readable date stay (quarantined later)."""
    kept: list[Any] = []
    outside = 0
    for record in records:
        day = _lenient_work_date(record) if isinstance(record, Mapping) else None
        if day is not None and not first <= day <= last:
            outside += 1
            continue
        kept.append(record)
    return kept, outside


def lacks_user_name(record: Any) -> bool:
    if not isinstance(record, Mapping):
        return False
    user = record.get("user")
    return isinstance(user, Mapping) and not str(user.get("name") or "").strip()


class _WindowFilter:
    """``admit`` for ``StagedRecords`` and ``build_raw_frame_by_chunks``: the records of a
    chunk inside the window (``split_by_window``), counting those outside and noting whether a
    kept one lacks a user name (the registry is then read once, after the last chunk)."""

    def __init__(self, first: date, last: date) -> None:
        self.first, self.last = first, last
        self.outside = 0
        self.lacks_user_name = False

    def __call__(self, records: list[Any]) -> list[Any]:
        kept, outside = split_by_window(records, self.first, self.last)
        self.outside += outside
        self.lacks_user_name = self.lacks_user_name or any(lacks_user_name(record) for record in kept)
        return kept


def fill_employee_names(frame: pd.DataFrame, user_names: Mapping[str, str]) -> None:
    """Valid rows whose report carried no user name get it from the user registry: the
    value ``time_report_rows`` gives when it is handed ``user_names``."""
    missing = frame["employee_name"].isna() & frame[QUARANTINE_COLUMN].isna()
    if missing.any():
        frame.loc[missing, "employee_name"] = frame.loc[missing, "user_id"].map(dict(user_names)).astype("string")


def _complete_check(key: dg.AssetKey, *listings: ListFetch) -> dg.AssetCheckResult:
    incomplete = [listing.path for listing in listings if not listing.complete]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="list_read_complete",
        passed=not incomplete,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "server_total": sum(listing.server_total or 0 for listing in listings),
            "records_read": sum(listing.records_read for listing in listings),
            "walks": max(listing.walks for listing in listings),
            "changed_mid_walk": any(listing.changed_mid_walk for listing in listings),
            "incomplete_lists": ", ".join(incomplete) or "none",
        },
    )


def _check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        quarantine_check_spec(key),
        dg.AssetCheckSpec(
            "list_read_complete",
            asset=key,
            description="The paged read saw as many distinct records as the API's "
            "totalItemCount, with counts that did not move during the read.",
        ),
    ]


@dg.asset(
    key=TIME_REPORTS_KEY,
    description="Blikk time reports (GET /v1/Core/TimeReports), one row per report, "
    "partitioned by work date. Payload JSON kept; invalid records quarantined.",
    **raw_asset_defaults(GROUP),
    partitions_def=daily_partitions(),
    backfill_policy=DATE_WINDOW_BACKFILL,
    metadata={
        "partition_expr": "work_date",
        PRIMARY_KEY: KEY_COLUMN,
        COLUMN_SCHEMA: declared_schema(TIME_REPORT_COLUMNS, TIME_REPORT_COLUMN_DESCRIPTIONS),
    },
    check_specs=_check_specs(TIME_REPORTS_KEY),
    required_resource_keys={RESOURCE_KEY, "io_manager"},
)
def blikk_time_reports(context: dg.AssetExecutionContext) -> Iterator[Any]:
    blikk: BlikkResource = getattr(context.resources, RESOURCE_KEY)
    first, last = partition_window(context)
    before = blikk.metrics.snapshot()
    # The scan comes before the window read: a report changed in between is then either in
    # the window read or above the scan's new watermark.
    scan = _change_scan(context, blikk, first, last)
    window = _WindowFilter(first, last)
    staging = staging_table(context)
    try:
        raw, listing = _read_window(blikk, first, last, window, staging)
        outside = window.outside
        if outside:
            context.log.warning(
                f"Blikk returned {outside} time report(s) dated outside {first}..{last}; left to "
                "the runs that own those days"
            )
        names_looked_up = window.lacks_user_name and _fill_user_names(context, blikk, raw)
        metadata = dict(
            window_first=first.isoformat(),
            window_last=last.isoformat(),
            outside_window_skipped=outside,
            user_names_looked_up=names_looked_up,
            **listing.as_metadata("list"),
            **scan,
        )
        if isinstance(raw, StagedRaw):
            yield staged_raw_output(context, raw, blikk.metrics.snapshot() - before, **metadata)
        else:
            yield raw_output(context, raw, blikk.metrics.snapshot() - before, **metadata)
    except BaseException:
        # Failed before the write took the staged rows (or the write failed): the table
        # keeps its old rows, and the staging table goes.
        if staging is not None:
            staging.discard()
        raise
    yield quarantine_check_result(TIME_REPORTS_KEY, raw)
    yield _complete_check(TIME_REPORTS_KEY, listing)


def _read_window(
    blikk: BlikkResource, first: date, last: date, window: _WindowFilter, staging: StagingTable | None
) -> tuple[RawFrame | StagedRaw, ListFetch]:
    """The window's reports as raw rows: written to ``staging`` page by page as they arrive
    when the warehouse offers it (a year is hundreds of pages), else built in memory."""
    spec = time_report_spec()
    if staging is not None:
        staged = StagedRecords(staging, spec, admit=window, default_date=first)
        with permanent_errors_fail_fast():
            listing = blikk.fetch_time_reports(first, last, keep=staged)
        raw: RawFrame | StagedRaw = staged.finish(listing.take_records())
    else:
        with permanent_errors_fail_fast():
            # Each report kept as its JSON text until its rows are built, a chunk at a time
            # (``ingest/compact.py``).
            listing = blikk.fetch_time_reports(first, last, compact=True)
        raw = build_raw_frame_by_chunks(spec, listing.take_records(), admit=window, default_date=first)
    return raw, listing


def _fill_user_names(context: dg.AssetExecutionContext, blikk: BlikkResource, raw: RawFrame | StagedRaw) -> bool:
    """Names are an enrichment: an API application without access to the user registry
    still loads its time reports. True when the registry was read."""
    with permanent_errors_fail_fast():
        try:
            names = blikk.fetch_user_names()
        except VendorHTTPError as exc:
            if exc.status not in OPTIONAL_READ_UNAVAILABLE:
                raise
            context.log.warning(
                f"Blikk user registry not readable ({exc}); employee_name stays empty for reports without a user name"
            )
            return False
    if isinstance(raw, StagedRaw):
        values = pd.DataFrame(
            {
                "user_id": pd.Series(list(names), dtype="string"),
                "employee_name": pd.Series(list(names.values()), dtype="string"),
            }
        )
        raw.staging.fill_missing("user_id", "employee_name", values, only_where=f"t.{QUARANTINE_COLUMN} IS NULL")
    else:
        fill_employee_names(raw.frame, names)
    return True


def _partition_bounds(context: dg.AssetExecutionContext) -> tuple[date, date]:
    partitions = context.assets_def.partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    last_key = partitions.get_last_partition_key()
    first_day = partitions.start.date()
    return first_day, date.fromisoformat(last_key) if last_key else first_day


def _change_scan(context: dg.AssetExecutionContext, blikk: BlikkResource, first: date, last: date) -> dict[str, Any]:
    """The change scan's metadata (``days_to_reread``, the next watermark, its cost). With
    the scan switched off the stored watermark is carried along unchanged, so the next
    scanning run starts where the last one stopped."""
    stored = stored_watermark(context.instance, TIME_REPORTS_KEY)
    if not blikk.change_scan:
        return {WATERMARK_KEY: dg.MetadataValue.json(stored)} if stored is not None else {}
    with permanent_errors_fail_fast():
        scan = scan_changes(blikk, parse_watermark(stored))
    metadata = scan_metadata(scan, first, last, _partition_bounds(context))
    days = metadata[DAYS_TO_REREAD].value
    context.log.info(
        f"Blikk change scan: {len(scan.changed)} report(s) changed since the last scan "
        f"({metadata['change_scan_changed_in_window']} in {first}..{last}), "
        f"{scan.page_requests} request(s); days to re-read: {', '.join(days) or 'none'}"
    )
    return metadata


@dg.asset(
    key=PROJECTS_KEY,
    description="Blikk projects (GET /v1/Core/Projects) plus the internal and absence project "
    "registries time reports can be booked on, full refresh each run. Payload JSON kept; "
    "invalid records quarantined.",
    **raw_asset_defaults(GROUP),
    metadata={COLUMN_SCHEMA: declared_schema(PROJECT_COLUMNS, PROJECT_COLUMN_DESCRIPTIONS)},
    check_specs=_check_specs(PROJECTS_KEY),
)
def blikk_projects(context: dg.AssetExecutionContext, blikk: BlikkResource) -> Iterator[Any]:
    before = blikk.metrics.snapshot()
    with permanent_errors_fail_fast():
        listing = blikk.fetch_projects()
    listings = [listing]
    parts = [build_raw_frame(PROJECT_SPEC, listing.records)]
    registries_refused: list[str] = []
    for kind, fetch, spec in (
        ("internal", blikk.fetch_internal_projects, INTERNAL_PROJECT_SPEC),
        ("absence", blikk.fetch_absence_projects, ABSENCE_PROJECT_SPEC),
    ):
        # Optional registries: without access to them only their rows are missing.
        with permanent_errors_fail_fast():
            try:
                registry = fetch()
            except VendorHTTPError as exc:
                if exc.status not in OPTIONAL_READ_UNAVAILABLE:
                    raise
                registries_refused.append(kind)
                context.log.warning(f"Blikk {kind} project registry not readable ({exc}); skipped")
                continue
        listings.append(registry)
        parts.append(build_raw_frame(spec, registry.records))
    raw = combine_raw(parts)
    yield raw_output(
        context,
        raw,
        blikk.metrics.snapshot() - before,
        registries_refused=", ".join(registries_refused) or "none",
        **listing.as_metadata("list"),
    )
    yield quarantine_check_result(PROJECTS_KEY, raw)
    yield _complete_check(PROJECTS_KEY, *listings)
