"""Long list reads held compactly and turned into a raw frame a chunk at a time.

A parsed vendor record costs about three times its JSON text in memory, and its validated
model twice that again: a year of time reports held as dicts, then as models, then as rows,
grew a run worker by about 1 MB per 100 records. A read that has to see every page before
it keeps any (duplicates across pages, a re-read when the list moved) keeps each record as
its JSON text (``compact_record``); ``build_raw_frame_by_chunks`` then expands, validates and
types them ``CHUNK_RECORDS`` at a time, dropping each chunk's texts as soon as its rows exist,
so the run holds the texts or the rows of a record, never the dict, model and row together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pydantic_core

from .records import RawFrame, RawSpec, build_raw_frame

# Records expanded and validated together: large enough that per-chunk work (a frame, dtype
# coercion) is noise, small enough that one chunk's dicts and models are a few MB.
CHUNK_RECORDS = 2_000


def compact_record(item: Any) -> Any:
    """A record kept as its JSON text (a str); ``expand_record`` gives back a value equal to
    the one parsed from the page (pydantic-core writes and reads back every value it parsed:
    big integers, ``Infinity``, ``NaN``, escapes). A record it cannot write (a lone surrogate
    escape) is kept as it was parsed."""
    try:
        return pydantic_core.to_json(item).decode()
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
        return item


def expand_record(kept: Any) -> Any:
    """The parsed record behind ``compact_record``'s answer."""
    return pydantic_core.from_json(kept) if type(kept) is str else kept


def build_raw_frame_by_chunks(
    spec: RawSpec[Any],
    kept: list[Any],
    *,
    admit: Callable[[list[Any]], list[Any]] | None = None,
    default_date: date | None = None,
    ingested_at: datetime | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> RawFrame:
    """``build_raw_frame`` of the records behind ``kept`` (``compact_record`` answers),
    chunk by chunk. ``kept`` is consumed: it is empty on return, each chunk's texts freed once
    its rows are built. ``admit`` (optional) picks the expanded records of a chunk that
    become rows (e.g. those inside the run's window). One ``ingested_at`` for every row."""
    ingested_at = ingested_at or datetime.now(UTC)
    parts: list[RawFrame] = []
    served = 0
    while kept or not parts:
        records = [expand_record(item) for item in kept[:chunk_records]]
        del kept[:chunk_records]
        if admit is not None:
            records = admit(records)
        part = build_raw_frame(spec, records, default_date=default_date, ingested_at=ingested_at)
        served += part.records_served
        if len(part.frame) or not parts:
            parts.append(part)
    frames = [part.frame for part in parts]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return RawFrame(
        frame=frame,
        records_served=served,
        quarantined=sum(p.quarantined for p in parts),
        descriptions=parts[0].descriptions,
    )
