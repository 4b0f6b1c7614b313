"""Fault tests that exhaust a vendor's retries would wait out the real step retry delay."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from timesheet_assets.ingest import HTTP_RETRY_POLICY

QUICK_STEP_RETRY = dg.RetryPolicy(max_retries=1, delay=0)


def use_quick_step_retries(monkeypatch, assets: Iterable[dg.AssetsDefinition]) -> dg.RetryPolicy:
    """Assert each asset carries the real step retry policy, then swap in one retry with no
    delay for the test (``dg.materialize`` always honours an op's own policy)."""
    for asset in assets:
        assert asset.op.retry_policy == HTTP_RETRY_POLICY
        monkeypatch.setattr(asset.op, "_retry_policy", QUICK_STEP_RETRY)
    return QUICK_STEP_RETRY
