"""Process-wide settings read from the environment (names fixed in docs/contracts.md)."""

from __future__ import annotations

import os
import re
from datetime import date

VENDOR_NAMES: tuple[str, ...] = ("aimsio", "ajera", "aims360", "blikk", "ibuildapp")


class SettingError(ValueError):
    """A misconfigured environment variable; the message names the variable."""


def first_number_setting(
    names: tuple[str, ...], default: float, *, whole: bool, unit: str, minimum: float = 1
) -> float:
    """The first of ``names`` set in the environment (a vendor's own name before the
    project-wide one), as a number of ``unit``; ``default`` when none is set."""
    for name in names:
        raw = os.environ.get(name)
        if raw is None or not raw.strip():
            continue
        try:
            value = int(raw) if whole else float(raw)
        except ValueError:
            kind = "a whole number of" if whole else "a number of"
            raise SettingError(f"{name} must be {kind} {unit}, got {raw!r}") from None
        if value < minimum:
            least = unit[:-1] if minimum == 1 and unit.endswith("s") else unit
            raise SettingError(f"{name} must be at least {minimum:g} {least}, got {raw}")
        return value
    return default


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
    """``TIMESHEET_WAREHOUSE``: a DuckDB file path (default ``warehouse.duckdb``) or a
    ``postgresql://`` URL; ``storage.target.parse_target`` reads it."""
    return os.environ.get("TIMESHEET_WAREHOUSE", "warehouse.duckdb")


def warehouse_password() -> str | None:
    """``TIMESHEET_WAREHOUSE_PASSWORD``: the PostgreSQL password when the URL carries none."""
    return os.environ.get("TIMESHEET_WAREHOUSE_PASSWORD") or None


def warehouse_lock_wait_seconds() -> float:
    """How long a DuckDB write waits for another process to release the file
    (``TIMESHEET_WAREHOUSE_LOCK_WAIT_SECONDS``, default 120)."""
    raw = os.environ.get("TIMESHEET_WAREHOUSE_LOCK_WAIT_SECONDS", "120").strip()
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise SettingError(f"TIMESHEET_WAREHOUSE_LOCK_WAIT_SECONDS must be a number of seconds, got {raw!r}")
    return value


def warehouse_memory_limit() -> str:
    """DuckDB's memory budget per warehouse connection (``TIMESHEET_WAREHOUSE_MEMORY_LIMIT``,
    DuckDB's size syntax, default ``1GB``). DuckDB's own default is 80 % of the machine's RAM,
    which several concurrent runs writing large partitions would overcommit; above the budget
    it writes finished blocks out instead of holding them."""
    raw = os.environ.get("TIMESHEET_WAREHOUSE_MEMORY_LIMIT", "1GB").strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", raw, flags=re.IGNORECASE):
        raise SettingError(f"TIMESHEET_WAREHOUSE_MEMORY_LIMIT must be a size such as 512MB or 2GB, got {raw!r}")
    return raw


def partitions_start_date() -> str:
    """First day of the daily timesheet partitions (``TIMESHEET_START_DATE``, ISO date)."""
    raw = os.environ.get("TIMESHEET_START_DATE", "2024-01-01")
    try:
        date.fromisoformat(raw)
    except ValueError as exc:
        raise SettingError(f"TIMESHEET_START_DATE must be an ISO date (YYYY-MM-DD), got {raw!r}") from exc
    return raw
