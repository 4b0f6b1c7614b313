"""What each vendor package contributes to the code location."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import pandas as pd

ConformFn = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class VendorPlugin:
    """``definitions`` builds the vendor's assets, checks, sensors and resource.
    ``timesheets``/``projects`` name the raw asset that feeds each conformed table and the
    pure function (the vendor's ``conform.py``) that maps it; ``None`` when the vendor has no
    such entity (AIMS360 has no timesheets)."""

    name: str
    definitions: Callable[[], dg.Definitions]
    timesheets: tuple[dg.AssetKey, ConformFn] | None = None
    projects: tuple[dg.AssetKey, ConformFn] | None = None
    # Whether the timesheet asset is partitioned on the shared daily work-date partitions
    # (otherwise the conformed asset reads it whole and filters by work_date).
    timesheets_daily_partitioned: bool = True
    # Raw assets the timesheet step writes beside its table (iBuildApp's side tables): the
    # daily refresh selects them with it.
    timesheet_companions: tuple[dg.AssetKey, ...] = ()


def load_plugin(vendor: str) -> VendorPlugin:
    module = importlib.import_module(f"timesheet_assets.vendors.{vendor}")
    return module.PLUGIN
