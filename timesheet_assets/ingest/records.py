"""Validate vendor records with pydantic, keep every payload, quarantine what does not parse.

Each raw table row carries: ``record_key``, the parsed columns, ``payload`` (the record as the
vendor sent it, JSON text), ``quarantine_reason`` (null when valid) and ``ingested_at``.
Invalid records are rows too, with null parsed columns and the validation error, so
``rows served = valid rows + quarantined rows`` always holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar

import pandas as pd
import pydantic_core
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

KEY_COLUMN = "record_key"
PAYLOAD_COLUMN = "payload"
QUARANTINE_COLUMN = "quarantine_reason"
INGESTED_COLUMN = "ingested_at"


def quarantine_reason(exc: Exception) -> str:
    """A short, value-free description of why a record was rejected."""
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_url=False, include_input=False)[:5]:
            loc = ".".join(str(p) for p in error["loc"]) or "<record>"
            parts.append(f"{loc}: {error['msg']}")
        more = exc.error_count() - len(parts)
        if more > 0:
            parts.append(f"... and {more} more")
        return "; ".join(parts)
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class RawSpec(Generic[M]):
    """How one vendor entity becomes raw rows.

    ``columns`` maps each parsed column to its pandas dtype; ``to_rows`` turns one validated
    record into one or more rows (Ajera explodes a week into days); ``key_of`` and
    ``date_of`` read the key and partition date leniently from the raw dict so that even a
    quarantined record lands in the right partition and can be traced.
    """

    model: type[M]
    columns: Mapping[str, str]
    to_rows: Callable[[M], Iterable[Mapping[str, Any]]]
    key_of: Callable[[Mapping[str, Any]], Any]
    date_column: str | None = None
    date_of: Callable[[Mapping[str, Any]], date | None] | None = None


@dataclass
class RawFrame:
    frame: pd.DataFrame
    records_served: int
    quarantined: int
    models: list[Any] = field(default_factory=list)

    @property
    def valid_rows(self) -> int:
        return int(self.frame[QUARANTINE_COLUMN].isna().sum())


def _lenient_key(spec: RawSpec, record: Any, index: int) -> str:
    try:
        key = spec.key_of(record) if isinstance(record, dict) else None
    except Exception:  # noqa: BLE001 - a broken record must still get a key
        key = None
    return str(key) if key not in (None, "") else f"unkeyed:{index}"


def _payload_text(record: Any) -> str:
    try:
        return pydantic_core.to_json(record).decode()
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
        return json.dumps(record, separators=(",", ":"), default=str)


def _quarantined_row(
    spec: RawSpec, record: Any, index: int, reason: str, default_date: date | None
) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in spec.columns}
    if spec.date_column:
        when = None
        if spec.date_of is not None and isinstance(record, dict):
            try:
                when = spec.date_of(record)
            except Exception:  # noqa: BLE001 - the record is already known to be broken
                when = None
        row[spec.date_column] = when or default_date
    row[KEY_COLUMN] = _lenient_key(spec, record, index)
    row[PAYLOAD_COLUMN] = _payload_text(record)
    row[QUARANTINE_COLUMN] = reason
    return row


def _validate_all(spec: RawSpec[M], records: list[Any]) -> list[Any]:
    """Validate every record; an exception instance stands in for each invalid one."""
    validate = spec.model.model_validate
    results: list[Any] = []
    for record in records:
        if type(record) is not dict:
            results.append(TypeError("record is not a JSON object"))
            continue
        try:
            results.append(validate(record))
        except ValidationError as exc:
            results.append(exc)
    return results


def build_raw_frame(
    spec: RawSpec[M],
    records: Iterable[Any],
    *,
    default_date: date | None = None,
    ingested_at: datetime | None = None,
    keep_models: bool = False,
) -> RawFrame:
    ingested_at = ingested_at or datetime.now(timezone.utc)
    records = list(records)
    rows: list[dict[str, Any]] = []
    models: list[Any] = []
    quarantined = 0
    empty = {c: None for c in spec.columns}
    for index, (record, outcome) in enumerate(zip(records, _validate_all(spec, records))):
        if isinstance(outcome, Exception):
            quarantined += 1
            rows.append(_quarantined_row(spec, record, index, quarantine_reason(outcome), default_date))
            continue
        try:
            produced = list(spec.to_rows(outcome))
        except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, OSError) as exc:
            # e.g. an epoch far outside any calendar (OverflowError/OSError from datetime).
            quarantined += 1
            rows.append(_quarantined_row(spec, record, index, quarantine_reason(exc), default_date))
            continue
        if keep_models:
            models.append(outcome)
        payload = _payload_text(record)
        for produced_row in produced:
            row = {**empty, **produced_row}
            if row.get(KEY_COLUMN) is None:
                row[KEY_COLUMN] = _lenient_key(spec, record, index)
            row[PAYLOAD_COLUMN] = payload
            row[QUARANTINE_COLUMN] = None
            rows.append(row)
    frame = typed_frame(rows, spec.columns)
    frame[INGESTED_COLUMN] = pd.Timestamp(ingested_at).tz_convert("UTC") if len(frame) else pd.Series(
        dtype="datetime64[ns, UTC]"
    )
    return RawFrame(frame=frame, records_served=len(records), quarantined=quarantined, models=models)


def typed_frame(rows: list[dict[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    ordered = [KEY_COLUMN, *columns, PAYLOAD_COLUMN, QUARANTINE_COLUMN]
    frame = pd.DataFrame.from_records(rows, columns=ordered)
    dtypes = {KEY_COLUMN: "string", PAYLOAD_COLUMN: "string", QUARANTINE_COLUMN: "string", **columns}
    return coerce_dtypes(frame, dtypes)


def coerce_dtypes(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """Cast columns to the declared dtypes; ``date`` means Python dates (DuckDB ``DATE``)."""
    for column, dtype in dtypes.items():
        if column not in frame.columns:
            frame[column] = None
        if dtype == "date":
            frame[column] = pd.to_datetime(frame[column], errors="coerce").dt.date.astype("object")
            frame.loc[frame[column].isna(), column] = None
        elif dtype.startswith("datetime64"):
            frame[column] = pd.to_datetime(frame[column], utc=True, errors="coerce")
        else:
            frame[column] = frame[column].astype(dtype)
    return frame
