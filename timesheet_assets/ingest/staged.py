"""Records of a long list read turned into raw rows a chunk at a time and written to a staging
table of the warehouse as they arrive (``storage/staging.py``), so that the run holds one
chunk, not the read.

``StagedRecords`` is the ``keep`` of a list read: each record the read keeps is buffered and
answered by its place in the read (a sequence number); every ``CHUNK_RECORDS`` records the
buffer becomes rows (validated, quarantined with a reason, as ``build_raw_frame`` makes them)
that go to the staging table with their record's number. The read decides afterwards which of
the records it kept stand (the first walk's, or the union of walks when the list moved), and
``finish`` keeps exactly those rows: the table equals the frame the same read would have built
in memory.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from ..storage import SEQUENCE_COLUMN, StagedRows, StagingTable
from .records import QUARANTINE_COLUMN, RawSpec, build_raw_frame

# Records turned into rows and staged together (``compact.CHUNK_RECORDS``'s reasoning): a
# chunk's dicts, models and rows are a few MB, and each chunk is one short transaction.
CHUNK_RECORDS = 2_000


@dataclass
class StagedRaw:
    """A raw output held in a staging table: what ``RawFrame`` says of a frame."""

    rows: StagedRows
    records_served: int
    quarantined: int
    descriptions: Mapping[str, str]

    @property
    def staging(self) -> StagingTable:
        return self.rows.staging


def staging_table(context: Any, output_name: str = "result") -> StagingTable | None:
    """A staging table for an asset's output when the run's IO manager offers one (the
    warehouse IO manager, which then writes the ``StagedRows``); None for any other IO manager
    (a cloud warehouse's own): the rows are then built in memory as a frame. The asset
    requires the ``io_manager`` resource."""
    make = getattr(getattr(context.resources, "io_manager", None), "staging_table", None)
    if make is None:
        return None
    return make(context.assets_def.keys_by_output_name[output_name], context.run_id, context.log)


def _matched(records: list[Any], kept: list[Any]) -> list[int]:
    """The positions in ``records`` of ``kept``, a subsequence of it (the same objects, in
    order)."""
    positions: list[int] = []
    index = 0
    for record in kept:
        while records[index] is not record:
            index += 1
        positions.append(index)
        index += 1
    return positions


class StagedRecords:
    """``keep`` for a list read whose records go to ``staging`` as raw rows of ``spec``.
    ``admit`` (optional) picks the records of a chunk that become rows (e.g. those inside the
    run's window); the others are not staged."""

    def __init__(
        self,
        staging: StagingTable,
        spec: RawSpec[Any],
        *,
        admit: Callable[[list[Any]], list[Any]] | None = None,
        default_date: date | None = None,
        chunk_records: int | None = None,
    ) -> None:
        self.staging = staging
        self.spec = spec
        self.admit = admit
        self.default_date = default_date
        self.chunk_records = chunk_records or CHUNK_RECORDS
        self.ingested_at = datetime.now(UTC)
        self._buffer: list[Any] = []
        self._first_seq = 0
        self._issued = 0
        # The numbers of the records that became rows: 8 bytes a record, not the record.
        self._staged = array("q")

    def __call__(self, record: Any) -> int:
        seq = self._issued
        self._issued += 1
        self._buffer.append(record)
        if len(self._buffer) >= self.chunk_records:
            self.flush()
        return seq

    def flush(self) -> None:
        """Stage the buffered records (the first call stages an empty chunk even when there
        is none, so that the staging table exists with its columns)."""
        if not self._buffer and self.staging.template is not None:
            return
        records, self._buffer = self._buffer, []
        seqs = np.arange(self._first_seq, self._first_seq + len(records), dtype=np.int64)
        self._first_seq += len(records)
        if self.admit is not None:
            kept = self.admit(records)
            seqs = seqs[_matched(records, kept)]
            records = kept
        raw = build_raw_frame(self.spec, records, default_date=self.default_date, ingested_at=self.ingested_at)
        raw.frame[SEQUENCE_COLUMN] = seqs[raw.record_index] if len(raw.frame) else pd.Series(dtype="int64")
        self.staging.append(raw.frame)
        self._staged.extend(seqs.tolist())

    def finish(self, selected: Iterable[int]) -> StagedRaw:
        """The staged rows of the ``selected`` records (the read's answer), as the output."""
        self.flush()
        chosen = np.unique(np.fromiter(selected, dtype=np.int64))
        staged = np.frombuffer(self._staged, dtype=np.int64) if len(self._staged) else np.empty(0, dtype=np.int64)
        served = np.isin(staged, chosen)
        if not served.all():
            self.staging.keep_only(SEQUENCE_COLUMN, chosen.tolist())
        (quarantined,) = self.staging.fetch(f"SELECT count({QUARANTINE_COLUMN}) FROM {{table}}")[0]
        return StagedRaw(
            rows=StagedRows(self.staging),
            records_served=int(served.sum()),
            quarantined=int(quarantined),
            descriptions=self.spec.descriptions,
        )
