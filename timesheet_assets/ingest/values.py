"""Lenient readers for values vendors format loosely."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_utc_timestamp(value: Any) -> datetime | None:
    """An ISO timestamp as an aware UTC datetime, or ``None`` when it is not one.

    Accepts a trailing ``Z``, .NET's seven fractional digits (Python takes six) and naive
    values, which are read as UTC (the vendors that send them name no zone).
    """
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        if "." in text:
            head, _, tail = text.partition(".")
            digits = "".join(ch for ch in tail if ch.isdigit())
            rest = tail[len(digits) :]
            text = f"{head}.{digits[:6]}{rest}" if digits else head + rest
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. year 1 with a positive offset has no UTC
        return None
