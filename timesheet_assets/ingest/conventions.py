"""Attributes every raw vendor asset carries (docs/contracts.md: group and pool per vendor)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from .policies import HTTP_RETRY_POLICY

OWNERS = ["team:data-platform"]


def raw_asset_defaults(vendor: str, retry_policy: dg.RetryPolicy | None = HTTP_RETRY_POLICY) -> dict[str, Any]:
    """``@dg.asset`` keyword arguments shared by a vendor's raw assets: its group, its
    concurrency pool (one step per vendor across runs), kinds, owners and the step retry."""
    return {
        "group_name": vendor,
        "pool": vendor,
        "kinds": {"python", "duckdb"},
        "owners": OWNERS,
        "retry_policy": retry_policy,
    }
