"""Validate vendor records with pydantic, keep every payload, quarantine what does not parse.

Each raw table row carries: ``record_key``, the parsed columns, ``payload`` (the record as the
vendor sent it, JSON text), ``quarantine_reason`` (null when valid) and ``ingested_at``.
Invalid records are rows too, with null parsed columns and the validation error, so
``rows served = valid rows + quarantined rows`` always holds.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
import pydantic_core
from pandas.api.types import infer_dtype
from pydantic import BaseModel, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)

KEY_COLUMN = "record_key"
PAYLOAD_COLUMN = "payload"
QUARANTINE_COLUMN = "quarantine_reason"
INGESTED_COLUMN = "ingested_at"

# What the columns every raw table has mean (a vendor may describe ``record_key`` more
# precisely in its own descriptions).
SHARED_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    KEY_COLUMN: "The record's key at the vendor (unkeyed:<digest of the payload> for a record "
    "without one); a key lives on one day of a partitioned table.",
    PAYLOAD_COLUMN: "The record exactly as the vendor served it (JSON text), valid or not.",
    QUARANTINE_COLUMN: "Why the record failed validation (its parsed columns are then empty); "
    "empty for a valid record.",
    INGESTED_COLUMN: "When this pipeline fetched the record from the vendor (UTC).",
}


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while parsing and typing records.

    Parsed JSON holds no reference cycles: reference counting frees all of it as usual. But
    allocating hundreds of thousands of dicts makes the collector walk every tracked object
    again and again (about a third of the time of a large read). It runs again on exit (as it
    was: nested uses and callers that had it off are left alone).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
class FastPath:
    """An optional vectorised route through ``build_raw_frame`` for records of the usual shape.

    ``item`` is a *strict* pydantic type (typically a ``TypedDict`` of strict fields): the
    whole batch is validated against ``list[item]`` in one pydantic-core call, without a
    Python call per record. It must accept only records the lenient ``RawSpec.model`` also
    accepts, and for those ``columns(validated)`` must compute exactly the one row
    ``to_rows`` would (``record_key`` and the spec's columns, as arrays, one entry per
    record). ``columns`` returns ``(columns, rejected)``; ``rejected`` (a boolean array or
    ``None``) sends records back to the per-record path, for checks the strict type cannot
    state (e.g. one field before another). Everything the fast path does not accept takes the
    per-record path, so the frame is the same either way: valid rows, quarantined rows with
    their reasons, one payload per record.
    """

    item: Any
    columns: Callable[[list[dict[str, Any]]], tuple[Mapping[str, Any], Any]]

    @property
    def adapter(self) -> TypeAdapter:
        return _list_adapter(self.item)


@cache
def _list_adapter(item: Any) -> TypeAdapter:
    """``TypeAdapter(list[item])``, built once per item type (building it takes milliseconds)."""
    return TypeAdapter(list[item])


@dataclass(frozen=True)
class RawSpec(Generic[M]):
    """How one vendor entity becomes raw rows.

    ``columns`` maps each parsed column to its pandas dtype and ``descriptions`` each column
    to what it means (shown in the catalog with the type the warehouse stores); ``to_rows`` turns one validated
    record into one or more rows (Ajera explodes a week into days); ``key_of`` and
    ``date_of`` read the key and partition date leniently from the raw dict so that even a
    quarantined record lands in the right partition and can be traced. ``fast`` (optional)
    is a vectorised route for the records of the usual shape (see ``FastPath``).
    """

    model: type[M]
    columns: Mapping[str, str]
    to_rows: Callable[[M], Iterable[Mapping[str, Any]]]
    key_of: Callable[[Mapping[str, Any]], Any]
    date_column: str | None = None
    date_of: Callable[[Mapping[str, Any]], date | None] | None = None
    fast: FastPath | None = None
    descriptions: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RawFrame:
    frame: pd.DataFrame
    records_served: int
    quarantined: int
    models: list[Any] = field(default_factory=list)
    # Column -> what it means (``RawSpec.descriptions``; the shared columns need none).
    descriptions: Mapping[str, str] = field(default_factory=dict)
    # For each row of ``frame``, the position of its record among the records given.
    record_index: Any = None

    @property
    def valid_rows(self) -> int:
        return int(self.frame[QUARANTINE_COLUMN].isna().sum())


def _lenient_key(spec: RawSpec, record: Any) -> str:
    """The record's own key, or ``unkeyed:<digest of the payload>`` for a record without one:
    stable across runs, so the warehouse's key-on-one-day rule replaces such a record where it
    reappears instead of deleting an unrelated one that shares a position in another batch."""
    try:
        key = spec.key_of(record) if isinstance(record, dict) else None
    except Exception:  # noqa: BLE001 - a broken record must still get a key
        key = None
    if key not in (None, ""):
        return str(key)
    return unkeyed_key(_payload_text(record))


def unkeyed_key(payload: str) -> str:
    """The key of a record that carries none: a digest of its payload text."""
    return "unkeyed:" + hashlib.sha1(payload.encode()).hexdigest()[:16]


def _payload_text(record: Any) -> str:
    try:
        return pydantic_core.to_json(record).decode()
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
        return json.dumps(record, separators=(",", ":"), default=str)


def _payload_texts(records: list[Any]) -> list[str]:
    """``_payload_text`` of each record; one call per record into pydantic-core."""
    to_json = pydantic_core.to_json
    try:
        return [to_json(record).decode() for record in records]
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
        return [_payload_text(record) for record in records]


def _quarantined_row(spec: RawSpec, record: Any, index: int, reason: str, default_date: date | None) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in spec.columns}
    if spec.date_column:
        when = None
        if spec.date_of is not None and isinstance(record, dict):
            try:
                when = spec.date_of(record)
            except Exception:  # noqa: BLE001 - the record is already known to be broken
                when = None
        row[spec.date_column] = when or default_date
    row[KEY_COLUMN] = _lenient_key(spec, record)
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
    ingested_at = ingested_at or datetime.now(UTC)
    with cyclic_gc_paused():
        records = list(records)
        fast: tuple[pd.DataFrame, list[int]] | None = None
        slow: Sequence[int] = range(len(records))
        if spec.fast is not None and records and not keep_models:
            fast, slow = _fast_rows(spec, spec.fast, records)
        rows, positions, quarantined, models = _record_rows(spec, records, slow, default_date, keep_models)
        if fast is None:
            frame = typed_frame(rows, spec.columns)
        elif rows:
            frame = _merge_in_order(fast[0], fast[1], typed_frame(rows, spec.columns), positions)
            positions = [*fast[1], *positions]
        else:
            frame = fast[0]
            positions = fast[1]
    frame[INGESTED_COLUMN] = (
        pd.Timestamp(ingested_at).tz_convert("UTC") if len(frame) else pd.Series(dtype="datetime64[ns, UTC]")
    )
    return RawFrame(
        frame=frame,
        records_served=len(records),
        quarantined=quarantined,
        models=models,
        descriptions=spec.descriptions,
        # Rows come in the order of their records: each row's record is the sorted positions.
        record_index=np.sort(np.asarray(positions, dtype=np.int64)),
    )


def _record_rows(
    spec: RawSpec[M],
    records: list[Any],
    indices: Sequence[int],
    default_date: date | None,
    keep_models: bool,
) -> tuple[list[dict[str, Any]], list[int], int, list[Any]]:
    """The per-record path for ``records[i]``, ``i`` in ``indices``: rows, the record index of
    each row, how many records were quarantined, and the valid models (``keep_models``)."""
    rows: list[dict[str, Any]] = []
    positions: list[int] = []
    models: list[Any] = []
    quarantined = 0
    empty = {c: None for c in spec.columns}
    chosen = [records[i] for i in indices]
    for index, record, outcome in zip(indices, chosen, _validate_all(spec, chosen)):
        if isinstance(outcome, Exception):
            quarantined += 1
            rows.append(_quarantined_row(spec, record, index, quarantine_reason(outcome), default_date))
            positions.append(index)
            continue
        try:
            produced = list(spec.to_rows(outcome))
        except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, OSError) as exc:
            # e.g. an epoch far outside any calendar (OverflowError/OSError from datetime).
            quarantined += 1
            rows.append(_quarantined_row(spec, record, index, quarantine_reason(exc), default_date))
            positions.append(index)
            continue
        if keep_models:
            models.append(outcome)
        payload = _payload_text(record)
        for produced_row in produced:
            row = {**empty, **produced_row}
            if row.get(KEY_COLUMN) is None:
                row[KEY_COLUMN] = _lenient_key(spec, record)
            row[PAYLOAD_COLUMN] = payload
            row[QUARANTINE_COLUMN] = None
            rows.append(row)
            positions.append(index)
    return rows, positions, quarantined, models


def _validate_batch(adapter: TypeAdapter, records: list[Any], candidates: list[int]) -> tuple[list[Any], list[int]]:
    """Validate ``records[i]`` for the candidates in one call; the validated items and the
    indices they belong to (candidates that fail are left out)."""
    try:
        return adapter.validate_python([records[i] for i in candidates]), candidates
    except ValidationError as exc:
        failed = {
            error["loc"][0]
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
            if error["loc"]
        }
    accepted = [i for position, i in enumerate(candidates) if position not in failed]
    try:
        return adapter.validate_python([records[i] for i in accepted]), accepted
    except ValidationError:  # pragma: no cover - a subset of valid items is valid
        return [], []


def _fast_rows(
    spec: RawSpec[M], fast: FastPath, records: list[Any]
) -> tuple[tuple[pd.DataFrame, list[int]] | None, list[int]]:
    """The typed frame of the records the fast path takes (with their indices), and the
    indices of the records left for the per-record path."""
    candidates = [i for i, record in enumerate(records) if type(record) is dict]
    validated, accepted = _validate_batch(fast.adapter, records, candidates) if candidates else ([], [])
    if not accepted:
        return None, list(range(len(records)))
    columns, rejected = fast.columns(validated)
    frame = pd.DataFrame({name: columns[name] for name in (KEY_COLUMN, *spec.columns) if name in columns})
    if rejected is not None:
        rejected = np.asarray(rejected, dtype=bool)
        if rejected.any():
            frame = frame[~rejected].reset_index(drop=True)
            accepted = [i for i, out in zip(accepted, rejected) if not out]
    frame[PAYLOAD_COLUMN] = _payload_texts([records[i] for i in accepted])
    frame[QUARANTINE_COLUMN] = None
    frame = coerce_dtypes(frame.reindex(columns=_ordered(spec.columns)), _dtypes(spec.columns))
    taken = set(accepted)
    slow = [i for i in range(len(records)) if i not in taken] if len(taken) < len(records) else []
    return (frame, accepted), slow


def _merge_in_order(
    fast: pd.DataFrame, fast_positions: list[int], slow: pd.DataFrame, slow_positions: list[int]
) -> pd.DataFrame:
    """Fast-path and per-record rows together, in the order of the records they came from."""
    merged = pd.concat([fast, slow], ignore_index=True)
    order = np.argsort(np.asarray([*fast_positions, *slow_positions]), kind="stable")
    return merged.take(order).reset_index(drop=True)


def _ordered(columns: Mapping[str, str]) -> list[str]:
    return [KEY_COLUMN, *columns, PAYLOAD_COLUMN, QUARANTINE_COLUMN]


def _dtypes(columns: Mapping[str, str]) -> dict[str, str]:
    return {KEY_COLUMN: "string", PAYLOAD_COLUMN: "string", QUARANTINE_COLUMN: "string", **columns}


def typed_frame(rows: list[dict[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=_ordered(columns))
    return coerce_dtypes(frame, _dtypes(columns))


# The calendar days pandas can hold at nanosecond resolution (``pd.Timestamp.min``/``max``);
# outside them ``pd.to_datetime(..., errors="coerce")`` gives NaT, i.e. a null date.
_FIRST_NS_DAY = date(1677, 9, 22)
_LAST_NS_DAY = date(2262, 4, 11)


def _plain_dates(series: pd.Series) -> bool:
    """True when ``series`` already holds only ``datetime.date`` objects (or nulls) that the
    ``date`` coercion would return unchanged, so that the per-value conversion can be skipped."""
    if series.dtype != object:
        return False
    kind = infer_dtype(series, skipna=True)
    if kind == "empty":
        return True
    if kind != "date":
        return False
    values = pd.unique(series[series.notna()])
    return all(type(v) is date for v in values) and min(values) >= _FIRST_NS_DAY and max(values) <= _LAST_NS_DAY


def coerce_dtypes(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """Cast columns to the declared dtypes; ``date`` means Python dates (DuckDB ``DATE``)."""
    for column, dtype in dtypes.items():
        if column not in frame.columns:
            frame[column] = None
        if dtype == "date":
            if not _plain_dates(frame[column]):
                frame[column] = pd.to_datetime(frame[column], errors="coerce").dt.date.astype("object")
            if frame[column].isna().any():
                frame.loc[frame[column].isna(), column] = None
        elif str(frame[column].dtype) == dtype:
            continue  # already typed (e.g. by a fast path): nothing to convert
        elif dtype.startswith("datetime64"):
            frame[column] = pd.to_datetime(frame[column], utc=True, errors="coerce")
        else:
            frame[column] = frame[column].astype(dtype)
    return frame
