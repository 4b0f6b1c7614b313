"""Materialization metadata every raw asset reports.

On a partitioned asset each partition of the run gets its own ``rows`` and ``quarantined``
(the rows of that day), so a range run's partitions answer "how complete is each day"; what
the run as a whole did (records served, requests, waits) is the same on each of them. The
names are the vocabulary of docs/operations.md, "Materialization metadata".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import pandas as pd

from ..http import MetricsSnapshot
from ..storage import SEQUENCE_COLUMN
from ..storage.types import frame_types
from .partitions import row_partitions
from .records import (
    INGESTED_COLUMN,
    PAYLOAD_COLUMN,
    QUARANTINE_COLUMN,
    SHARED_COLUMN_DESCRIPTIONS,
    RawFrame,
    typed_frame,
)
from .staged import StagedRaw

PREVIEW_ROWS = 10
COLUMN_SCHEMA = "dagster/column_schema"


def frame_preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    shown = frame.drop(columns=[c for c in (PAYLOAD_COLUMN,) if c in frame.columns]).head(rows)
    return dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "_no rows_")


def column_schema(frame: pd.DataFrame, descriptions: Mapping[str, str]) -> dg.TableSchema:
    """Each column with its description and the type the storage layer gives it
    (``storage/types.py``); the warehouse IO manager replaces the types with those of the
    stored table after the write."""
    described = {**SHARED_COLUMN_DESCRIPTIONS, **descriptions}
    types = frame_types(frame)
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=str(name), type=types.get(str(name), "NULL"), description=described.get(str(name)))
            for name in frame.columns
        ]
    )


def declared_schema(
    columns: Mapping[str, str], descriptions: Mapping[str, str], without: tuple[str, ...] = ()
) -> dg.TableSchema:
    """The schema of a raw table built from ``columns`` (parsed column -> pandas dtype, as in
    ``RawSpec.columns``): the shared columns around them, each with its description and the
    type the warehouse stores it as. Declared on the asset, so the catalog shows it before
    the first materialization. ``without``: shared columns the table does not have."""
    frame = typed_frame([], columns)
    frame[INGESTED_COLUMN] = pd.Series(dtype="datetime64[ns, UTC]")
    frame = frame.drop(columns=list(without))
    schema = column_schema(frame, descriptions)
    # An empty column of Python dates has no type of its own yet; the warehouse stores DATE.
    dates = {name for name, dtype in columns.items() if dtype == "date"}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=c.name, type="DATE", description=c.description) if c.name in dates else c
            for c in schema.columns
        ]
    )


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def partition_column(context: dg.AssetExecutionContext, asset_key: dg.AssetKey) -> str | None:
    """The column a partitioned asset's rows are partitioned by (its ``partition_expr``);
    None for an asset without partitions."""
    spec = context.assets_def.specs_by_key[asset_key]
    column = _plain(spec.metadata.get("partition_expr"))
    return str(column) if spec.partitions_def is not None and column else None


def row_partitions_of(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, frame: pd.DataFrame
) -> pd.Series | None:
    """Each row's partition key in this run (null outside it), or None when the asset is
    not partitioned by a column of the frame."""
    column = partition_column(context, asset_key)
    if column is None or column not in frame.columns:
        return None
    partitions_def = context.assets_def.specs_by_key[asset_key].partitions_def
    assert partitions_def is not None
    return row_partitions(partitions_def, context.partition_keys, frame[column])


def add_partition_metadata(
    context: dg.AssetExecutionContext,
    asset_key: dg.AssetKey,
    by_partition: Mapping[str, Mapping[str, Any]],
    empty: Mapping[str, Any],
) -> None:
    """Metadata for each partition of the run (``empty`` for a partition without rows); it
    takes precedence over the output's and the IO manager's metadata of the same name."""
    for key in context.partition_keys:
        context.add_asset_metadata(dict(by_partition.get(key, empty)), asset_key=asset_key, partition_key=key)


def range_wide(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """Entries with one value for the whole run (a preview, the column schema, counts by day):
    returned for the output when the run writes one partition of ``asset_key`` or none;
    put on the last partition of a longer range instead. Dagster copies an output's metadata
    onto every partition's materialization, so a year's backfill stored the same 20-25 KB
    365 times; the last partition's event is written last, so it is the asset's latest."""
    if context.assets_def.specs_by_key[asset_key].partitions_def is None or len(context.partition_keys) <= 1:
        return dict(metadata)
    context.add_asset_metadata(dict(metadata), asset_key=asset_key, partition_key=context.partition_keys[-1])
    return {}


def _partition_counts(
    context: dg.AssetExecutionContext,
    asset_key: dg.AssetKey,
    keys: pd.Series,
    rows: pd.Series,
    quarantined: pd.Series | None,
) -> dict[str, Any]:
    """``rows`` (and ``quarantined``) of each partition of the run, put on the partition, and
    the run's totals returned; ``keys`` is each entry's partition (null outside the run),
    ``rows``/``quarantined`` how many rows and quarantined rows the entry stands for."""
    counts: dict[str, Any] = {"rows_in_run": int(rows.sum())}
    by_key = rows.groupby(keys).sum()
    bad = quarantined.groupby(keys).sum() if quarantined is not None else None
    if quarantined is not None:
        counts["quarantined_in_run"] = int(quarantined.sum())
    per_day = {
        key: {
            "rows": int(by_key.get(key, 0)),
            **({"quarantined": int(bad.get(key, 0))} if bad is not None else {}),
        }
        for key in context.partition_keys
    }
    add_partition_metadata(context, asset_key, per_day, {})
    return counts


def table_output(
    context: dg.AssetExecutionContext,
    frame: pd.DataFrame,
    descriptions: Mapping[str, str],
    output_name: str = "result",
    **metadata: Any,
) -> dg.Output:
    """The ``Output`` of a raw table: ``rows`` (and ``quarantined`` when the frame has a
    quarantine column) per partition on a partitioned asset, with the run's totals as
    ``rows_in_run`` / ``quarantined_in_run``, else for the table; a preview; the column schema
    with descriptions. ``metadata`` is the asset's own (run-level)."""
    asset_key = context.assets_def.keys_by_output_name[output_name]
    quarantined = frame[QUARANTINE_COLUMN].notna() if QUARANTINE_COLUMN in frame.columns else None
    keys = row_partitions_of(context, asset_key, frame)
    counts: dict[str, Any] = {}
    if keys is None:
        counts["rows"] = len(frame)
        if quarantined is not None:
            counts["quarantined"] = int(quarantined.sum())
    else:
        ones = pd.Series(1, index=frame.index, dtype="int64")
        counts = _partition_counts(
            context, asset_key, keys, ones, quarantined.astype("int64") if quarantined is not None else None
        )
    return dg.Output(
        frame,
        output_name=output_name,
        metadata={
            **counts,
            **metadata,
            **range_wide(
                context,
                asset_key,
                {"preview": frame_preview(frame), COLUMN_SCHEMA: column_schema(frame, descriptions)},
            ),
        },
    )


def staged_raw_output(
    context: dg.AssetExecutionContext,
    raw: StagedRaw,
    metrics: MetricsSnapshot,
    output_name: str = "result",
    **extra: Any,
) -> dg.Output:
    """``raw_output`` for rows held in a staging table (``ingest/staged.py``): the same
    metadata, counted and previewed by queries instead of from a frame."""
    asset_key = context.assets_def.keys_by_output_name[output_name]
    staging = raw.staging
    template = staging.template if staging.template is not None else pd.DataFrame()
    column = partition_column(context, asset_key)
    if column is None or column not in template.columns:
        total, bad = staging.fetch(f"SELECT count(*), count({QUARANTINE_COLUMN}) FROM {{table}}")[0]
        counts: dict[str, Any] = {"rows": int(total), "quarantined": int(bad)}
        run_level: dict[str, Any] = {"records_served": raw.records_served, "quarantined": raw.quarantined}
    else:
        by_day = pd.DataFrame(
            staging.fetch(
                f'SELECT CAST("{column}" AS DATE), count(*), count({QUARANTINE_COLUMN}) FROM {{table}} GROUP BY 1'
            ),
            columns=["day", "rows", "quarantined"],
        )
        partitions_def = context.assets_def.specs_by_key[asset_key].partitions_def
        assert partitions_def is not None
        keys = row_partitions(partitions_def, context.partition_keys, by_day["day"].astype(object))
        counts = _partition_counts(context, asset_key, keys, by_day["rows"], by_day["quarantined"])
        run_level = {"records_served": raw.records_served, "quarantined_in_run": raw.quarantined}
    shown = [name for name in template.columns if name != PAYLOAD_COLUMN]
    listed = ", ".join(f'"{name}"' for name in shown)
    preview = pd.DataFrame(
        staging.fetch(f"SELECT {listed} FROM {{table}} ORDER BY {SEQUENCE_COLUMN} LIMIT {PREVIEW_ROWS}")
        if shown
        else [],
        columns=shown,
    )
    return dg.Output(
        raw.rows,
        output_name=output_name,
        metadata={
            **counts,
            **run_level,
            **metrics.as_metadata(),
            **extra,
            **range_wide(
                context,
                asset_key,
                {"preview": frame_preview(preview), COLUMN_SCHEMA: column_schema(template, raw.descriptions)},
            ),
        },
    )


def raw_output(
    context: dg.AssetExecutionContext,
    raw: RawFrame,
    metrics: MetricsSnapshot,
    output_name: str = "result",
    **extra: Any,
) -> dg.Output:
    """The ``Output`` of a raw asset: the frame plus rows, request and quarantine metadata
    (``output_name``: the asset's output in a multi-asset). A partitioned asset's ``rows``
    and ``quarantined`` are each partition's own (``table_output``); ``quarantined`` /
    ``quarantined_in_run`` count served records that failed validation."""
    asset_key = context.assets_def.keys_by_output_name[output_name]
    partitioned = row_partitions_of(context, asset_key, raw.frame.head(0)) is not None
    run_level: dict[str, Any] = {
        "records_served": raw.records_served,
        ("quarantined_in_run" if partitioned else "quarantined"): raw.quarantined,
    }
    return table_output(
        context,
        raw.frame,
        raw.descriptions,
        output_name,
        **{**run_level, **metrics.as_metadata(), **extra},
    )


QUARANTINE_CHECK = "no_quarantined_records"


def quarantine_check_spec(asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    """Every raw asset declares this check: a WARN when any served record was quarantined."""
    return dg.AssetCheckSpec(
        QUARANTINE_CHECK,
        asset=asset_key,
        description="Every record the vendor served passed validation (quarantined rows keep "
        "their payload and the validation error in the raw table).",
    )


def quarantine_check_result(asset_key: dg.AssetKey, raw: RawFrame | StagedRaw) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=QUARANTINE_CHECK,
        passed=raw.quarantined == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined": raw.quarantined, "records_served": raw.records_served},
    )
