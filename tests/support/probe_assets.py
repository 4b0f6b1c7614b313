"""The probe assets the warehouse tests write: a daily-partitioned ``raw/probe/lines`` read as
a single-run backfill (as the vendors' raw assets are) and an upsert table ``raw/probe/cards``.
Each test module says what the lines hold; the asset's shape is the same everywhere."""

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd

from timesheet_assets.ingest import DATE_WINDOW_BACKFILL, daily_partitions, partition_window


def probe_lines_asset(frame_for: Callable[[list[date]], pd.DataFrame]) -> dg.AssetsDefinition:
    """``raw/probe/lines`` whose rows for the run's work dates are ``frame_for(days)``."""

    @dg.asset(
        key=["raw", "probe", "lines"],
        partitions_def=daily_partitions("2026-01-01"),
        backfill_policy=DATE_WINDOW_BACKFILL,
        metadata={"partition_expr": "work_date"},
    )
    def probe_lines(context: dg.AssetExecutionContext) -> pd.DataFrame:
        first, last = partition_window(context)
        return frame_for(list(pd.date_range(first, last).date))

    return probe_lines


def lines(days: list[date], per_day: int, **columns: Any) -> pd.DataFrame:
    """``per_day`` lines a day keyed ``<day>:<n>``, with ``columns`` repeated on every line."""
    count = per_day * len(days)
    return pd.DataFrame(
        {
            "record_key": [f"{d}:{i}" for d in days for i in range(per_day)],
            "work_date": [d for d in days for _ in range(per_day)],
            **{name: [value] * count for name, value in columns.items()},
        }
    )


def probe_cards_asset(state: Mapping[str, Any]) -> dg.AssetsDefinition:
    """``raw/probe/cards``: the rows in ``state["cards"]``, written as ``state["mode"]``
    (default upsert by ``record_key``)."""

    @dg.asset(key=["raw", "probe", "cards"], metadata={"primary_key": "record_key"})
    def probe_cards() -> dg.Output:
        frame = pd.DataFrame(state["cards"], columns=["record_key", "hours"])
        return dg.Output(frame, metadata={"write_mode": state.get("mode", "upsert")})

    return probe_cards
