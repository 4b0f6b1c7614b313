"""Records staged a chunk at a time as a list read keeps them: the staging table holds exactly
the rows ``build_raw_frame`` gives for the records the read finally chose, in their order."""

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from tests.ingest.test_compact import SERVED
from tests.ingest.test_records import SPEC
from timesheet_assets.ingest import build_raw_frame
from timesheet_assets.ingest.staged import StagedRecords
from timesheet_assets.storage import SEQUENCE_COLUMN, StagingTable, WarehouseIOManager

WHEN = datetime(2026, 1, 7, tzinfo=UTC)
# A text column with a lone surrogate is no text a warehouse can store (on any write path).
RECORDS = [r for r in SERVED if not (isinstance(r, dict) and "surrogate" in str(r.get("note")))]


def _inside(records):
    """The window's ``admit``: records dated 2026-01-05 or later, and any without a day."""
    return [r for r in records if not (isinstance(r, dict) and r.get("day", "9") < "2026-01-05")]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as Python objects, every null as None (the warehouse and pandas spell them apart)."""
    return frame.astype(object).where(frame.notna(), None)


@pytest.mark.parametrize("chunk", [1, 4, 100])
def test_staged_rows_are_the_rows_of_the_chosen_admitted_records(tmp_path, chunk):
    backend = WarehouseIOManager(database=str(tmp_path / "warehouse.duckdb")).backend()
    staging = StagingTable(backend, "probe__run")
    sink = StagedRecords(staging, SPEC, admit=_inside, default_date=date(2026, 1, 1), chunk_records=chunk)
    sink.ingested_at = WHEN
    tokens = [sink(record) for record in RECORDS]
    assert tokens == list(range(len(RECORDS)))
    # The read keeps all but two of what it saw (a record that moved, one read twice).
    chosen = [token for token in tokens if token not in (7, 12)]

    raw = sink.finish(chosen)

    expected_records = _inside([RECORDS[token] for token in chosen])
    expected = build_raw_frame(SPEC, expected_records, default_date=date(2026, 1, 1), ingested_at=WHEN)
    with backend.reader() as session:
        stored = session.connection.execute(  # type: ignore[attr-defined]
            f"SELECT * FROM {staging.relation} ORDER BY {SEQUENCE_COLUMN}"
        ).fetchdf()
    assert stored[SEQUENCE_COLUMN].is_monotonic_increasing
    pd.testing.assert_frame_equal(
        _plain(stored.drop(columns=[SEQUENCE_COLUMN, "ingested_at"])),
        # The warehouse gives DATE columns back as timestamps at midnight.
        _plain(expected.frame.drop(columns=["ingested_at"]).assign(work_date=lambda f: pd.to_datetime(f.work_date))),
    )
    assert (raw.records_served, raw.quarantined) == (expected.records_served, expected.quarantined)
    assert raw.records_served == len(expected_records) and raw.quarantined >= 1
