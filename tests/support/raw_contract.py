"""The promise every raw frame keeps, asserted by the vendors' fuzz tests."""

from __future__ import annotations

from typing import Any

import pandas as pd


def assert_raw_contract(raw, records: list[Any], model) -> pd.DataFrame:
    """One row per record served (none dropped); each row either valid — and then really a
    valid record — or quarantined with a reason; keys and payloads always present."""
    frame = raw.frame
    assert raw.records_served == len(records) == len(frame)
    reasons = frame["quarantine_reason"]
    assert raw.quarantined == int(reasons.notna().sum())
    assert all(isinstance(r, str) and r for r in reasons.dropna())
    assert frame["record_key"].notna().all() and frame["payload"].notna().all()
    for record, reason in zip(records, reasons):
        if pd.isna(reason):
            model.model_validate(record)
    return frame
