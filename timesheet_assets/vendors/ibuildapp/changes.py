"""Changes to time entries outside the days a run re-reads, found through ``user/history``.

``ts/search`` filters by time only, so an edit, an approval or a late entry on a day older than
the refresh window is never seen by re-reading the window. ``user/history`` is the document's
change feed: per user, ``last_update`` ("Timestamp of the last data update") with the answer
``NOT-MODIFIED`` when nothing changed, the user's time entries with ``created``, ``updated`` and
``approve_date`` otherwise, and the server's ``timestamp``. The scan asks it for every user
(``user/search``) since the previous scan, keeps the entries stamped since then (whether the
server sends only those or the user's whole history), and asks ``ts/search`` by
``time_entry_ids`` where those entries are now: their start days are the days to re-read. The
current start comes from ``ts/search``, read exactly as the load reads it; the document's own
``user/history`` example writes ``start_time`` as text three hours off the epoch of the same
entry in ``user/dashboard`` (server-local time), so history times are only compared, with
slack, never used as days.

Not visible to it: deletions (a deleted entry is in no history) — the weekly deep refresh
re-reads them — and changes to an entry's ``payment_status`` if the server does not move
``updated`` for them (raw only; the conformed status does not use it).

The watermark is the server's ``timestamp`` of the scan's first answer, less
``change_scan_overlap_seconds``, kept in the materialization's metadata. A first run has no
watermark and scans nothing: it records this machine's clock at its start (less the overlap).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from .envelope import is_not_modified
from .models import epoch_to_utc, id_text
from .resource import IBuildAppResource, page_records

# Materialization metadata of raw/ibuildapp/time_entries: where the next scan starts.
WATERMARK = "change_scan_watermark"
# Text timestamps carry no offset; the document's example is three hours off. Any zone on
# Earth is within 14 hours of UTC, so a text stamp counts as "since" with that much slack.
TEXT_TIME_SLACK_SECONDS = 14 * 3600
STAMPS = ("updated", "created", "approve_date")


@dataclass
class ChangeScan:
    """What one scan found: the entries stamped since ``since`` and the days they start on now."""

    since: int | None
    watermark: int | None
    users: int = 0
    not_modified_users: int = 0
    changed_ids: list[str] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    gone: int = 0
    skipped: str | None = None

    def metadata(self) -> dict[str, Any]:
        watermark = {WATERMARK: self.watermark} if self.watermark is not None else {}
        return {
            **watermark,
            "change_scan_since": self.since if self.since is not None else -1,
            "change_scan_users": self.users,
            "change_scan_changed_records": len(self.changed_ids),
            "change_scan_gone_records": self.gone,
            "change_scan": self.skipped or "scanned",
        }


def _is_text_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value.strip())
    except ValueError:
        return bool(value.strip())
    return False


def changed_since(entry: Mapping[str, Any], since: int) -> bool:
    """Whether a history entry was created, updated or approved at or after ``since``. An entry
    without any readable stamp counts as changed: nothing shows it did not."""
    stamped = False
    for name in STAMPS:
        value = entry.get(name)
        try:
            moment = epoch_to_utc(value)
        except ValueError:
            continue
        if moment is None:
            continue
        stamped = True
        slack = TEXT_TIME_SLACK_SECONDS if _is_text_time(value) else 0
        if moment.timestamp() >= since - slack:
            return True
    return not stamped


def _server_time(body: Mapping[str, Any]) -> int | None:
    try:
        moment = epoch_to_utc(body.get("timestamp"))
    except ValueError:
        return None
    return int(moment.timestamp()) if moment is not None else None


def scan_changes(resource: IBuildAppResource, since: int | None, clock: Callable[[], float] = time.time) -> ChangeScan:
    """Every user's ``user/history`` since ``since``, then where the changed entries are now."""
    started = int(clock())
    overlap = resource.change_scan_overlap_seconds
    if since is None:
        return ChangeScan(None, started - overlap, skipped="first run: watermark set, nothing scanned")
    scan = ChangeScan(since, started - overlap)
    user_ids = []
    for user in resource.search_users().records:
        try:
            user_id = id_text(user.get("id")) if isinstance(user, Mapping) else None
        except ValueError:
            user_id = None
        if user_id is not None:
            user_ids.append(user_id)
    server_times: list[int] = []
    changed: set[str] = set()
    for user_id in dict.fromkeys(user_ids):
        body = resource.user_history(user_id, since)
        scan.users += 1
        if (stamp := _server_time(body)) is not None:
            server_times.append(stamp)
        if is_not_modified(body):
            scan.not_modified_users += 1
            continue
        for entry in page_records(body.get("data"), "time_entries"):
            if not isinstance(entry, Mapping) or not changed_since(entry, since):
                continue
            try:
                key = id_text(entry.get("id"))
            except ValueError:
                key = None
            if key is not None:
                changed.add(key)
    if server_times:
        scan.watermark = min(server_times) - overlap
    scan.changed_ids = sorted(changed, key=lambda k: (len(k), k))
    days: set[date] = set()
    found = 0
    for record in resource.time_entries_by_id(scan.changed_ids) if changed else []:
        try:
            start = epoch_to_utc(record.get("start_time")) if isinstance(record, Mapping) else None
        except ValueError:
            start = None
        if start is not None:
            found += 1
            days.add(resource.work_date(start))
    scan.gone = max(0, len(changed) - found)
    scan.days = sorted(days)
    return scan


def previous_watermark(instance: dg.DagsterInstance, key: dg.AssetKey) -> int | None:
    """The watermark the latest materialization of ``key`` recorded, if any."""
    result = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1, ascending=False)
    for record in result.records:
        materialization = record.asset_materialization
        entry = materialization.metadata.get(WATERMARK) if materialization is not None else None
        value = getattr(entry, "value", entry)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None
