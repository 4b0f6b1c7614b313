"""``raw/ibuildapp/time_entries`` of a window, page by page (``load_time_entries``).

Every 20,000 entries are validated and typed together — in one pydantic-core call against a
strict schema for entries of the usual shape, per record with the lenient ``TimeEntry`` for the
rest — and only compact columns are kept; the side tables are joined once per distinct (user,
task, project), and duplicates across pages and entries outside the window are resolved at the
end. The frame is the one the per-record reference path (``records.time_entry_spec``) gives;
``tests/benchmarks`` checks both agree.

A walk of the search that the list moved under (``listing.py``) is read again; when no walk is
clean the union of the walks is kept if it holds every record the vendor still counts, and the
run fails otherwise.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ...ingest import FastPath, RawFrame, RawSpec, build_raw_frame, cyclic_gc_paused
from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN, unkeyed_key
from .listing import ListRead, read_until_clean, require_complete_union
from .models import MAX_ENTRY_SECONDS, TimeEntry, TimeEntryFast
from .records import (
    ENTRY_PROJECT,
    JOINED_COLUMNS,
    RECORD_COLUMNS,
    TIME_ENTRY_COLUMN_DESCRIPTIONS,
    TIME_ENTRY_COLUMNS,
    _entry_fields,
    _entry_project_id,
    _joined,
    _record_id,
    _start_day,
    _window_day,
)
from .resource import TIME_ENTRY_SEARCH, TIME_ENTRY_SIDE_TABLES, IBuildAppResource, dedup_key
from .side_tables import side_table_frame

_EPOCH_DAY = date(1970, 1, 1)


def _texts(values: list[Any]) -> list[str | None]:
    """``str`` of integer ids, one shared string object per distinct id."""
    cache: dict[Any, str] = {}
    out: list[str | None] = []
    append = out.append
    for value in values:
        if value is None:
            append(None)
            continue
        text = cache.get(value)
        if text is None:
            text = cache[value] = str(value)
        append(text)
    return out


def _epochs(values: list[Any]) -> pd.Series:
    """Integer epoch seconds (``None``/``0``: not set) as UTC timestamps."""
    seconds = np.fromiter((v or 0 for v in values), dtype=np.int64, count=len(values))
    stamps = pd.Series(pd.to_datetime(seconds, unit="s", utc=True))
    return stamps.where(seconds != 0)


def _local_days(stamps: pd.Series, zone: Any) -> np.ndarray:
    """The calendar day of each UTC timestamp in ``zone`` as ``datetime.date`` objects (one
    object per distinct day)."""
    local = stamps.dt.tz_convert(zone).dt.tz_localize(None)
    days = local.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    codes, uniques = pd.factorize(days)
    objects = np.array([_EPOCH_DAY + timedelta(days=int(d)) for d in uniques], dtype=object)
    return objects[codes]


def record_spec(resource: IBuildAppResource, first: date, last: date) -> RawSpec[TimeEntry]:
    """Entries → raw rows without the side-table join (``join_side_tables`` adds it once for
    the whole run), with the vectorised fast path for entries of the usual shape."""

    def to_rows(entry: TimeEntry) -> Iterable[Mapping[str, Any]]:
        row = _entry_fields(resource, entry)
        row[ENTRY_PROJECT] = _entry_project_id(entry)
        yield row

    zone = resource.zone

    def fast_columns(items: list[dict[str, Any]]) -> tuple[dict[str, Any], np.ndarray]:
        get = lambda name: [item.get(name) for item in items]  # noqa: E731
        starts = np.fromiter((item["start_time"] for item in items), dtype=np.int64, count=len(items))
        start = pd.Series(pd.to_datetime(starts, unit="s", utc=True))
        ends = get("end_time")
        end_seconds = np.fromiter((v or 0 for v in ends), dtype=np.int64, count=len(items))
        columns = {
            "record_key": [str(item["id"]) for item in items],
            "work_date": _local_days(start, zone),
            "user_id": _texts([item["user_id"] for item in items]),
            "task_id": _texts(get("task_id")),
            "start_time": start,
            "end_time": _epochs(ends),
            "duration_seconds": pd.array(get("duration"), dtype="Float64"),
            "breaks": pd.array(get("breaks"), dtype="Int64"),
            "comments": pd.array(get("comments"), dtype="Int64"),
            "status": get("status"),
            "payment_status": get("payment_status"),
            "approve_date": _epochs(get("approve_date")),
            "updated_at": _epochs(get("updated")),
            ENTRY_PROJECT: [str(v) if v is not None else None for v in get("project_id")],
        }
        # TimeEntry's "end_time is before start_time" and "no duration and end_time more than
        # 31 days after start_time": left to the per-record path, which names the reason.
        no_duration = np.fromiter((d is None for d in get("duration")), dtype=bool, count=len(items))
        ended = end_seconds != 0
        rejected = (ended & (end_seconds < starts)) | (ended & no_duration & (end_seconds - starts > MAX_ENTRY_SECONDS))
        return columns, rejected

    return RawSpec(
        model=TimeEntry,
        columns={**RECORD_COLUMNS, ENTRY_PROJECT: "string"},
        to_rows=to_rows,
        key_of=_record_id,
        date_column="work_date",
        date_of=_window_day(resource, first, last),
        fast=FastPath(item=TimeEntryFast, columns=fast_columns),
    )


def _unkeyed(record: Any) -> bool:
    """Whether ``build_raw_frame`` had to make up this record's key (``unkeyed_key``)."""
    return not isinstance(record, dict) or _record_id(record) in (None, "")


# Helper columns of the batches' frames, gone from the result.
DEDUP, OUTSIDE, UNKEYED = "_dedup_key", "_outside_window", "_unkeyed"


def batch_frame(
    resource: IBuildAppResource,
    spec: RawSpec[TimeEntry],
    rows: list[Any],
    first: date,
    last: date,
    ingested_at: datetime,
) -> pd.DataFrame:
    """One batch's raw rows (one per record) with what ``finish_time_entries`` needs to apply
    the run's rules afterwards: the search's identity of each record, whether its start day
    lies outside the window, whether its key was made up."""
    with cyclic_gc_paused():
        return _batch_frame(resource, spec, rows, first, last, ingested_at)


def _batch_frame(
    resource: IBuildAppResource,
    spec: RawSpec[TimeEntry],
    rows: list[Any],
    first: date,
    last: date,
    ingested_at: datetime,
) -> pd.DataFrame:
    frame = build_raw_frame(spec, rows, default_date=first, ingested_at=ingested_at).frame
    frame[DEDUP] = _dedup_keys(rows, frame[KEY_COLUMN].to_numpy(dtype=object))
    quarantined = frame[QUARANTINE_COLUMN].notna().to_numpy()
    # A valid entry's work_date is its start day; a quarantined one's is read leniently.
    days = frame["work_date"].to_numpy(dtype=object, copy=True)
    unkeyed = np.zeros(len(frame), dtype=bool)
    for position in np.flatnonzero(quarantined):
        days[position] = _start_day(resource, rows[position])
        unkeyed[position] = _unkeyed(rows[position])
    codes, uniques = pd.factorize(pd.Series(days, dtype=object))
    outside_day = np.array([not first <= day <= last for day in uniques], dtype=bool)
    frame[OUTSIDE] = np.where(codes >= 0, outside_day[codes] if len(uniques) else False, False)
    frame[UNKEYED] = unkeyed
    return frame


def _dedup_keys(rows: list[Any], keys: np.ndarray) -> list[str | None]:
    """``dedup_key`` of each record. For an integer id it equals the row's ``record_key``
    (``str(id)``, valid or quarantined), whose string is reused rather than made again."""
    out: list[str | None] = []
    append = out.append
    for row, key in zip(rows, keys):
        if type(row) is dict and type(row.get("id")) is int:
            append(key)
        else:
            append(dedup_key(row))
    return out


def _resolve_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Each search identity once: the newest copy (last page), in the place of the first —
    what ``IBuildAppResource.search`` does with the records."""
    key = frame[DEDUP]
    codes, _ = pd.factorize(key)
    keyed = codes >= 0
    if not keyed.any() or len(np.unique(codes[keyed])) == int(keyed.sum()):
        return frame, 0
    positions = np.arange(len(frame))
    first_seen = pd.Series(positions[keyed]).groupby(codes[keyed]).min()
    last_seen = pd.Series(positions[keyed]).groupby(codes[keyed]).max()
    keep = ~keyed
    keep[last_seen.to_numpy()] = True
    place = positions.copy()
    place[keyed] = first_seen.reindex(codes[keyed]).to_numpy()
    kept = np.flatnonzero(keep)
    order = kept[np.argsort(place[kept], kind="stable")]
    return frame.take(order).reset_index(drop=True), int(keyed.sum() - len(last_seen))


def join_side_tables(frame: pd.DataFrame, related: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """Add the side-table columns (``_joined``) to ``frame``'s valid rows (in place), computed
    once per distinct (user, task, entry project) rather than once per row."""
    valid_rows = np.flatnonzero(frame[QUARANTINE_COLUMN].isna().to_numpy())
    keys = [frame[name].to_numpy(dtype=object, na_value=None) for name in ("user_id", "task_id", ENTRY_PROJECT)]
    codes = np.full(len(frame), -1, dtype=np.int64)
    representatives = np.array([], dtype=np.int64)
    if len(valid_rows):
        combined = np.zeros(len(valid_rows), dtype=np.int64)
        for values in keys:
            part = pd.factorize(values[valid_rows])[0].astype(np.int64) + 1  # None -> 0
            combined = pd.factorize(combined * (int(part.max()) + 1) + part)[0].astype(np.int64)
        codes[valid_rows] = combined
        # Codes count up in order of first appearance: the first row of each code.
        representatives = valid_rows[np.unique(combined, return_index=True)[1]]
    users, tasks, projects = keys
    joined = [_joined(related, users[row], tasks[row], projects[row]) for row in representatives]
    slots = np.where(codes >= 0, codes, len(joined))  # the extra last slot: None
    for name in JOINED_COLUMNS:
        values = np.empty(len(joined) + 1, dtype=object)
        values[:-1] = [j[name] for j in joined]
        values[-1] = None
        frame[name] = pd.array(values[slots], dtype="string")
    return frame


def finish_time_entries(
    frames: list[pd.DataFrame],
    related: Mapping[str, Mapping[str, Mapping[str, Any]]],
    ingested_at: datetime,
) -> tuple[RawFrame, int, int]:
    """The run's raw frame from its batches' frames: duplicates resolved, entries that started
    outside the window dropped, made-up keys numbered as one list, side tables joined. Returns
    the frame, duplicates dropped and entries outside the window."""
    with cyclic_gc_paused():
        return _finish_time_entries(frames, related, ingested_at)


def _finish_time_entries(
    frames: list[pd.DataFrame],
    related: Mapping[str, Mapping[str, Mapping[str, Any]]],
    ingested_at: datetime,
) -> tuple[RawFrame, int, int]:
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frames.clear()  # the batches' frames are copied: let them go now
    frame, duplicates = _resolve_duplicates(frame)
    outside = frame[OUTSIDE].to_numpy(dtype=bool)
    if outside.any():
        frame = frame[~outside].reset_index(drop=True)
    unkeyed = np.flatnonzero(frame[UNKEYED].to_numpy(dtype=bool))
    if len(unkeyed):
        keys = frame[KEY_COLUMN].to_numpy(dtype=object, copy=True)
        payloads = frame[PAYLOAD_COLUMN].to_numpy(dtype=object)
        keys[unkeyed] = [unkeyed_key(payloads[position]) for position in unkeyed]
        frame[KEY_COLUMN] = pd.array(keys, dtype="string")
    join_side_tables(frame, related)
    # The columns in their order, without copying them again (no helper columns).
    ordered = [KEY_COLUMN, *TIME_ENTRY_COLUMNS, PAYLOAD_COLUMN, QUARANTINE_COLUMN]
    frame = pd.DataFrame({name: frame[name].reset_index(drop=True) for name in ordered}, copy=False)
    frame[INGESTED_COLUMN] = (
        pd.Timestamp(ingested_at).tz_convert("UTC") if len(frame) else pd.Series(dtype="datetime64[ns, UTC]")
    )
    quarantined = int(frame[QUARANTINE_COLUMN].notna().sum())
    raw = RawFrame(
        frame=frame, records_served=len(frame), quarantined=quarantined, descriptions=TIME_ENTRY_COLUMN_DESCRIPTIONS
    )
    return raw, duplicates, int(outside.sum())


@dataclass
class TimeEntryLoad:
    """What a run of ``raw/ibuildapp/time_entries`` read: the search's pages and count, what the
    run's rules removed, and how the walks went (``reads``; ``complete`` when one was clean)."""

    pages: int
    reported_count: int | None
    duplicates_dropped: int
    outside_window: int
    side_tables: pd.DataFrame
    reads: int = 1
    complete: bool = True
    count_checkable: bool = False
    problems: list[str] = field(default_factory=list)
    # Kept from an earlier walk although the last one did not serve them (possibly deleted
    # during the reads): record_key, work_date, user_id.
    not_in_last_read: list[dict[str, str]] = field(default_factory=list)


# Records typed together: large enough that pandas' per-call costs vanish, small enough that
# the raw dicts of one batch are a few tens of MB.
BATCH_RECORDS = 20_000


@dataclass
class _Walk:
    frames: list[pd.DataFrame]
    read: ListRead
    distinct: int


def _distinct(frames: list[pd.DataFrame]) -> tuple[int, set[str]]:
    """Distinct records of a walk (by the search's identity; records without one count each)
    and the identities."""
    keys = pd.concat([f[DEDUP] for f in frames], ignore_index=True) if frames else pd.Series([], dtype=object)
    identities = set(keys.dropna())
    return len(identities) + int(keys.isna().sum()), identities


def _walk(
    resource: IBuildAppResource,
    spec: RawSpec[TimeEntry],
    related: dict[str, dict[str, dict[str, Any]]],
    first: date,
    last: date,
    ingested_at: datetime,
    batch_records: int,
) -> _Walk:
    read = ListRead()
    frames: list[pd.DataFrame] = []
    pending: list[Any] = []
    for page in resource.iter_time_entry_pages(first, last):
        read.observe(page)
        for name in TIME_ENTRY_SIDE_TABLES:
            related[name].update(page.related.get(name, {}))
        pending.extend(page.rows)
        if len(pending) >= batch_records:
            frames.append(batch_frame(resource, spec, pending, first, last, ingested_at))
            pending = []
            # pandas' intermediates of the batch sit in reference cycles: free them now
            # (all young, so this is quick) rather than let them pile up until the end.
            gc.collect(0)
    if pending or not frames:
        frames.append(batch_frame(resource, spec, pending, first, last, ingested_at))
    return _Walk(frames, read, _distinct(frames)[0])


def load_time_entries(
    resource: IBuildAppResource,
    first: date,
    last: date,
    *,
    ingested_at: datetime | None = None,
    batch_records: int = BATCH_RECORDS,
) -> tuple[RawFrame, TimeEntryLoad]:
    """What ``raw/ibuildapp/time_entries`` computes for a window, as the pages arrive: every
    ``batch_records`` entries are validated and typed together (the vectorised fast path for
    entries of the usual shape, the per-record path for the rest) and their dicts dropped, so
    a long read holds compact columns, never every entry as Python objects. The processing
    benchmark runs exactly this."""
    ingested_at = ingested_at or datetime.now(UTC)
    spec = record_spec(resource, first, last)
    related: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in TIME_ENTRY_SIDE_TABLES}
    # The automatic collector is paused for the whole read, page parsing included (where most
    # of its time went); each batch's cyclic garbage is collected right after the batch.
    pages = 0
    with cyclic_gc_paused():

        def read_once() -> tuple[_Walk, ListRead, int]:
            nonlocal pages
            walk = _walk(resource, spec, related, first, last, ingested_at, batch_records)
            pages += walk.read.pages
            return walk, walk.read, walk.distinct

        outcome = read_until_clean(resource, TIME_ENTRY_SEARCH, read_once)
        last_walk = outcome.kept[-1]
        last_identities = _distinct(last_walk.frames)[1] if not outcome.clean else set()
        frames = [frame for walk in outcome.kept for frame in walk.frames]
        raw, duplicates, outside = finish_time_entries(frames, related, ingested_at)
        if not outcome.clean:
            require_complete_union(resource, TIME_ENTRY_SEARCH, outcome, len(raw.frame) + outside)
            # Copies of the same record in several walks are not duplicates the list served.
            duplicates = last_walk.read.rows - last_walk.distinct
        side_tables = side_table_frame(raw.frame, related, ingested_at)
    load = TimeEntryLoad(
        pages=pages,
        reported_count=outcome.last.last_count,
        duplicates_dropped=duplicates,
        outside_window=outside,
        side_tables=side_tables,
        reads=outcome.reads,
        complete=outcome.clean,
        count_checkable=outcome.last.checkable,
        problems=outcome.problems,
        not_in_last_read=_not_in(raw.frame, last_identities) if not outcome.clean else [],
    )
    return raw, load


def _not_in(frame: pd.DataFrame, identities: set[str], limit: int = 50) -> list[dict[str, str]]:
    """Rows of ``frame`` whose key the last walk did not serve (at most ``limit``)."""
    keys = frame[KEY_COLUMN].astype(object)
    stale = frame[~keys.isin(identities) & ~keys.str.startswith("unkeyed:", na=False)].head(limit)
    return [
        {"record_key": str(row[KEY_COLUMN]), "work_date": str(row["work_date"]), "user_id": str(row["user_id"])}
        for _, row in stale.iterrows()
    ]
