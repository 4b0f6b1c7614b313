"""Typing an exported view: one raw frame whatever the output format.

Views are user-defined grids with no fixed schema, so column types are inferred from the
values, the same way for every format (JSON, CSV and Excel exports of the same data give
equal frames). A value a typed column cannot hold exactly makes the column text instead.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from typing import Any

import pandas as pd

from ...ingest import RawSpec, build_raw_frame
from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN
from .models import ViewRow
from .views import snake_case

_RESERVED = {KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN, INGESTED_COLUMN}
_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_KINDS = ("boolean", "Int64", "Float64", "date", "datetime64[ns, UTC]", "string")
_INT64 = (-(2**63), 2**63 - 1)
# Dates and timestamps outside what pandas holds in nanoseconds (1677-09-21 .. 2262-04-11)
# would turn into nulls or wrap around in a typed column: such columns stay text.
_YEARS = (1678, 2261)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _fits(kind: str, value: Any) -> bool:
    text = value.strip() if isinstance(value, str) else None
    if kind == "boolean":
        return isinstance(value, bool) or (text is not None and text.lower() in ("true", "false"))
    if isinstance(value, bool):
        return kind == "string"
    if kind == "Int64":
        if isinstance(value, int):
            return _INT64[0] <= value <= _INT64[1]
        return text is not None and _int64_text(text)
    if kind == "Float64":
        if isinstance(value, int):
            # Integers beyond int64 would lose digits as floats: the column stays text.
            return _INT64[0] <= value <= _INT64[1]
        if isinstance(value, float):
            return True
        # Leading zeros mark codes ("007"), not numbers.
        return (
            text is not None
            and bool(_FLOAT.match(text))
            and not re.match(r"^[+-]?0\d", text)
            and _finite_float_text(text)
            and (_int64_text(text) or not _INT.match(text))
        )
    if kind == "date":
        return text is not None and bool(_DATE.match(text)) and _valid_date(text)
    if kind == "datetime64[ns, UTC]":
        if text is None:
            return False
        if _DATE.match(text):
            return _valid_date(text)
        return bool(_DATETIME.match(text)) and _utc_timestamp(text) is not None
    return True


def _finite_float_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:  # "e5" matches the pattern but is no number
        return False


def _int64_text(text: str) -> bool:
    # Length first: Python refuses to convert strings of thousands of digits.
    return bool(_INT.match(text)) and len(text.lstrip("+-")) <= 19 and _INT64[0] <= int(text) <= _INT64[1]


def _valid_date(text: str) -> bool:
    try:
        return _YEARS[0] <= date.fromisoformat(text).year <= _YEARS[1]
    except ValueError:
        return False


def _utc_timestamp(text: str) -> pd.Timestamp | None:
    """The timestamp in UTC, or ``None`` when it does not parse or falls outside the years a
    typed column can hold (offsets such as ``+99:99`` included)."""
    try:
        stamp = pd.Timestamp(text)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    except (ValueError, OverflowError):
        return None
    if pd.isna(stamp) or not _YEARS[0] <= stamp.year <= _YEARS[1]:
        return None
    return stamp


def _convert(kind: str, value: Any) -> Any:
    if _blank(value):
        return None
    if kind == "boolean":
        return value if isinstance(value, bool) else value.strip().lower() == "true"
    if kind == "Int64":
        return value if isinstance(value, int) else int(value.strip())
    if kind == "Float64":
        return float(value.strip() if isinstance(value, str) else value)
    if kind == "date":
        return date.fromisoformat(value.strip())
    if kind == "datetime64[ns, UTC]":
        # Parsed one by one: a column mixing dates, seconds and fractions must not lose the
        # values pandas' format inference would not match.
        stamp = _utc_timestamp(value.strip())
        if stamp is None:
            raise ValueError(f"not a timestamp: {value!r}")
        return stamp
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return _utf8(str(value))


def _utf8(text: str) -> str:
    """Text the warehouse can store: JSON may escape lone surrogates (``"\\ud800"``), which no
    UTF-8 column holds; they become U+FFFD here (``payload`` keeps the escape as served)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def infer_kind(values: list[Any]) -> str:
    present = [v for v in values if not _blank(v)]
    if not present:
        return "string"
    return next(kind for kind in _KINDS if all(_fits(kind, v) for v in present))


def column_names(headers: list[str]) -> dict[str, str]:
    """Vendor column → warehouse column: snake case, unique, clear of the raw-table columns."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for position, header in enumerate(headers, start=1):
        base = snake_case(str(header)) or f"column_{position}"
        if base[0].isdigit():
            base = f"c_{base}"
        if base in _RESERVED:
            base = f"view_{base}"
        name, suffix = base, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        names[header] = name
    return names


# Columns every view table has; the view's own columns are known once it is exported.
VIEW_FIXED_COLUMN_DESCRIPTIONS = {KEY_COLUMN: "The row's position in the export (1 for the first row)."}


def view_frame(records: list[Any]):
    """Raw frame of an exported view: one row per exported row, typed columns inferred from
    the values (so JSON, CSV and Excel exports of the same data give equal frames), the
    row as served in ``payload`` and the 1-based row number as ``record_key``."""
    headers: list[str] = []
    for record in records:
        if isinstance(record, dict):
            for header in record:
                if header not in headers:
                    headers.append(header)
    names = column_names(headers)
    kinds = {header: infer_kind([r.get(header) for r in records if isinstance(r, dict)]) for header in headers}
    columns = {names[h]: kinds[h] for h in headers}

    def to_rows(model: ViewRow):
        values = model.model_extra or {}
        yield {names[h]: _convert(kinds[h], values.get(h)) for h in headers}

    # Views have no fixed schema: each column says which exported column it holds.
    descriptions = {
        **VIEW_FIXED_COLUMN_DESCRIPTIONS,
        **{names[h]: f"The view's column {h!r} as exported (typed from its values)." for h in headers},
    }
    spec = RawSpec(model=ViewRow, columns=columns, to_rows=to_rows, key_of=lambda _: None, descriptions=descriptions)
    raw = build_raw_frame(spec, records)
    raw.frame[KEY_COLUMN] = pd.array([str(i) for i in range(1, len(raw.frame) + 1)], dtype="string")
    return raw, names
