"""The row every vendor benchmark reports (columns fixed by the performance issue)."""

from __future__ import annotations

from typing import Any


def scenario_row(
    vendor: str,
    scenario: str,
    *,
    requests: int,
    records: int,
    wall_s: float,
    rate_violations: int,
    documented_limit_rps: float | None = None,
) -> dict[str, Any]:
    achieved = requests / wall_s if wall_s > 0 else 0.0
    return {
        "vendor": vendor,
        "scenario": scenario,
        "requests": int(requests),
        "records": int(records),
        "wall_s": round(wall_s, 3),
        "achieved_rps": round(achieved, 3),
        "documented_limit_rps": documented_limit_rps,
        "utilisation_pct": round(100.0 * achieved / documented_limit_rps, 1) if documented_limit_rps else None,
        "rate_violations": int(rate_violations),
        "requests_per_1000_records": round(1000.0 * requests / records, 2) if records else None,
    }
