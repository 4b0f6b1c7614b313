"""``conformed/timesheets`` and ``conformed/projects``: every enabled vendor's frame, mapped by
its ``conform.py`` and unioned, with the data-quality checks reported on each write."""

from collections.abc import Callable, Iterator, Mapping
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from ..ingest import DATE_WINDOW_BACKFILL, daily_partitions, frame_preview, partition_window
from ..ingest.metadata import PREVIEW_ROWS, add_partition_metadata, range_wide, row_partitions_of
from ..ingest.records import PAYLOAD_COLUMN
from ..ingest.staged import staging_table
from ..storage import PRIMARY_KEY, SKIP_COLUMNS, StagedRows
from ..vendors.registry import VendorPlugin
from .catalog import PROJECT_CHECK_DESCRIPTIONS, PROJECT_SCHEMA, TIMESHEET_CHECK_DESCRIPTIONS, TIMESHEET_SCHEMA
from .checks import (
    CheckOutcome,
    combine,
    primary_key_unique,
    project_checks,
    projects_known,
    row_count_not_dropping,
    timesheet_row_checks,
)
from .schema import (
    PROJECT_KEY,
    TIMESHEET_KEY,
    conform_project_frame,
    conform_timesheet_frame,
)

TIMESHEETS_KEY = dg.AssetKey(["conformed", "timesheets"])
PROJECTS_KEY = dg.AssetKey(["conformed", "projects"])
TIMESHEET_CHECKS = tuple(TIMESHEET_CHECK_DESCRIPTIONS)
PROJECT_CHECKS = tuple(PROJECT_CHECK_DESCRIPTIONS)
BLOCKING = {"primary_key_unique", "required_columns_not_null", "status_in_allowed_set"}
# Every vendor's refresh run rebuilds the conformed days it re-read. One conformed step at a
# time across runs: the last one to run reads every raw write committed before it, so two
# vendors refreshing at once cannot leave one's stale rows behind the other's write.
CONFORMED_POOL = "conformed"


class ConformedConfig(dg.Config):
    max_row_drop_fraction: float = Field(
        default=0.5,
        description="Warn when a rewrite holds fewer rows than this fraction below the last run.",
    )


def _raw_input(key: dg.AssetKey) -> dg.AssetIn:
    """A raw table as a conform function reads it: without the payload column, which no
    conform function reads and which holds most of a raw table's bytes."""
    return dg.AssetIn(key=key, metadata={SKIP_COLUMNS: [PAYLOAD_COLUMN]})


def _specs(asset_key: dg.AssetKey, descriptions: Mapping[str, str]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=asset_key, blocking=name in BLOCKING, description=description)
        for name, description in descriptions.items()
    ]


def _previous_counts(context: dg.AssetExecutionContext, key: dg.AssetKey, field: str) -> dict[str, int] | None:
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(field)
    value = getattr(value, "value", value)
    return dict(value) if isinstance(value, Mapping) else None


def _results(outcomes: list[CheckOutcome], asset_key: dg.AssetKey) -> Iterator[dg.AssetCheckResult]:
    for outcome in outcomes:
        yield dg.AssetCheckResult(
            check_name=outcome.name,
            asset_key=asset_key,
            passed=bool(outcome.passed),
            severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
            description=outcome.description or None,
            metadata={k: v for k, v in outcome.metadata.items() if v not in ("", None, {})},
        )


def _write_or_block(
    rows: pd.DataFrame | StagedRows,
    count: int,
    outcomes: list[CheckOutcome],
    asset_key: dg.AssetKey,
    metadata: dict[str, Any],
) -> Iterator[Any]:
    yield from _results(outcomes, asset_key)
    failed = [o.name for o in outcomes if o.blocking and not o.passed]
    if failed:
        # Nothing is written: the warehouse keeps the last good data for this window.
        raise dg.Failure(
            description=f"{asset_key.to_user_string()} not written: blocking check(s) failed: " + ", ".join(failed),
            metadata={"rows_rejected": count},
        )
    yield dg.Output(rows, metadata=metadata)


def _union(
    frames: Mapping[str, pd.DataFrame],
    conformers: Mapping[str, Callable[[pd.DataFrame], pd.DataFrame]],
    conform_frame: Callable[[pd.DataFrame], pd.DataFrame],
) -> pd.DataFrame:
    parts = []
    for vendor, raw in frames.items():
        if raw is None or raw.empty:
            continue
        parts.append(conform_frame(conformers[vendor](raw)))
    if not parts:
        return conform_frame(pd.DataFrame())
    return conform_frame(pd.concat(parts, ignore_index=True))


def _kept_repeats(context: dg.AssetExecutionContext, frame: pd.DataFrame, first, last) -> tuple[pd.DataFrame, int]:
    """The stored rows this write leaves in place whose key the others repeat, and how many
    stored rows lie on other days. The write keeps the other days' rows minus the keys the
    frame brings (the warehouse moves those to their new day in the same transaction); the
    warehouse counts them and finds repeats itself, so a daily write reads no whole table."""
    stored, repeated = context.resources.io_manager.repeated_keys_outside(TIMESHEETS_KEY, TIMESHEET_KEY, first, last)
    if repeated.empty:
        return repeated, stored
    incoming = pd.MultiIndex.from_frame(frame[list(TIMESHEET_KEY)].astype(str))
    kept = ~pd.MultiIndex.from_frame(repeated[list(TIMESHEET_KEY)].astype(str)).isin(incoming)
    return repeated[kept].reset_index(drop=True), stored


def _day_summary(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "rows": len(frame),
        "rows_by_vendor": {str(k): int(v) for k, v in frame.groupby("source_system").size().items()},
        "hours_by_vendor": {
            str(k): round(float(v), 2) for k, v in frame.groupby("source_system")["total_hours"].sum().items()
        },
    }


def _per_day(context: dg.AssetExecutionContext, frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Each partition's own rows and rows and hours per vendor, so every day of a range run
    says how complete it is."""
    keys = row_partitions_of(context, TIMESHEETS_KEY, frame)
    assert keys is not None  # partitioned on work_date, a column of the frame
    return {str(key): _day_summary(part) for key, part in frame.groupby(keys, dropna=True)}


# Days conformed together: a long range (a year's backfill) is read, conformed and checked a
# piece at a time and staged in the warehouse, so the step holds a month, not the range; a
# window of at most this many days (a daily refresh) is one piece, written as a frame.
CONFORM_CHUNK_DAYS = 31


def _day_chunks(first: date, last: date, days: int) -> list[tuple[date, date]]:
    chunks = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=days - 1))
        chunks.append((start, end))
        start = end + timedelta(days=1)
    return chunks


def build_conformed_timesheets(plugins: list[VendorPlugin]) -> dg.AssetsDefinition:
    feeding = {p.name: p.timesheets for p in plugins if p.timesheets is not None}
    raw_keys = {name: key for name, (key, _) in feeding.items()}
    conformers = {name: fn for name, (_, fn) in feeding.items()}

    @dg.asset(
        key=TIMESHEETS_KEY,
        ins={"conformed_projects": dg.AssetIn(key=PROJECTS_KEY)},
        # Read by the step itself, a piece of the range at a time (``read_windows``).
        deps=list(raw_keys.values()),
        group_name="conformed",
        partitions_def=daily_partitions(),
        backfill_policy=DATE_WINDOW_BACKFILL,
        metadata={
            "partition_expr": "work_date",
            PRIMARY_KEY: list(TIMESHEET_KEY),
            "dagster/column_schema": TIMESHEET_SCHEMA,
        },
        check_specs=_specs(TIMESHEETS_KEY, TIMESHEET_CHECK_DESCRIPTIONS),
        pool=CONFORMED_POOL,
        required_resource_keys={"io_manager"},
        kinds={"pandas", "duckdb"},
        owners=["team:data-platform"],
        description="One row per timesheet line (employee × work date × project/task × source) "
        "across every enabled vendor, in one schema. See docs/conformed-model.md.",
    )
    def conformed_timesheets(
        context: dg.AssetExecutionContext, config: ConformedConfig, conformed_projects: pd.DataFrame
    ):
        first, last = partition_window(context)
        io_manager = context.resources.io_manager
        projects = conform_project_frame(conformed_projects) if not conformed_projects.empty else conformed_projects
        chunks = _day_chunks(first, last, CONFORM_CHUNK_DAYS)
        staging = staging_table(context) if len(chunks) > 1 else None
        by_day: dict[str, int] = {}
        per_day: dict[str, dict[str, Any]] = {}
        keys: list[pd.DataFrame] = []
        row_outcomes: list[list[CheckOutcome]] = []
        preview = frame = pd.DataFrame()
        try:
            for chunk_first, chunk_last in chunks:
                # Every raw timesheet table has the day worked as ``work_date`` (the partitioned
                # ones are partitioned on it; Aimsio's timecards, one table, carry it too).
                raw = io_manager.read_windows(raw_keys, chunk_first, chunk_last, [PAYLOAD_COLUMN])
                frame = _union(raw, conformers, conform_timesheet_frame)
                del raw
                in_window = frame["work_date"].map(lambda d: d is not None and first <= d <= last)
                frame = frame[in_window.astype(bool)].reset_index(drop=True)
                by_day.update({str(k): int(v) for k, v in frame.groupby("work_date").size().items()})
                per_day.update(_per_day(context, frame))
                keys.append(frame[list(TIMESHEET_KEY)])
                row_outcomes.append([*timesheet_row_checks(frame), projects_known(frame, projects)])
                if not len(preview):
                    preview = frame.head(PREVIEW_ROWS)
                if staging is not None:
                    staging.append(frame)
            rows = pd.concat(keys, ignore_index=True) if len(keys) > 1 else keys[0]
            outcomes = [
                primary_key_unique(rows, TIMESHEET_KEY, *_kept_repeats(context, rows, first, last)),
                *(combine(list(piece)) for piece in zip(*row_outcomes)),
                row_count_not_dropping(
                    by_day,
                    _previous_counts(context, TIMESHEETS_KEY, "rows_by_work_date"),
                    config.max_row_drop_fraction,
                ),
            ]
            add_partition_metadata(context, TIMESHEETS_KEY, per_day, _day_summary(frame.head(0)))
            metadata = {
                "window_first": first.isoformat(),
                "window_last": last.isoformat(),
                **range_wide(context, TIMESHEETS_KEY, {"rows_by_work_date": by_day, "preview": frame_preview(preview)}),
            }
            output = StagedRows(staging) if staging is not None else frame
            yield from _write_or_block(output, len(rows), outcomes, TIMESHEETS_KEY, metadata)
        except BaseException:
            if staging is not None:
                staging.discard()
            raise

    return conformed_timesheets


def build_conformed_projects(plugins: list[VendorPlugin]) -> dg.AssetsDefinition:
    feeding = {p.name: p.projects for p in plugins if p.projects is not None}
    ins = {name: _raw_input(key) for name, (key, _) in feeding.items()}
    conformers = {name: fn for name, (_, fn) in feeding.items()}

    @dg.asset(
        key=PROJECTS_KEY,
        ins=ins,
        group_name="conformed",
        metadata={PRIMARY_KEY: list(PROJECT_KEY), "dagster/column_schema": PROJECT_SCHEMA},
        check_specs=_specs(PROJECTS_KEY, PROJECT_CHECK_DESCRIPTIONS),
        pool=CONFORMED_POOL,
        kinds={"pandas", "duckdb"},
        owners=["team:data-platform"],
        description="One row per project/job across every enabled vendor. See docs/conformed-model.md.",
    )
    def conformed_projects(context: dg.AssetExecutionContext, config: ConformedConfig, **inputs: pd.DataFrame):
        frame = _union(inputs, conformers, conform_project_frame)
        counts = {"all": len(frame)}
        outcomes = project_checks(frame)
        outcomes.append(
            row_count_not_dropping(
                counts, _previous_counts(context, PROJECTS_KEY, "row_counts"), config.max_row_drop_fraction
            )
        )
        metadata = {
            "rows": len(frame),
            "row_counts": counts,
            "rows_by_vendor": {str(k): int(v) for k, v in frame.groupby("source_system").size().items()},
            "preview": frame_preview(frame),
        }
        yield from _write_or_block(frame, len(frame), outcomes, PROJECTS_KEY, metadata)

    return conformed_projects
