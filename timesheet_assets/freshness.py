"""When each asset is overdue: Dagster freshness policies, applied to every raw and conformed
asset in one place (the code location), so no vendor can forget them.

The daily refresh reloads every vendor each morning; an asset whose last load is older than
a day and a bit has missed one. ``TIMESHEET_OVERDUE_HOURS`` (default 26) sets the window,
``<VENDOR>_OVERDUE_HOURS`` a vendor's raw assets' (e.g. a vendor refreshed weekly). The asset
shows "warning" an hour before it turns overdue. Dagster's freshness daemon (part of
``dagster-daemon``) evaluates the policies; ``alerts.py`` posts what turns overdue.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import dagster as dg

from .settings import first_number_setting

DEFAULT_OVERDUE_HOURS = 26.0
WARN_BEFORE_OVERDUE_HOURS = 1.0


def overdue_hours(vendor: str | None = None) -> float:
    """``<VENDOR>_OVERDUE_HOURS`` for a vendor's raw assets, else ``TIMESHEET_OVERDUE_HOURS``,
    else 26."""
    names = (f"{vendor.upper()}_OVERDUE_HOURS",) if vendor else ()
    return first_number_setting((*names, "TIMESHEET_OVERDUE_HOURS"), DEFAULT_OVERDUE_HOURS, whole=False, unit="hours")


def freshness_policy(vendor: str | None = None) -> dg.FreshnessPolicy:
    hours = overdue_hours(vendor)
    warn = hours - WARN_BEFORE_OVERDUE_HOURS
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=hours), warn_window=timedelta(hours=warn) if warn >= 1 else None
    )


def vendor_of(key: dg.AssetKey) -> str | None:
    """The vendor of a raw asset (``raw/<vendor>/<entity>``); ``None`` for conformed assets."""
    return key.path[1] if len(key.path) > 2 and key.path[0] == "raw" else None


def with_freshness(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with a freshness policy on every asset (its vendor's window for raw assets)."""
    policies: dict[str | None, dg.FreshnessPolicy] = {}

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        vendor = vendor_of(spec.key)
        if vendor not in policies:
            policies[vendor] = freshness_policy(vendor)
        return dg.apply_freshness_policy(spec, policies[vendor])

    with warnings.catch_warnings():
        # map_asset_specs is marked preview in 1.13; the specs it returns are ordinary ones.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_asset_specs(func=apply)
