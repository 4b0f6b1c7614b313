"""Raw iBuildApp assets: ``raw/ibuildapp/time_entries`` (daily partitions on the start day)
and ``raw/ibuildapp/projects`` (full refresh).

Time entries have no updated-at filter (``ts/search`` filters by start time only), so an
approval or payment that lands after a day was loaded is picked up by re-reading that day:
the schedule re-materializes a trailing lookback window, and each run replaces its days.

A run reads the pages as they arrive (``load_time_entries``): every 20,000 entries are validated
and typed together — in one pydantic-core call against a strict schema for entries of the usual
shape, per record with the lenient ``TimeEntry`` for the rest — and only compact columns are
kept; the side tables are joined once per distinct (user, task, project), and duplicates across
pages and entries outside the window are resolved at the end. The frame is the one the
per-record reference path (``time_entry_spec``) gives; ``tests/benchmarks`` checks both agree.
"""

import gc
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping

import dagster as dg
import numpy as np
import pandas as pd

from ...ingest import (
    DATE_WINDOW_BACKFILL,
    QUARANTINE_CHECK,  # noqa: F401 - re-exported: the check's name next to the assets
    RawFrame,
    RawSpec,
    build_raw_frame,
    cyclic_gc_paused,
    daily_partitions,
    partition_window,
    permanent_errors_fail_fast,
    quarantine_check_result,
    quarantine_check_spec,
    raw_asset_defaults,
    raw_output,
)
from ...ingest.metadata import column_schema, frame_preview
from ...ingest.records import (
    INGESTED_COLUMN,
    KEY_COLUMN,
    PAYLOAD_COLUMN,
    QUARANTINE_COLUMN,
    FastPath,
    unkeyed_key,
)
from .models import Client, Project, Task, TimeEntry, TimeEntryFast, User, epoch_to_utc, lenient
from .resource import TIME_ENTRY_SIDE_TABLES, IBuildAppResource, SearchResult, dedup_key

VENDOR = "ibuildapp"
TIME_ENTRIES_KEY = dg.AssetKey(["raw", VENDOR, "time_entries"])
SIDE_TABLES_KEY = dg.AssetKey(["raw", VENDOR, "time_entry_side_tables"])
PROJECTS_KEY = dg.AssetKey(["raw", VENDOR, "projects"])

TIME_ENTRY_COLUMNS: Mapping[str, str] = {
    "work_date": "date",
    "user_id": "string",
    "employee_name": "string",
    "task_id": "string",
    "task_name": "string",
    "project_id": "string",
    "project_name": "string",
    "client_id": "string",
    "start_time": "datetime64[ns, UTC]",
    "end_time": "datetime64[ns, UTC]",
    "duration_seconds": "Float64",
    "breaks": "Int64",
    "comments": "Int64",
    "status": "string",
    "payment_status": "string",
    "approve_date": "datetime64[ns, UTC]",
    "updated_at": "datetime64[ns, UTC]",
}

PROJECT_COLUMNS: Mapping[str, str] = {
    "name": "string",
    "description": "string",
    "category": "string",
    "status": "string",
    "client_id": "string",
    "client_name": "string",
    "duration_unit": "string",
    "planned_start_date": "datetime64[ns, UTC]",
    "actual_start_date": "datetime64[ns, UTC]",
    "planned_end_date": "datetime64[ns, UTC]",
    "actual_end_date": "datetime64[ns, UTC]",
    "estimated_duration": "Float64",
    "actual_duration": "Float64",
    "task_count": "Int64",
    "task_names": "string",
    "updated_at": "datetime64[ns, UTC]",
    "related_payload": "string",
}


def _record_id(record: Mapping[str, Any]) -> Any:
    return record.get("id")


def _task_ids(value: Any) -> list[str]:
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    return [str(item) for item in items if item is not None and not isinstance(item, (dict, list))]


# The columns an entry takes from the side tables (``_joined``); the others it has by itself.
JOINED_COLUMNS = ("employee_name", "task_name", "project_id", "project_name", "client_id")
RECORD_COLUMNS: Mapping[str, str] = {
    name: dtype for name, dtype in TIME_ENTRY_COLUMNS.items() if name not in JOINED_COLUMNS
}
# The entry's own ``project_id`` (an undocumented extra some accounts send), used by the join
# when its task names no project; dropped once the join is done.
ENTRY_PROJECT = "_entry_project_id"


def _entry_project_id(entry: TimeEntry) -> str | None:
    extra = entry.model_extra
    return str(extra["project_id"]) if extra and extra.get("project_id") is not None else None


def _entry_fields(resource: IBuildAppResource, entry: TimeEntry) -> dict[str, Any]:
    """The columns one entry gives by itself (everything but the side-table join)."""
    return {
        "record_key": entry.id,
        "work_date": resource.work_date(entry.start_time),
        "user_id": entry.user_id,
        "task_id": entry.task_id,
        "start_time": entry.start_time,
        "end_time": entry.end_time,
        "duration_seconds": entry.duration,
        "breaks": entry.breaks,
        "comments": entry.comments,
        "status": entry.status,
        "payment_status": entry.payment_status,
        "approve_date": entry.approve_date,
        "updated_at": entry.updated,
    }


def _joined(
    related: Mapping[str, Mapping[str, Mapping[str, Any]]],
    user_id: str | None,
    task_id: str | None,
    entry_project_id: str | None,
) -> dict[str, Any]:
    """The columns an entry takes from the ``users``/``tasks``/``projects`` side tables: the
    names and the project (the task's, else the entry's own ``project_id``). The objects
    themselves are kept once per day by ``side_table_frame``."""
    user_raw = related.get("users", {}).get(user_id) if user_id is not None else None
    task_raw = related.get("tasks", {}).get(task_id) if task_id else None
    user = lenient(User, user_raw)
    task = lenient(Task, task_raw)
    project_id = task.project if task and task.project else None
    if project_id is None:
        project_id = entry_project_id
    project_raw = related.get("projects", {}).get(project_id) if project_id else None
    project = lenient(Project, project_raw)
    return {
        "employee_name": user.display_name if isinstance(user, User) else None,
        "task_name": task.name if task else None,
        "project_id": project_id,
        "project_name": project.name if project else None,
        "client_id": project.client_id if project else None,
    }


def time_entry_spec(
    resource: IBuildAppResource, related: Mapping[str, Mapping[str, Mapping[str, Any]]], first: date, last: date
) -> RawSpec[TimeEntry]:
    """Entries → raw rows one record at a time, side tables joined per row (the reference
    path; a run uses ``load_time_entries``, which gives the same frame page by page)."""

    def to_rows(entry: TimeEntry) -> Iterable[Mapping[str, Any]]:
        row = _entry_fields(resource, entry)
        row.update(_joined(related, entry.user_id, entry.task_id, _entry_project_id(entry)))
        yield row

    return RawSpec(
        model=TimeEntry,
        columns=TIME_ENTRY_COLUMNS,
        to_rows=to_rows,
        key_of=_record_id,
        date_column="work_date",
        date_of=_window_day(resource, first, last),
    )


def _window_day(resource: IBuildAppResource, first: date, last: date) -> Callable[[Mapping[str, Any]], date | None]:
    def date_of(record: Mapping[str, Any]) -> date | None:
        day = _start_day(resource, record)
        return day if day is not None and first <= day <= last else None

    return date_of


# -- the page-by-page path -------------------------------------------------------------------
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
        # TimeEntry's "end_time is before start_time": left to the per-record path.
        rejected = (end_seconds != 0) & (end_seconds < starts)
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
    frame[INGESTED_COLUMN] = pd.Timestamp(ingested_at).tz_convert("UTC") if len(frame) else pd.Series(
        dtype="datetime64[ns, UTC]"
    )
    quarantined = int(frame[QUARANTINE_COLUMN].notna().sum())
    return RawFrame(frame=frame, records_served=len(frame), quarantined=quarantined), duplicates, int(outside.sum())


# ``raw/ibuildapp/time_entry_side_tables`` keeps each users/tasks/projects object the day's
# entries joined, once per day, as served: beside the entries rather than copied onto each of
# them, since a task object alone (it lists every user who booked on it) outweighs the entry
# and a day holds thousands of entries but tens of distinct objects.
# Which entry column names the object of each side table:
SIDE_TABLE_REFERENCES = (("users", "user_id"), ("tasks", "task_id"), ("projects", "project_id"))


def side_table_frame(
    entries: pd.DataFrame,
    related: Mapping[str, Mapping[str, Mapping[str, Any]]],
    ingested_at: datetime,
) -> pd.DataFrame:
    """One row per work day and side-table object the day's valid entries joined
    (``SIDE_TABLE_REFERENCES``), the object as served in ``payload``; ``record_key`` is
    ``<side table>:<object id>``, unique within a day. Rows are ordered by day, table, id."""
    valid = np.flatnonzero(entries[QUARANTINE_COLUMN].isna().to_numpy()) if len(entries) else np.zeros(0, int)
    day_codes, days = pd.factorize(entries["work_date"].to_numpy(dtype=object)[valid])
    columns: dict[str, list[Any]] = {"work_date": [], "side_table": [], "object_id": [], PAYLOAD_COLUMN: []}
    for table, column in SIDE_TABLE_REFERENCES:
        served = related.get(table, {})
        ids = entries[column].to_numpy(dtype=object, na_value=None)[valid]
        id_codes, uniques = pd.factorize(ids)  # None -> -1
        known = np.array([object_id in served for object_id in uniques], dtype=bool)
        keep = (id_codes >= 0) & (day_codes >= 0)
        keep[keep] = known[id_codes[keep]]
        width = max(len(uniques), 1)
        pairs = _distinct_sorted(day_codes[keep].astype(np.int64) * width + id_codes[keep], len(days) * width)
        pair_days, pair_ids = np.divmod(pairs, width)
        payloads = np.array([_side_payload(served[u]) if k else None for u, k in zip(uniques, known)], dtype=object)
        columns["work_date"].extend(days[pair_days])
        columns["side_table"].extend([table] * len(pairs))
        columns["object_id"].extend(str(v) for v in np.asarray(uniques, dtype=object)[pair_ids])
        columns[PAYLOAD_COLUMN].extend(payloads[pair_ids])
    frame = pd.DataFrame(columns, dtype=object)
    frame = frame.sort_values(["work_date", "side_table", "object_id"], kind="stable", ignore_index=True)
    out = pd.DataFrame(
        {
            KEY_COLUMN: pd.array(frame["side_table"] + ":" + frame["object_id"], dtype="string"),
            "work_date": frame["work_date"].astype(object),
            "side_table": pd.array(frame["side_table"], dtype="string"),
            "object_id": pd.array(frame["object_id"], dtype="string"),
            PAYLOAD_COLUMN: pd.array(frame[PAYLOAD_COLUMN], dtype="string"),
        }
    )
    out[INGESTED_COLUMN] = pd.Series(pd.Timestamp(ingested_at).tz_convert("UTC"), index=out.index,
                                     dtype="datetime64[ns, UTC]")
    return out


def _distinct_sorted(codes: np.ndarray, space: int) -> np.ndarray:
    """The distinct values of ``codes`` (integers in ``0..space-1``), ascending: a bitmap when
    the space is small (days × objects usually is), else ``np.unique``."""
    if space <= 64 * max(len(codes), 1_000_000):
        seen = np.zeros(space, dtype=bool)
        seen[codes] = True
        return np.flatnonzero(seen)
    return np.unique(codes)


def _side_payload(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


@dataclass
class TimeEntryLoad:
    """What a run of ``raw/ibuildapp/time_entries`` read: the search's pages and count, and
    what the run's rules removed."""

    pages: int
    reported_count: int | None
    duplicates_dropped: int
    outside_window: int
    side_tables: pd.DataFrame


# Records typed together: large enough that pandas' per-call costs vanish, small enough that
# the raw dicts of one batch are a few tens of MB.
BATCH_RECORDS = 20_000


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
    a long read holds compact columns, never every entry as Python objects. The frame is the one ``time_entry_spec`` gives for the search's
    records (tests/benchmarks check it); the processing benchmark runs exactly this."""
    ingested_at = ingested_at or datetime.now(timezone.utc)
    spec = record_spec(resource, first, last)
    related: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in TIME_ENTRY_SIDE_TABLES}
    frames: list[pd.DataFrame] = []
    pending: list[Any] = []
    pages = 0
    reported: int | None = None
    # The automatic collector is paused for the whole read, page parsing included (where most
    # of its time went); each batch's cyclic garbage is collected right after the batch.
    with cyclic_gc_paused():
        for page in resource.iter_time_entry_pages(first, last):
            pages += 1
            reported = page.reported_count
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
        raw, duplicates, outside = finish_time_entries(frames, related, ingested_at)
        side_tables = side_table_frame(raw.frame, related, ingested_at)
    return raw, TimeEntryLoad(pages, reported, duplicates, outside, side_tables)


def project_spec(related: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> RawSpec[Project]:
    tasks = related.get("tasks", {})
    clients = related.get("clients", {})

    def to_rows(project: Project) -> Iterable[Mapping[str, Any]]:
        client_raw = clients.get(project.client_id) if project.client_id else None
        client = lenient(Client, client_raw)
        task_ids = _task_ids(project.tasks)
        task_models = [lenient(Task, tasks.get(t)) for t in task_ids]
        names = [t.name for t in task_models if t is not None and t.name]
        yield {
            "record_key": project.id,
            "name": project.name,
            "description": project.description,
            "category": project.category,
            "status": project.status,
            "client_id": project.client_id,
            "client_name": client.name if client else None,
            "duration_unit": project.duration_unit,
            "planned_start_date": project.planned_start_date,
            "actual_start_date": project.actual_start_date,
            "planned_end_date": project.planned_end_date,
            "actual_end_date": project.actual_end_date,
            "estimated_duration": project.estimated_duration,
            "actual_duration": project.actual_duration,
            "task_count": len(task_ids),
            "task_names": "; ".join(names) if names else None,
            "updated_at": project.updated,
            "related_payload": json.dumps(
                {"client": client_raw, "tasks": {t: tasks.get(t) for t in task_ids}},
                separators=(",", ":"),
                default=str,
            ),
        }

    return RawSpec(model=Project, columns=PROJECT_COLUMNS, to_rows=to_rows, key_of=_record_id)


def _start_day(resource: IBuildAppResource, record: Any) -> date | None:
    if not isinstance(record, Mapping):
        return None
    try:
        start = epoch_to_utc(record.get("start_time"))
    except ValueError:
        return None
    return resource.work_date(start) if start is not None else None


def split_by_window(
    resource: IBuildAppResource, records: Iterable[Any], first: date, last: date
) -> tuple[list[Any], int]:
    """Entries whose start day is inside the window (unreadable ones too: they are
    quarantined on ``first``), and how many started outside it."""
    inside: list[Any] = []
    outside = 0
    for record in records:
        day = _start_day(resource, record)
        if day is not None and not first <= day <= last:
            outside += 1
            continue
        inside.append(record)
    return inside, outside


def _search_metadata(result: SearchResult | TimeEntryLoad, logins: int) -> dict[str, Any]:
    return {
        "search_pages": result.pages,
        "vendor_count": result.reported_count if result.reported_count is not None else -1,
        "duplicates_dropped": result.duplicates_dropped,
        "logins": logins,
    }


COMMON: dict[str, Any] = raw_asset_defaults(VENDOR)


ENTRY_OUT_DEFAULTS: dict[str, Any] = dict(
    group_name=COMMON["group_name"],
    kinds=COMMON["kinds"],
    owners=COMMON["owners"],
    metadata={"partition_expr": "work_date"},
    dagster_type=pd.DataFrame,
    # The step can be subset (either asset alone); the function yields exactly the selected.
    is_required=False,
)
TIME_ENTRIES_OUTPUT = TIME_ENTRIES_KEY.to_python_identifier()
SIDE_TABLES_OUTPUT = SIDE_TABLES_KEY.to_python_identifier()


@dg.multi_asset(
    name="time_entries",
    outs={
        TIME_ENTRIES_OUTPUT: dg.AssetOut(
            key=TIME_ENTRIES_KEY,
            description=(
                "iBuildApp time entries (ts/search) by UTC day of start_time, with user, task and "
                "project names joined from the same calls. Re-read a trailing window to pick up "
                "late approvals: entries have no updated-at."
            ),
            **ENTRY_OUT_DEFAULTS,
        ),
        SIDE_TABLES_OUTPUT: dg.AssetOut(
            key=SIDE_TABLES_KEY,
            description=(
                "The users, tasks and projects objects each day's iBuildApp time entries joined "
                "(ts/search `with` side tables), once per day and object, as served."
            ),
            **ENTRY_OUT_DEFAULTS,
        ),
    },
    partitions_def=daily_partitions(),
    check_specs=[quarantine_check_spec(TIME_ENTRIES_KEY)],
    backfill_policy=DATE_WINDOW_BACKFILL,
    pool=COMMON["pool"],
    retry_policy=COMMON["retry_policy"],
    can_subset=True,
)
def time_entries(
    context: dg.AssetExecutionContext, ibuildapp: IBuildAppResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    first, last = partition_window(context)
    before, logins_before = ibuildapp.metrics.snapshot(), ibuildapp.logins
    with permanent_errors_fail_fast():
        raw, result = load_time_entries(ibuildapp, first, last)
    outside = result.outside_window
    delta = ibuildapp.metrics.snapshot() - before
    context.log.info(
        f"iBuildApp ts/search {first}..{last}: {raw.records_served} entries in {result.pages} "
        f"page(s), {raw.quarantined} quarantined, {outside} outside the window"
    )
    selected = context.selected_asset_keys
    if TIME_ENTRIES_KEY in selected:
        yield raw_output(
            raw,
            delta,
            output_name=TIME_ENTRIES_OUTPUT,
            window_first=first.isoformat(),
            window_last=last.isoformat(),
            outside_window_dropped=outside,
            **_search_metadata(result, ibuildapp.logins - logins_before),
        )
        yield quarantine_check_result(TIME_ENTRIES_KEY, raw)
    if SIDE_TABLES_KEY in selected:
        sides = result.side_tables
        yield dg.Output(
            sides,
            output_name=SIDE_TABLES_OUTPUT,
            metadata={
                "rows": len(sides),
                **{f"{table}_objects": int((sides["side_table"] == table).sum()) for table, _ in SIDE_TABLE_REFERENCES},
                "window_first": first.isoformat(),
                "window_last": last.isoformat(),
                "preview": frame_preview(sides),
                "dagster/column_schema": column_schema(sides),
            },
        )


@dg.asset(
    key=PROJECTS_KEY,
    description="iBuildApp projects (project/search, full refresh) with client and task names.",
    check_specs=[quarantine_check_spec(PROJECTS_KEY)],
    **COMMON,
)
def projects(
    context: dg.AssetExecutionContext, ibuildapp: IBuildAppResource
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    before, logins_before = ibuildapp.metrics.snapshot(), ibuildapp.logins
    with permanent_errors_fail_fast():
        result = ibuildapp.search_projects()
    raw = build_raw_frame(project_spec(result.related), result.records)
    delta = ibuildapp.metrics.snapshot() - before
    context.log.info(
        f"iBuildApp project/search: {raw.records_served} projects in {result.pages} page(s), "
        f"{raw.quarantined} quarantined"
    )
    yield raw_output(raw, delta, **_search_metadata(result, ibuildapp.logins - logins_before))
    yield quarantine_check_result(PROJECTS_KEY, raw)


ASSETS = (time_entries, projects)


def definitions(resource_factory: Callable[[], IBuildAppResource] = IBuildAppResource.from_env) -> dg.Definitions:
    return dg.Definitions(assets=list(ASSETS), resources={VENDOR: resource_factory()})
