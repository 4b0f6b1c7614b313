"""Daily partitions on work date, shared by every date-windowed asset so ranges line up."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date, timedelta
from functools import cache
from typing import Any

import dagster as dg
import pandas as pd

from ..settings import partitions_start_date

# A backfill of a date range runs as one run with one windowed query per vendor, instead of one
# run (and one set of paged requests) per day.
DATE_WINDOW_BACKFILL = dg.BackfillPolicy.single_run()
# Chosen on purpose: Dagster's "parameter `backfill_policy` is in beta" warning on every asset
# that uses it, in every process that loads the code location, tells nobody anything.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` .* is currently in beta")


@cache
def daily_partitions(start_date: str | None = None) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date or partitions_start_date(), end_offset=1)


def partition_window(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The run's work-date window as ``(first_day, last_day)``, both inclusive."""
    window = context.partition_time_window
    first = window.start.date()
    last = (window.end - timedelta(microseconds=1)).date()
    return first, last


def row_partitions(
    partitions_def: dg.PartitionsDefinition, partition_keys: Sequence[str], days: pd.Series
) -> pd.Series:
    """The partition key (among ``partition_keys``) of each row's day in ``days``; null for a
    row whose day is none of them (no date, or outside the run)."""
    if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        raise TypeError(f"per-partition counts need time-window partitions, not {type(partitions_def).__name__}")
    windows = [
        (key, window.start.date(), window.end.date())
        for key in partition_keys
        for window in [partitions_def.time_window_for_partition_key(key)]
    ]
    if pd.api.types.is_datetime64_any_dtype(days):
        days = days.dt.date.astype(object)
    # Thousands of rows share a few days: map each distinct day once.
    distinct = pd.unique(days.dropna())
    owner: dict[Any, str] = {}
    for value in distinct:
        day = pd.Timestamp(value).date()
        owner[value] = next((key for key, start, end in windows if start <= day < end), None)  # type: ignore[assignment]
    return days.map(owner, na_action="ignore").astype(object)
