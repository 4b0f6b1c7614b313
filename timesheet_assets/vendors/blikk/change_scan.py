"""Which Blikk time reports changed since the previous run, on any work date.

Time reports have no updated-since filter, but the list sorts by four timestamps the server
sets (``GET /v1/Core/TimeReports?sortBy=…&sortOrder=descending``, no date filter):

* ``updatedDate`` moves on ``PUT /v1/Core/TimeReports/:id`` — an edit, and a change of
  ``date`` (a report moved to another day keeps its id);
* ``createdDate`` is set once, when a report is created (a late report on an old day);
* ``attestedDate`` and ``sentToAttestDate`` are set when a report is attested or sent to
  attest. Attesting does not move ``updatedDate``: the document's example report was sent to
  attest and attested two hours after it was created and still has ``updatedDate: null``.

Each field is read newest first, page by page, down to the previous scan's *mark*: the newest
value that scan saw plus the ids holding exactly that value and a fingerprint of each
(timestamps have whole seconds; several reports can share one — a bulk attest, or one report
edited twice within a second, the second edit after the scan read the first). A report above
the mark, at it with another id, or at it with the same id but different content, changed. A mark over an hour old by this machine's clock when it was taken is
*settled*: nothing can be stamped with it any more, so the next scan stops at it at once
instead of re-reading every report that shares its second.
A scan with no previous mark (the very first run, or a field added later) reads until the
first value below the newest one — normally one page — and reports nothing: without a
baseline every report ever written would count as changed, and the days it would name were
never loaded or were just loaded by the run itself (deletions and anything older are the
weekly deep refresh's).

Where reports without a value go in a sorted list is not documented. Values that run out
mid-walk end it (nulls sort last); a first page that holds only reports without a value
means nulls sort first, and the first page with values is found by bisection (log2(pages)
requests) instead of reading every null page. A walk of more than one page re-reads its
first page: if the head of the list moved meanwhile (an edit pushes a report to the top and
shifts the rest, so one could slip past a page boundary unseen) the field is walked again,
once; a list still moving, or values out of the requested order, leave that field's mark
where it was so the next run walks the same stretch again.

Deletions cannot be seen by any scan; the daily window and the weekly deep refresh find them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg

from ...schedules import DAYS_TO_REREAD
from .models import ListEnvelope, parse_blikk_date, parse_blikk_datetime
from .resource import TIME_REPORTS_PATH, BlikkResource, _page_count, _record_id

SCAN_FIELDS = ("updatedDate", "createdDate", "attestedDate", "sentToAttestDate")
WATERMARK_KEY = "change_scan_watermark"
WATERMARK_VERSION = 1
# A stamp this much older than this machine's clock is final: the server stamps changes with
# its own "now", so unless its clock runs an hour behind ours nothing new can still get it.
# Reports sharing a settled mark's second are then not re-read by every later scan.
SETTLED_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Mark:
    """The newest value one sort field showed and the ids holding it. ``at`` None: the list
    held no value for the field yet, so every value that appears later is new. ``settled``:
    ``at`` was older than ``SETTLED_AFTER`` by this machine's clock when the mark was taken,
    so no report can still be stamped with it and the ids are not needed."""

    at: datetime | None
    ids: Mapping[str, str] = field(default_factory=dict)
    settled: bool = False

    def covers(self, value: datetime, ident: str | None, fingerprint: str = "") -> bool:
        """Whether a report showing ``value`` was already there, as it is now, when this mark
        was taken. A mark written before fingerprints were kept (empty) trusts the id."""
        if self.at is None:
            return False
        if value < self.at:
            return True
        if value != self.at:
            return False
        if self.settled:
            return True
        if ident is None or ident not in self.ids:
            return False
        seen = self.ids[ident]
        return not seen or seen == fingerprint

    def below(self, value: datetime) -> bool:
        """Whether everything after ``value`` in a newest-first list is covered."""
        return self.at is not None and (value < self.at or (self.settled and value == self.at))

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat() if self.at is not None else None,
            "ids": [] if self.settled else sorted(self.ids, key=lambda i: (len(i), i)),
            "fingerprints": {} if self.settled else dict(self.ids),
            "settled": self.settled,
        }

    @classmethod
    def from_json(cls, value: Any) -> Mark | None:
        if not isinstance(value, Mapping):
            return None
        try:
            at = parse_blikk_datetime(value.get("at"))
        except (TypeError, ValueError):
            return None
        ids = value.get("ids") or []
        fingerprints = value.get("fingerprints") or {}
        if not isinstance(ids, list) or not isinstance(fingerprints, Mapping):
            return None
        return cls(
            at=at,
            ids={str(i): str(fingerprints.get(str(i), "")) for i in ids},
            settled=value.get("settled") is True,
        )


def fingerprint(item: Any) -> str:
    """A short digest of a report's content, to tell an edit within the mark's second."""
    text = json.dumps(item, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _value(item: Any, sort_field: str) -> tuple[datetime | None, bool]:
    """(value, readable). A missing or empty value is (None, True); text that is not a
    timestamp is (None, False)."""
    if not isinstance(item, Mapping):
        return None, False
    try:
        return parse_blikk_datetime(item.get(sort_field)), True
    except (TypeError, ValueError):
        return None, False


def _has_value(envelope: ListEnvelope, sort_field: str) -> bool:
    return any(_value(item, sort_field)[0] is not None for item in envelope.items)


@dataclass
class _Walk:
    """One newest-first pass over one sort field."""

    previous: Mark | None
    sort_field: str
    changed: dict[str, Any] = field(default_factory=dict)
    top: datetime | None = None
    top_ids: dict[str, str] = field(default_factory=dict)
    head: tuple[Any, ...] | None = None
    start_page: int = 1
    walked_pages: int = 0
    last_value: datetime | None = None
    seen_value: bool = False
    reached_mark: bool = False
    out_of_order: bool = False
    cap_hit: bool = False
    unreadable: int = 0

    def absorb(self, items: list[Any]) -> bool:
        """Take one page; True when the walk is done (it reached the previous mark, or the
        values ran out)."""
        for position, item in enumerate(items):
            value, readable = _value(item, self.sort_field)
            if value is None:
                if not readable:
                    self.unreadable += 1
                    continue
                if self.seen_value:
                    self.reached_mark = True  # nulls sort last: nothing older follows
                    return True
                continue
            ident = _record_id(item)
            digest = fingerprint(item)
            if self.last_value is not None and value > self.last_value:
                self.out_of_order = True
            self.last_value = value
            self.seen_value = True
            if self.top is None or value > self.top:
                self.top, self.top_ids = value, {ident: digest} if ident else {}
            elif value == self.top and ident:
                self.top_ids[ident] = digest
            if self.previous is None:
                if value < self.top:
                    self.reached_mark = True
                    return True
                continue
            if self.previous.covers(value, ident, digest):
                if self.previous.below(value):
                    self.reached_mark = True
                    return True
                continue
            self.changed[ident or f"unkeyed:{self.walked_pages}:{position}"] = item
        return False

    def mark(self, now: datetime) -> Mark:
        settled = self.top is not None and now - self.top >= SETTLED_AFTER
        return Mark(self.top, dict(self.top_ids), settled)


def _head(envelope: ListEnvelope, sort_field: str) -> tuple[Any, ...]:
    first = next((item for item in envelope.items if _value(item, sort_field)[0] is not None), None)
    return (
        envelope.totalItemCount,
        _record_id(first) if first is not None else None,
        _value(first, sort_field)[0] if first is not None else None,
    )


def _first_page_with_values(
    get: Callable[[int], ListEnvelope], sort_field: str, low: int, high: int
) -> tuple[int, ListEnvelope]:
    """Nulls sort first: the smallest page in ``low``..``high`` holding a value (the pages
    after it all do), by bisection."""
    pages: dict[int, ListEnvelope] = {}
    while low < high:
        middle = (low + high) // 2
        pages[middle] = get(middle)
        if _has_value(pages[middle], sort_field) or not pages[middle].items:
            high = middle
        else:
            low = middle + 1
    return low, pages.get(low) or get(low)


def _walk(resource: BlikkResource, sort_field: str, previous: Mark | None) -> tuple[_Walk, int]:
    params = {"sortBy": sort_field, "sortOrder": "descending"}
    requests = 0

    def get(page: int) -> ListEnvelope:
        nonlocal requests
        requests += 1
        return resource.list_page(TIME_REPORTS_PATH, params, page)

    walk = _Walk(previous=previous, sort_field=sort_field)
    envelope = get(1)
    page_count = _page_count(envelope, resource.page_size)
    page = 1
    if envelope.items and not _has_value(envelope, sort_field) and (page_count or 0) > 1:
        page, envelope = _first_page_with_values(get, sort_field, 2, page_count or 2)
    walk.start_page = page
    walk.head = _head(envelope, sort_field)
    while True:
        walk.walked_pages += 1
        if walk.absorb(envelope.items) or not envelope.items:
            break
        page_count = _page_count(envelope, resource.page_size) or page_count
        if page_count is not None and page >= page_count:
            break
        if page_count is None and len(envelope.items) < (envelope.pageSize or resource.page_size):
            break
        if page >= resource.max_pages:
            walk.cap_hit = True
            break
        page += 1
        envelope = get(page)
    return walk, requests


@dataclass
class FieldScan:
    """What scanning one sort field found, and the mark the next scan starts from."""

    sort_field: str
    previous: Mark | None
    changed: dict[str, Any]
    next_mark: Mark | None
    page_requests: int
    walks: int
    complete: bool
    out_of_order: bool
    unreadable: int

    @property
    def first_run(self) -> bool:
        return self.previous is None


def scan_field(resource: BlikkResource, sort_field: str, previous: Mark | None) -> FieldScan:
    changed: dict[str, Any] = {}
    requests = walks = 0
    walk: _Walk | None = None
    stable = False
    for walks in range(1, resource.max_list_walks + 1):
        walk, spent = _walk(resource, sort_field, previous)
        requests += spent
        changed.update(walk.changed)
        if walk.walked_pages <= 1:
            stable = True
            break
        again = resource.list_page(
            TIME_REPORTS_PATH, {"sortBy": sort_field, "sortOrder": "descending"}, walk.start_page
        )
        requests += 1
        if _head(again, sort_field) == walk.head:
            stable = True
            break
        resource.client.log.warning(
            "Blikk time reports sorted by %s moved while they were scanned%s",
            sort_field,
            "; scanning again" if walks < resource.max_list_walks else "",
        )
    assert walk is not None
    complete = stable and not walk.out_of_order and not walk.cap_hit
    if walk.out_of_order:
        resource.client.log.warning(
            "Blikk did not return time reports sorted by %s descending; the scan cannot stop "
            "at its mark, which stays where it was",
            sort_field,
        )
    now = resource.client.clock.now()
    if previous is None:
        next_mark = walk.mark(now)
    elif not complete or walk.top is None or (previous.at is not None and walk.top < previous.at):
        # Unsure what was skipped, or the newest value seen is older than the mark (the
        # reports holding it were deleted): the old mark still says what has been seen.
        next_mark = previous
    else:
        next_mark = walk.mark(now)
    return FieldScan(
        sort_field=sort_field,
        previous=previous,
        changed=changed,
        next_mark=next_mark,
        page_requests=requests,
        walks=walks,
        complete=complete,
        out_of_order=walk.out_of_order,
        unreadable=walk.unreadable,
    )


@dataclass
class ChangeScan:
    fields: list[FieldScan]

    @property
    def changed(self) -> dict[str, Any]:
        records: dict[str, Any] = {}
        for scan in self.fields:
            records.update(scan.changed)
        return records

    @property
    def page_requests(self) -> int:
        return sum(scan.page_requests for scan in self.fields)

    def watermark(self) -> dict[str, Any]:
        return {
            "version": WATERMARK_VERSION,
            "fields": {
                scan.sort_field: scan.next_mark.to_json() if scan.next_mark is not None else None
                for scan in self.fields
            },
        }


def scan_changes(resource: BlikkResource, stored: Mapping[str, Mark | None] | None) -> ChangeScan:
    """Every sort field, from the marks of ``stored`` (a field without one is established)."""
    stored = stored or {}
    return ChangeScan([scan_field(resource, name, stored.get(name)) for name in SCAN_FIELDS])


def parse_watermark(value: Any) -> dict[str, Mark | None] | None:
    """The marks of a stored ``change_scan_watermark``; None when there is none to use."""
    if not isinstance(value, Mapping) or value.get("version") != WATERMARK_VERSION:
        return None
    fields = value.get("fields")
    if not isinstance(fields, Mapping):
        return None
    marks: dict[str, Mark | None] = {}
    for name in SCAN_FIELDS:
        if name in fields:
            mark = Mark.from_json(fields[name]) if fields[name] is not None else Mark(None)
            if mark is not None:
                marks[name] = mark
    return marks


def stored_watermark(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, Any] | None:
    """The watermark of the asset's latest materialization. Dagster records a
    materialization only after its write committed, so a run that failed anywhere — in the
    scan, the window read or the write — leaves the watermark where it was."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(WATERMARK_KEY)
    value = getattr(value, "value", value)
    return dict(value) if isinstance(value, Mapping) else None


def changed_days(records: Iterable[Any]) -> tuple[set[date], int]:
    """Work dates of the changed reports, and how many had no readable date."""
    days: set[date] = set()
    unreadable = 0
    for record in records:
        try:
            day = parse_blikk_date(record.get("date")) if isinstance(record, Mapping) else None
        except ValueError:
            day = None
        if day is None:
            unreadable += 1
        else:
            days.add(day)
    return days, unreadable


def scan_metadata(scan: ChangeScan, first: date, last: date, partitions: tuple[date, date]) -> dict[str, Any]:
    """Materialization metadata: ``days_to_reread`` (changed days outside the run's own
    ``first``..``last`` that the partitions hold), the next watermark, and the scan's cost."""
    days, undated = changed_days(scan.changed.values())
    outside = {day for day in days if not first <= day <= last}
    storable = sorted(day for day in outside if partitions[0] <= day <= partitions[1])
    return {
        DAYS_TO_REREAD: dg.MetadataValue.json([day.isoformat() for day in storable]),
        WATERMARK_KEY: dg.MetadataValue.json(scan.watermark()),
        "change_scan_requests": scan.page_requests,
        "change_scan_requests_by_field": dg.MetadataValue.json({s.sort_field: s.page_requests for s in scan.fields}),
        "change_scan_changed_records": len(scan.changed),
        "change_scan_changed_in_window": sum(1 for day in days if first <= day <= last),
        "change_scan_first_run": dg.MetadataValue.json(sorted(s.sort_field for s in scan.fields if s.first_run)),
        "change_scan_complete": all(s.complete for s in scan.fields),
        "change_scan_days_not_partitioned": len(outside) - len(storable),
        "change_scan_undated_records": undated,
    }
