"""What a run learns by comparing the GET-all listing with the stored raw table. Pure pandas.

The listing names every current record with its ``updatedAt``; the raw table holds, per
record, the ``updatedAt`` it was stored with and four listing columns:

* ``listed`` — the record was in the listing of the last run (false: it has left it);
* ``last_listed_at`` — when a listing last named it: for a record that left, the list call
  of the last run that still saw it; for a listed record, the list call of the run that last
  wrote its row (the newest run's ``listed_at`` metadata says when it was seen since);
* ``vanished_at`` — the list call of the first run that no longer saw it;
* ``detail_after_vanishing`` — what GET-single answered once it had left: ``served`` (the
  row then holds that body), ``http 404`` (or another refused status), or ``pending`` while
  it waits for a run with lookups to spare.

Rows written before these columns existed read as listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, coerce_dtypes
from .resource import DetailAnswer

LISTED = "listed"
LAST_LISTED_AT = "last_listed_at"
VANISHED_AT = "vanished_at"
VANISHED_ANSWER = "detail_after_vanishing"
LISTING_COLUMNS: dict[str, str] = {
    LISTED: "boolean",
    LAST_LISTED_AT: "datetime64[ns, UTC]",
    VANISHED_AT: "datetime64[ns, UTC]",
    VANISHED_ANSWER: "string",
}
LISTING_COLUMN_DESCRIPTIONS: dict[str, str] = {
    LISTED: "The record was in the GET-all listing of the last run (false: it has left it).",
    LAST_LISTED_AT: "When a listing last named the record (UTC): the list call of the last run "
    "that saw it, or of the run that last wrote its row.",
    VANISHED_AT: "The list call of the first run that no longer saw the record (UTC); empty while it is listed.",
    VANISHED_ANSWER: "What GET-single answered once the record had left the listing: served "
    "(the row holds that body), http <status>, or pending; empty while it is listed.",
}
PENDING = "pending"
SERVED = "served"
UPDATED_MS = "source_updated_at_ms"
UPDATED_AT = "source_updated_at"
# Keys of list elements that had no usable identifier (``resource.unusable_stub_key``): they
# are quarantined rows, not records, and nothing can be asked about them.
UNUSABLE_PREFIX = "stub:"


def answer_text(answer: DetailAnswer) -> str:
    return SERVED if answer.status == 200 else f"http {answer.status}"


def stored_columns(date_column: str | None) -> list[str]:
    """The columns a run reads back: key, stored ``updatedAt``, listing state, work date."""
    return [KEY_COLUMN, UPDATED_MS, *LISTING_COLUMNS, *([date_column] if date_column else [])]


@dataclass
class StoredState:
    """The stored table as far as change detection needs it (``stored_columns``)."""

    frame: pd.DataFrame
    date_column: str | None = None

    def __post_init__(self) -> None:
        frame = self.frame.reindex(columns=stored_columns(self.date_column)).copy()
        frame[KEY_COLUMN] = frame[KEY_COLUMN].astype("string")
        frame[LISTED] = frame[LISTED].astype("boolean").fillna(True).astype(bool)
        frame[VANISHED_ANSWER] = frame[VANISHED_ANSWER].astype("string")
        self.frame = frame.set_index(KEY_COLUMN, drop=False)

    @classmethod
    def empty(cls, date_column: str | None = None) -> StoredState:
        return cls(pd.DataFrame(columns=stored_columns(date_column)), date_column)

    def __len__(self) -> int:
        return len(self.frame)

    def known_versions(self) -> dict[str, int | None]:
        """Identifier → stored ``updatedAt`` of the records the last listing named. A record
        that had left and is listed again is not here, so its detail is fetched again."""
        listed = self.frame[self.frame[LISTED]]
        values = pd.array(listed[UPDATED_MS], dtype="Int64")
        return {str(k): (None if pd.isna(v) else int(v)) for k, v in zip(listed.index, values)}

    def _trackable(self) -> pd.DataFrame:
        return self.frame[~self.frame.index.str.startswith(UNUSABLE_PREFIX)]

    def left(self, listed_ids: set[str]) -> list[str]:
        """Records the last listing named that this listing does not (sorted)."""
        rows = self._trackable()
        return sorted(k for k in rows.index[rows[LISTED]] if k not in listed_ids)

    def waiting_for_answer(self, listed_ids: set[str]) -> list[str]:
        """Records that left earlier and were never asked about, oldest first."""
        rows = self._trackable()
        waiting = rows[(~rows[LISTED]) & (rows[VANISHED_ANSWER] == PENDING)]
        waiting = waiting[~waiting.index.isin(list(listed_ids))]
        waiting = waiting.sort_index().sort_values(VANISHED_AT, kind="stable", na_position="first")
        return [str(k) for k in waiting.index]

    def row(self, key: str) -> pd.Series:
        return self.frame.loc[key]

    def work_dates(self, keys: Iterable[str]) -> set[date]:
        if not self.date_column:
            return set()
        present = [k for k in keys if k in self.frame.index]
        return {d for d in (as_date(v) for v in self.frame.loc[present, self.date_column]) if d}


@dataclass
class VanishPlan:
    """Records that left the listing this run, and which of those (and of earlier ones still
    unanswered) get their GET-single call now."""

    left: list[str] = field(default_factory=list)
    ask: list[str] = field(default_factory=list)
    still_pending: list[str] = field(default_factory=list)
    skipped_reason: str | None = None


def plan_vanished(stored: StoredState, listed_ids: set[str], lookups: int, listing_empty: bool) -> VanishPlan:
    """An empty listing while the table holds listed records is not taken as every record
    leaving at once (a glitch would otherwise mark the whole table gone); nothing is marked
    and the next listing decides."""
    if listing_empty and len(stored.left(listed_ids)):
        return VanishPlan(skipped_reason="the listing was empty; no record is marked as gone on an empty answer")
    left = stored.left(listed_ids)
    queue = stored.waiting_for_answer(listed_ids) + left
    return VanishPlan(left=left, ask=queue[:lookups], still_pending=queue[lookups:])


def as_date(value: Any) -> date | None:
    """A work date as stored or read back (date, Timestamp, ISO text), None for nulls."""
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def mark_listed(frame: pd.DataFrame, listed_at: datetime) -> pd.DataFrame:
    """Rows of records this run's listing named."""
    frame = frame.copy()
    frame[LISTED] = pd.array([True] * len(frame), dtype="boolean")
    frame[LAST_LISTED_AT] = pd.Series(pd.Timestamp(listed_at), index=frame.index, dtype="datetime64[ns, UTC]")
    frame[VANISHED_AT] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    frame[VANISHED_ANSWER] = pd.array([None] * len(frame), dtype="string")
    return frame


def _gone_state(stored_row: pd.Series, listed_at: datetime, previous_listing: datetime | None) -> dict[str, Any]:
    """Listing columns of a record that is not in this listing: the first run to miss it sets
    when it was last listed (the previous run's list call) and when it vanished (this one)."""
    if bool(stored_row[LISTED]):
        seen = previous_listing if previous_listing is not None else stored_row.get(LAST_LISTED_AT)
        return {LISTED: False, LAST_LISTED_AT: seen, VANISHED_AT: listed_at}
    return {
        LISTED: False,
        LAST_LISTED_AT: stored_row.get(LAST_LISTED_AT),
        VANISHED_AT: stored_row.get(VANISHED_AT),
    }


def gone_rows(
    served: pd.DataFrame,
    kept: pd.DataFrame,
    stored: StoredState,
    answers: Mapping[str, str],
    listed_at: datetime,
    previous_listing: datetime | None,
    dtypes: Mapping[str, str],
) -> pd.DataFrame:
    """Rows for records not in this listing: ``served`` holds the bodies GET-single returned
    (keyed, validated), ``kept`` the stored rows of the others as they were. Both get their
    listing columns; ``answers`` maps key → ``detail_after_vanishing``."""
    parts = []
    if not served.empty:
        served = served.copy()
        # The body carries no update time: the row keeps the one it was last listed with.
        served[UPDATED_MS] = [stored.row(key)[UPDATED_MS] for key in served[KEY_COLUMN]]
        parts.append(served)
    if not kept.empty:
        parts.append(kept.copy())
    if not parts:
        return pd.DataFrame()
    combined = pd.concat(parts, ignore_index=True)
    states = [
        {**_gone_state(stored.row(key), listed_at, previous_listing), VANISHED_ANSWER: answers[key]}
        for key in combined[KEY_COLUMN]
    ]
    for column in LISTING_COLUMNS:
        combined[column] = [state[column] for state in states]
    combined[UPDATED_MS] = pd.array(combined[UPDATED_MS], dtype="Int64")
    combined[UPDATED_AT] = pd.to_datetime(combined[UPDATED_MS].astype("Float64"), unit="ms", utc=True)
    return coerce_dtypes(combined, {**dtypes, **LISTING_COLUMNS, INGESTED_COLUMN: "datetime64[ns, UTC]"})


def days_to_reread(days: Iterable[date | None], window: tuple[date, date] | None, first: date, last: date) -> list[str]:
    """Work dates outside the run's conformed window (all of them when the run rebuilds no
    conformed day), within the daily partitions ``first``..``last``, as sorted ISO dates."""
    chosen = set()
    for day in days:
        if day is None or not first <= day <= last:
            continue
        if window is None or not window[0] <= day <= window[1]:
            chosen.add(day)
    return [d.isoformat() for d in sorted(chosen)]
