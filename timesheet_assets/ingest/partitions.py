"""Daily partitions on work date, shared by every date-windowed asset so ranges line up."""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from functools import lru_cache

import dagster as dg

from ..settings import partitions_start_date

# A backfill of a date range runs as one run with one windowed query per vendor, instead of one
# run (and one set of paged requests) per day.
DATE_WINDOW_BACKFILL = dg.BackfillPolicy.single_run()
# Chosen on purpose: Dagster's "parameter `backfill_policy` is in beta" warning on every asset
# that uses it, in every process that loads the code location, tells nobody anything.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` .* is currently in beta")


@lru_cache(maxsize=None)
def daily_partitions(start_date: str | None = None) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start_date or partitions_start_date(), end_offset=1)


def partition_window(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The run's work-date window as ``(first_day, last_day)``, both inclusive."""
    window = context.partition_time_window
    first = window.start.date()
    last = (window.end - timedelta(microseconds=1)).date()
    return first, last
