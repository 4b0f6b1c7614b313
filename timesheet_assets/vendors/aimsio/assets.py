"""Raw Aimsio assets: ``raw/aimsio/timecards`` and ``raw/aimsio/job_orders``.

Both are incremental and not partitioned. Each run reads the stored keys and ``updatedAt``s
back from the warehouse, makes one GET-all call, then GET-single calls only for stubs that are
new or whose ``updatedAt`` differs from the stored one, and upserts the details by GUID
(``record_key``). There is no high-water mark: a record that becomes visible with an
``updatedAt`` older than others (a form synced late from a phone, a skewed clock) is fetched
like any other. A run that fails writes nothing, so the next one compares against the same
table and fetches every change again.

Records the listing no longer names are not silently current: their rows get ``listed =
false``, when they were last listed and when they left, and what one GET-single call answered
for them (``listing_state``; at most ``vanished_lookups_per_run`` calls per run). Whether such
a timecard still counts in ``conformed/timesheets`` is ``AIMSIO_VANISHED_TIMECARDS``.

Timecards: the work dates the run touched (changed cards, old and new dates, cards that left)
outside the run's conformed window go into ``days_to_reread`` metadata, which the
``reread_changed_days`` sensor turns into conformed rebuilds of those days.

Run config ``{"full_refresh": true}`` fetches every listed detail again (still an upsert: rows
of records that left the list are kept).

Raw timecards carry ``work_date``: ``timeCardRecordDate`` (epoch ms) as a date in the
record's ``timeCardTimeZone``, or in UTC when it has none (or names an unknown zone);
``work_date_time_zone`` says which zone was used.
"""

# No ``from __future__ import annotations`` here: Dagster reads the run-config class from the
# asset function's annotations at definition time and cannot resolve them as strings.
import json
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from ...ingest import (
    HTTP_RETRY_POLICY,
    RawFrame,
    RawSpec,
    build_raw_frame,
    daily_partitions,
    permanent_errors_fail_fast,
    quarantine_check_result,
    quarantine_check_spec,
    raw_asset_defaults,
    raw_output,
)
from ...ingest.metadata import COLUMN_SCHEMA, declared_schema
from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN, typed_frame
from ...schedules import DAYS_TO_REREAD, RANGE_END, RANGE_START
from .columns import JOB_ORDER_COLUMN_DESCRIPTIONS, JOB_ORDER_COLUMNS, TIMECARD_COLUMN_DESCRIPTIONS, TIMECARD_COLUMNS
from .listing_state import (
    LISTED,
    LISTING_COLUMN_DESCRIPTIONS,
    LISTING_COLUMNS,
    PENDING,
    UPDATED_MS,
    StoredState,
    VanishPlan,
    answer_text,
    as_date,
    days_to_reread,
    gone_rows,
    mark_listed,
    plan_vanished,
    stored_columns,
)
from .models import JobOrder, TimeCard, epoch_ms_to_utc, local_date
from .resource import AimsioResource, ChangedRecords, DetailAnswer, unusable_stub_key
from .settings import vanished_timecards

GROUP = "aimsio"
RESOURCE_KEY = "aimsio"
TIMECARDS_KEY = dg.AssetKey(["raw", "aimsio", "timecards"])
JOB_ORDERS_KEY = dg.AssetKey(["raw", "aimsio", "job_orders"])
# When this run's list call was made (ISO text): the next run's "last listed" for records
# that are gone from its own listing.
LISTED_AT_KEY = "listed_at"


def _timecard_rows(card: TimeCard) -> list[dict[str, Any]]:
    assert card.record_date is not None  # the model refuses records without one
    work_date, zone_used = local_date(card.record_date, card.time_zone)
    return [
        {
            "time_card_guid": card.guid,
            "work_date": work_date,
            "work_date_time_zone": zone_used,
            "record_date": epoch_ms_to_utc(card.record_date),
            "employee_guid": card.employee_guid,
            "employee_code": card.employee_code,
            "job_guid": card.job_guid,
            "job_number": card.job_number,
            "phase_code": card.phase_code,
            "pay_code": card.pay_code,
            "regular_hours": card.regular_hours,
            "overtime_hours": card.overtime_hours,
            "double_time_hours": card.double_time_hours,
            "travel_hours": card.travel_hours,
            "is_billable": card.is_billable,
            "is_exported": card.is_exported,
            "is_deleted": card.is_deleted,
            "payroll_period_name": card.payroll_period_name,
            "payroll_period_status": card.payroll_period_status,
            "description": card.description,
            "created_at": epoch_ms_to_utc(card.created_at),
        }
    ]


def _job_order_date(epoch_ms: int | None, zone: str | None) -> date | None:
    return None if epoch_ms is None else local_date(epoch_ms, zone)[0]


def _job_order_rows(job: JobOrder) -> list[dict[str, Any]]:
    return [
        {
            "job_order_guid": job.guid,
            "job_order_number": job.number,
            "name": job.name,
            "status": job.status,
            "customer_guid": job.customer_guid,
            "customer_name": job.customer_name,
            "start_date": _job_order_date(job.start_date, job.time_zone),
            "end_date": _job_order_date(job.end_date, job.time_zone),
            "manager_name": job.manager_name,
            "is_deleted": job.is_deleted,
        }
    ]


def _get(key: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda record: record.get(key)


TIMECARD_SPEC = RawSpec(
    model=TimeCard,
    columns=TIMECARD_COLUMNS,
    to_rows=_timecard_rows,
    key_of=_get("timeCardGuid"),
    descriptions=TIMECARD_COLUMN_DESCRIPTIONS,
)
JOB_ORDER_SPEC = RawSpec(
    model=JobOrder,
    columns=JOB_ORDER_COLUMNS,
    to_rows=_job_order_rows,
    key_of=_get("jobOrderGuid"),
    descriptions=JOB_ORDER_COLUMN_DESCRIPTIONS,
)


def build_incremental_frame(spec: RawSpec, fetched: ChangedRecords) -> RawFrame:
    """Validated details keyed by the stub they were fetched for, stamped with the stub's
    ``updatedAt``; list elements that cannot be fetched become quarantined rows."""
    ingested_at = datetime.now(UTC)
    raw = build_raw_frame(spec, fetched.details, ingested_at=ingested_at)
    frame = raw.frame
    # One detail → one row, in request order; keys come from the stub, the handle the API
    # itself uses, so even a detail that fails validation is upserted under its GUID.
    if len(frame) != len(fetched.changed):
        raise AssertionError("Aimsio details must map one-to-one onto raw rows")
    updated = [s.updated_at for s in fetched.changed]
    frame[KEY_COLUMN] = pd.array([s.identifier for s in fetched.changed], dtype="string")
    frame["source_updated_at_ms"] = pd.array(updated, dtype="Int64")
    frame["source_updated_at"] = pd.to_datetime(
        pd.Series([epoch_ms_to_utc(v) for v in updated], index=frame.index, dtype="object"), utc=True
    )
    quarantined = raw.quarantined
    if fetched.listing.unusable:
        rows = []
        seen: dict[str, int] = {}
        for element, reason in fetched.listing.unusable:
            # Identical elements would share a key; the n-th repeat gets "#n" so the upsert
            # never writes two rows under one key (and a rerun replaces each of them).
            key = unusable_stub_key(element)
            seen[key] = seen.get(key, 0) + 1
            rows.append(
                {
                    KEY_COLUMN: key if seen[key] == 1 else f"{key}#{seen[key]}",
                    PAYLOAD_COLUMN: json.dumps(element, separators=(",", ":"), default=str),
                    QUARANTINE_COLUMN: reason,
                }
            )
        extra = typed_frame(rows, spec.columns)
        extra[INGESTED_COLUMN] = pd.Timestamp(ingested_at)
        frame = pd.concat([frame, extra], ignore_index=True)
        quarantined += len(rows)
    return RawFrame(
        frame=frame,
        records_served=raw.records_served + len(fetched.listing.unusable),
        quarantined=quarantined,
        descriptions=spec.descriptions,
    )


def read_stored(io_manager: Any, key: dg.AssetKey, date_column: str | None) -> StoredState:
    """The stored keys, ``updatedAt``s, listing columns (and work dates) of the raw table."""
    reader = getattr(io_manager, "read_table", None)
    if reader is None:
        raise dg.Failure(
            f"{key.to_user_string()} compares the listing with the stored table and needs the "
            "warehouse IO manager (read_table); the run's io_manager cannot read tables"
        )
    import duckdb  # here: loading the code location does not need DuckDB

    try:
        frame = reader(key, stored_columns(date_column))
    except duckdb.Error:
        # A table written before the listing columns existed: all its records read as listed.
        frame = reader(key, [KEY_COLUMN, UPDATED_MS, *([date_column] if date_column else [])])
    return StoredState(frame, date_column)


def previous_listing(instance: dg.DagsterInstance, key: dg.AssetKey) -> datetime | None:
    """When the last successful run listed (its ``listed_at``; the materialization's time for
    runs that did not record it). None before the first success."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(LISTED_AT_KEY)
    value = getattr(value, "value", value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return datetime.fromtimestamp(event.timestamp, tz=UTC)


def conformed_window(context: dg.AssetExecutionContext) -> tuple[date, date] | None:
    """The work dates the run's conformed step rebuilds: its partition range (the refresh
    schedules and the sensor tag every run with one). None for a run without a range."""
    tags = context.run.tags
    first, last = tags.get(RANGE_START), tags.get(RANGE_END)
    if not (first and last):
        return None
    return date.fromisoformat(first), date.fromisoformat(last)


def _partition_bounds() -> tuple[date, date]:
    partitions = daily_partitions()
    last = partitions.get_last_partition_key()
    return partitions.start.date(), date.fromisoformat(last) if last else partitions.start.date()


def _gone_frame(
    spec: RawSpec,
    stored: StoredState,
    plan: VanishPlan,
    answers: list[DetailAnswer],
    listed_at: datetime,
    previous: datetime | None,
    read_all: Callable[[], pd.DataFrame],
) -> tuple[pd.DataFrame, RawFrame]:
    """Rows of the records that left the listing this run or got their answer now, and the
    validated bodies GET-single still served for some of them."""
    texts = {a.identifier: answer_text(a) for a in answers}
    texts.update({k: PENDING for k in plan.left if k not in texts})
    served_answers = [a for a in answers if a.status == 200]
    served = build_raw_frame(spec, [a.body for a in served_answers], ingested_at=listed_at)
    if len(served.frame) != len(served_answers):
        raise AssertionError("Aimsio details must map one-to-one onto raw rows")
    served.frame[KEY_COLUMN] = pd.array([a.identifier for a in served_answers], dtype="string")
    kept_keys = [k for k in texts if k not in {a.identifier for a in served_answers}]
    kept = pd.DataFrame()
    if kept_keys:
        everything = read_all()
        kept = everything[everything[KEY_COLUMN].isin(kept_keys)]
    dtypes = {KEY_COLUMN: "string", PAYLOAD_COLUMN: "string", QUARANTINE_COLUMN: "string", **spec.columns}
    frame = gone_rows(served.frame, kept, stored, texts, listed_at, previous, dtypes)
    return frame, served


class AimsioIncrementalConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Fetch every listed record's detail again, whatever the stored updatedAt.",
    )


def _incremental_asset(
    key: dg.AssetKey,
    spec: RawSpec,
    endpoint_of: Callable[[AimsioResource], str],
    description: str,
    retry_policy: dg.RetryPolicy | None,
    date_column: str | None = None,
) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        **raw_asset_defaults(GROUP, retry_policy),
        description=description,
        metadata={
            "primary_key": KEY_COLUMN,
            COLUMN_SCHEMA: declared_schema(
                {**spec.columns, **LISTING_COLUMNS}, {**spec.descriptions, **LISTING_COLUMN_DESCRIPTIONS}
            ),
        },
        check_specs=[quarantine_check_spec(key)],
        # The warehouse is read back (the stored updatedAt per GUID), so both resources come
        # by key: Dagster takes resources either all by key or all as parameters.
        required_resource_keys={"io_manager", RESOURCE_KEY},
    )
    def raw_incremental(context: dg.AssetExecutionContext, config: AimsioIncrementalConfig):
        aimsio: AimsioResource = getattr(context.resources, RESOURCE_KEY)
        io_manager = context.resources.io_manager
        stored = read_stored(io_manager, key, date_column)
        previous = previous_listing(context.instance, key)
        endpoint = endpoint_of(aimsio)
        before = aimsio.metrics.snapshot()
        listed_at = datetime.now(UTC)
        # Outages (429/502/503/504, timeouts, dropped or truncated answers, after the client's
        # own retries) reach the step retry policy; permanent errors (401/403, other 4xx, 500,
        # a list page that is not an array) fail at once without step retries. Either way
        # nothing is written, and the next run compares the listing with the same table.
        with permanent_errors_fail_fast():
            fetched = aimsio.fetch_changed(endpoint, None if config.full_refresh else stored.known_versions())
            listed_ids = {s.identifier for s in fetched.listing.stubs}
            plan = plan_vanished(
                stored,
                listed_ids,
                aimsio.vanished_lookups_per_run,
                listing_empty=not fetched.listing.stubs and not fetched.listing.unusable,
            )
            answers = aimsio.ask_after_vanishing(endpoint, plan.ask)
        changed = build_incremental_frame(spec, fetched)
        gone, served = _gone_frame(spec, stored, plan, answers, listed_at, previous, lambda: io_manager.read_table(key))
        frame = mark_listed(changed.frame, listed_at)
        if not gone.empty:
            frame = pd.concat([frame, gone], ignore_index=True)
        raw = RawFrame(
            frame=frame,
            records_served=changed.records_served + served.records_served,
            quarantined=changed.quarantined + served.quarantined,
            descriptions={**spec.descriptions, **LISTING_COLUMN_DESCRIPTIONS},
        )
        was_gone = set(stored.frame.index[~stored.frame[LISTED]])
        answered = Counter(answer_text(a) for a in answers)
        extra: dict[str, Any] = {
            "write_mode": "upsert",
            "full_refresh": config.full_refresh,
            "records_listed": len(fetched.listing.stubs),
            "detail_requests": len(fetched.changed),
            "unchanged_skipped": fetched.unchanged,
            "flagged_deleted": int(frame["is_deleted"].astype("boolean").fillna(False).sum()),
            LISTED_AT_KEY: listed_at.isoformat(),
            "left_listing": len(plan.left),
            "listed_again": len(listed_ids & was_gone),
            "asked_after_vanishing": len(answers),
            "answers_after_vanishing": dg.MetadataValue.json(dict(sorted(answered.items()))),
            "waiting_for_answer": len(plan.still_pending),
        }
        if fetched.listing.max_updated_at is not None:
            extra["newest_updated_at"] = fetched.listing.max_updated_at
        if plan.skipped_reason:
            extra["vanished_check_skipped"] = plan.skipped_reason
            context.log.warning(f"{key.to_user_string()}: {plan.skipped_reason}")
        if date_column:
            touched = [s.identifier for s in fetched.changed] + [str(k) for k in gone.get(KEY_COLUMN, [])]
            days = set(frame[date_column]) | stored.work_dates(touched)
            extra[DAYS_TO_REREAD] = dg.MetadataValue.json(
                days_to_reread((as_date(d) for d in days), conformed_window(context), *_partition_bounds())
            )
            extra["vanished_timecards"] = vanished_timecards()
        context.log.info(
            f"{key.to_user_string()}: {len(fetched.listing.stubs)} listed, {len(fetched.changed)} "
            f"new or changed, {len(plan.left)} left the listing, {len(answers)} asked after "
            f"leaving it, {raw.quarantined} quarantined"
        )
        yield raw_output(context, raw, aimsio.metrics.snapshot() - before, **extra)
        yield quarantine_check_result(key, raw)

    return raw_incremental


def build_assets(retry_policy: dg.RetryPolicy | None = HTTP_RETRY_POLICY) -> list[dg.AssetsDefinition]:
    """The two raw assets; tests that provoke failures build them without step retries."""
    return [
        _incremental_asset(
            TIMECARDS_KEY,
            TIMECARD_SPEC,
            lambda res: res.timecard_endpoint,
            "Aimsio timecards (CurrentTimeCard): one row per timecard GUID, upserted when its "
            "updatedAt differs from the stored one; deleted timecards kept with is_deleted, "
            "timecards that left the open-timecards list kept with listed = false and what "
            "GET-single answered for them; work_date in the record's time zone (UTC when it "
            "has none).",
            retry_policy,
            date_column="work_date",
        ),
        _incremental_asset(
            JOB_ORDERS_KEY,
            JOB_ORDER_SPEC,
            lambda res: res.job_order_endpoint,
            "Aimsio job orders (JobOrder): one row per job order GUID, upserted when its "
            "updatedAt differs from the stored one; job orders that left the list kept with "
            "listed = false.",
            retry_policy,
        ),
    ]


raw_timecards, raw_job_orders = build_assets()
