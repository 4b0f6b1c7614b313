"""Process-wide settings read from the environment (names fixed in DESIGN.md)."""

from __future__ import annotations

import os
from datetime import date

VENDOR_NAMES: tuple[str, ...] = ("aimsio", "ajera", "aims360", "blikk", "ibuildapp")


class SettingError(ValueError):
    """A misconfigured environment variable; the message names the variable."""


def enabled_vendors(raw: str | None = None) -> tuple[str, ...]:
    """Vendors named in ``TIMESHEET_VENDORS`` (comma list; default all five), in canonical order."""
    raw = os.environ.get("TIMESHEET_VENDORS", "") if raw is None else raw
    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    if not names:
        return VENDOR_NAMES
    unknown = sorted(set(names) - set(VENDOR_NAMES))
    if unknown:
        raise SettingError(
            f"TIMESHEET_VENDORS names unknown vendor(s) {', '.join(unknown)}; "
            f"known vendors are {', '.join(VENDOR_NAMES)}"
        )
    return tuple(v for v in VENDOR_NAMES if v in names)


def warehouse_path() -> str:
    return os.environ.get("TIMESHEET_WAREHOUSE", "warehouse.duckdb")


def partitions_start_date() -> str:
    """First day of the daily timesheet partitions (``TIMESHEET_START_DATE``, ISO date)."""
    raw = os.environ.get("TIMESHEET_START_DATE", "2024-01-01")
    try:
        date.fromisoformat(raw)
    except ValueError as exc:
        raise SettingError(f"TIMESHEET_START_DATE must be an ISO date (YYYY-MM-DD), got {raw!r}") from exc
    return raw
