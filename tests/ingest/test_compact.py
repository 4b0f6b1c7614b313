"""A long read held as JSON texts and turned into a raw frame a chunk at a time: the same
frame as building it from every parsed record at once, without ever holding them all."""

from dataclasses import replace
from datetime import UTC, date, datetime

import pandas as pd

from tests.ingest.test_records import SPEC
from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.ingest.compact import build_raw_frame_by_chunks, compact_record, expand_record

SERVED = [
    {"id": 1, "day": "2026-01-02", "hours": 7.5, "note": 'Škoda "ñ"\n東京'},
    {"id": 2, "day": "2026-01-02", "hours": "lots"},
    {"day": "2026-01-03", "hours": 1},
    "not an object",
    {"id": 5, "day": "2026-01-04", "hours": 1e999, "big": 123456789012345678901234567890},
    {"id": 6, "day": "2026-01-05", "hours": 8, "note": "lone \ud800 surrogate"},
    *({"id": 10 + i, "day": "2026-01-06", "hours": i / 4} for i in range(20)),
]
WHEN = datetime(2026, 1, 7, tzinfo=UTC)


def test_compact_records_are_texts_that_expand_to_the_parsed_record():
    kept = [compact_record(record) for record in SERVED]
    # Every record the JSON writer can write is held as its text; the one it cannot (a lone
    # surrogate) stays as parsed. Either way the record comes back unchanged.
    assert [type(item) for item in kept].count(str) == len(SERVED) - 1
    assert kept[5] is SERVED[5]
    assert [expand_record(item) for item in kept] == SERVED


def test_chunked_frame_equals_the_frame_built_at_once():
    spec = replace(SPEC, descriptions={"work_date": "Day worked", "hours": "Hours booked", "note": "Free text"})
    whole = build_raw_frame(spec, SERVED, default_date=date(2026, 1, 1), ingested_at=WHEN)
    kept = [compact_record(record) for record in SERVED]
    chunked = build_raw_frame_by_chunks(spec, kept, default_date=date(2026, 1, 1), ingested_at=WHEN, chunk_records=4)
    pd.testing.assert_frame_equal(chunked.frame, whole.frame)
    assert (chunked.records_served, chunked.quarantined) == (whole.records_served, whole.quarantined) == (26, 3)
    assert chunked.descriptions == whole.descriptions == spec.descriptions


def test_texts_are_released_chunk_by_chunk_and_never_all_expanded_at_once():
    kept = [compact_record(record) for record in SERVED]
    seen: list[tuple[int, int]] = []

    def admit(records):
        # What is still held as text, and how many parsed records exist, at each chunk.
        seen.append((len(kept), len(records)))
        return [r for r in records if not (isinstance(r, dict) and r.get("day") == "2026-01-06")]

    raw = build_raw_frame_by_chunks(SPEC, kept, admit=admit, ingested_at=WHEN, chunk_records=4)
    assert kept == []
    assert seen == [(22, 4), (18, 4), (14, 4), (10, 4), (6, 4), (2, 4), (0, 2)]
    assert raw.records_served == 6 and len(raw.frame) == 6


def test_an_empty_read_still_gives_the_typed_empty_frame():
    raw = build_raw_frame_by_chunks(SPEC, [], ingested_at=WHEN)
    expected = build_raw_frame(SPEC, [], ingested_at=WHEN)
    assert list(raw.frame.columns) == list(expected.frame.columns) and raw.frame.empty
    assert raw.records_served == 0
