"""Materialization metadata every raw asset reports."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd

from ..http import MetricsSnapshot
from .records import PAYLOAD_COLUMN, RawFrame

PREVIEW_ROWS = 10


def frame_preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    shown = frame.drop(columns=[c for c in (PAYLOAD_COLUMN,) if c in frame.columns]).head(rows)
    return dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "_no rows_")


def column_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=str(name), type=str(dtype)) for name, dtype in frame.dtypes.items()]
    )


def raw_output(raw: RawFrame, metrics: MetricsSnapshot, output_name: str = "result", **extra: Any) -> dg.Output:
    """The ``Output`` of a raw asset: the frame plus rows, request and quarantine metadata
    (``output_name``: the asset's output in a multi-asset)."""
    frame = raw.frame
    metadata: dict[str, Any] = {
        "rows": len(frame),
        "records_served": raw.records_served,
        "quarantined": raw.quarantined,
        **{key: value for key, value in metrics.as_metadata().items()},
        "preview": frame_preview(frame),
        "dagster/column_schema": column_schema(frame),
    }
    metadata.update(extra)
    return dg.Output(frame, output_name=output_name, metadata=metadata)


QUARANTINE_CHECK = "no_quarantined_records"


def quarantine_check_spec(asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    """Every raw asset declares this check: a WARN when any served record was quarantined."""
    return dg.AssetCheckSpec(
        QUARANTINE_CHECK,
        asset=asset_key,
        description="Every record the vendor served passed validation (quarantined rows keep "
        "their payload and the validation error in the raw table).",
    )


def quarantine_check_result(asset_key: dg.AssetKey, raw: RawFrame) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=QUARANTINE_CHECK,
        passed=raw.quarantined == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined": raw.quarantined, "records_served": raw.records_served},
    )
