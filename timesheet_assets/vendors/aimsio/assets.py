"""Raw Aimsio assets: ``raw/aimsio/timecards`` and ``raw/aimsio/job_orders``.

Both are incremental and not partitioned. Each run makes one GET-all call, then GET-single
calls only for stubs whose ``updatedAt`` is newer than the cursor, and upserts the details by
GUID (``record_key``). The cursor is the newest ``updatedAt`` listed, stored as
``cursor_updated_at`` in the materialization metadata. Dagster records that metadata only
after the IO manager's write committed, so a run that fails while fetching or writing leaves
the cursor where it was and the next run fetches every change again.

Run config ``{"full_refresh": true}`` ignores the cursor and re-fetches every detail (still an
upsert: rows of records that left the list are kept).

Raw timecards carry ``work_date``: ``timeCardRecordDate`` (epoch ms) as a date in the
record's ``timeCardTimeZone``, or in UTC when it has none (or names an unknown zone);
``work_date_time_zone`` says which zone was used.
"""

# No ``from __future__ import annotations`` here: Dagster reads the run-config class from the
# asset function's annotations at definition time and cannot resolve them as strings.
import json
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping

import dagster as dg
import pandas as pd
from pydantic import Field

from ...ingest import (
    HTTP_RETRY_POLICY,
    RawFrame,
    RawSpec,
    build_raw_frame,
    permanent_errors_fail_fast,
    raw_asset_defaults,
    quarantine_check_result,
    quarantine_check_spec,
    raw_output,
)
from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN, typed_frame
from .models import JobOrder, TimeCard, epoch_ms_to_utc, local_date
from .resource import AimsioResource, ChangedRecords, unusable_stub_key

GROUP = "aimsio"
RESOURCE_KEY = "aimsio"
TIMECARDS_KEY = dg.AssetKey(["raw", "aimsio", "timecards"])
JOB_ORDERS_KEY = dg.AssetKey(["raw", "aimsio", "job_orders"])
CURSOR_KEY = "cursor_updated_at"

# Stub-derived columns, filled after validation: the detail body has no ``updatedAt``.
STUB_COLUMNS = {"source_updated_at": "datetime64[ns, UTC]", "source_updated_at_ms": "Int64"}

TIMECARD_COLUMNS: dict[str, str] = {
    "time_card_guid": "string",
    "work_date": "date",
    "work_date_time_zone": "string",
    "record_date": "datetime64[ns, UTC]",
    "employee_guid": "string",
    "employee_code": "string",
    "job_guid": "string",
    "job_number": "string",
    "phase_code": "string",
    "pay_code": "string",
    "regular_hours": "Float64",
    "overtime_hours": "Float64",
    "double_time_hours": "Float64",
    "travel_hours": "Float64",
    "is_billable": "boolean",
    "is_exported": "boolean",
    "is_deleted": "boolean",
    "payroll_period_name": "string",
    "payroll_period_status": "string",
    "description": "string",
    "created_at": "datetime64[ns, UTC]",
    **STUB_COLUMNS,
}

JOB_ORDER_COLUMNS: dict[str, str] = {
    "job_order_guid": "string",
    "job_order_number": "string",
    "name": "string",
    "status": "string",
    "customer_guid": "string",
    "customer_name": "string",
    "start_date": "date",
    "end_date": "date",
    "manager_name": "string",
    "is_deleted": "boolean",
    **STUB_COLUMNS,
}


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
)
JOB_ORDER_SPEC = RawSpec(
    model=JobOrder,
    columns=JOB_ORDER_COLUMNS,
    to_rows=_job_order_rows,
    key_of=_get("jobOrderGuid"),
)


def build_incremental_frame(spec: RawSpec, fetched: ChangedRecords) -> RawFrame:
    """Validated details keyed by the stub they were fetched for, stamped with the stub's
    ``updatedAt``; list elements that cannot be fetched become quarantined rows."""
    ingested_at = datetime.now(timezone.utc)
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
    )


def stored_cursor(instance: dg.DagsterInstance, key: dg.AssetKey) -> int | None:
    """``cursor_updated_at`` of the last materialization; None before the first success."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(CURSOR_KEY)
    value = getattr(value, "value", value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


class AimsioIncrementalConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Ignore the stored cursor and fetch every record's detail again.",
    )


def _incremental_asset(
    key: dg.AssetKey,
    spec: RawSpec,
    fetch: Callable[[AimsioResource, int | None], ChangedRecords],
    description: str,
    retry_policy: dg.RetryPolicy | None,
) -> dg.AssetsDefinition:
    @dg.asset(
        key=key,
        **raw_asset_defaults(GROUP, retry_policy),
        description=description,
        metadata={"primary_key": KEY_COLUMN},
        check_specs=[quarantine_check_spec(key)],
    )
    def raw_incremental(
        context: dg.AssetExecutionContext,
        config: AimsioIncrementalConfig,
        aimsio: AimsioResource,
    ):
        previous = None if config.full_refresh else stored_cursor(context.instance, key)
        before = aimsio.metrics.snapshot()
        # Outages (429/502/503/504, timeouts, dropped or truncated answers, after the client's
        # own retries) reach the step retry policy; permanent errors (401/403, other 4xx, 500,
        # a list page that is not an array) fail at once without step retries. Either way
        # nothing is written and the cursor stays where it was.
        with permanent_errors_fail_fast():
            fetched = fetch(aimsio, previous)
        raw = build_incremental_frame(spec, fetched)
        deleted = int(raw.frame["is_deleted"].astype("boolean").fillna(False).sum())
        extra: dict[str, Any] = {
            "write_mode": "upsert",
            "full_refresh": config.full_refresh,
            "stubs_listed": len(fetched.listing.stubs),
            "details_fetched": len(fetched.changed),
            "unchanged_skipped": fetched.unchanged,
            "flagged_deleted": deleted,
        }
        if previous is not None:
            extra["cursor_previous"] = previous
        if fetched.cursor is not None:
            extra[CURSOR_KEY] = fetched.cursor
        context.log.info(
            f"{key.to_user_string()}: {len(fetched.listing.stubs)} listed, "
            f"{len(fetched.changed)} new or changed since cursor {previous}, "
            f"{raw.quarantined} quarantined"
        )
        yield raw_output(raw, aimsio.metrics.snapshot() - before, **extra)
        yield quarantine_check_result(key, raw)

    return raw_incremental


def build_assets(retry_policy: dg.RetryPolicy | None = HTTP_RETRY_POLICY) -> list[dg.AssetsDefinition]:
    """The two raw assets; tests that provoke failures build them without step retries."""
    return [
        _incremental_asset(
            TIMECARDS_KEY,
            TIMECARD_SPEC,
            lambda res, cursor: res.fetch_timecards(cursor),
            "Aimsio timecards (CurrentTimeCard): one row per timecard GUID, upserted "
            "incrementally by updatedAt; deleted timecards kept with is_deleted; work_date in "
            "the record's time zone (UTC when it has none).",
            retry_policy,
        ),
        _incremental_asset(
            JOB_ORDERS_KEY,
            JOB_ORDER_SPEC,
            lambda res, cursor: res.fetch_job_orders(cursor),
            "Aimsio job orders (JobOrder): one row per job order GUID, upserted incrementally "
            "by updatedAt.",
            retry_policy,
        ),
    ]


raw_timecards, raw_job_orders = build_assets()


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_timecards, raw_job_orders],
        resources={RESOURCE_KEY: AimsioResource.from_env()},
    )
