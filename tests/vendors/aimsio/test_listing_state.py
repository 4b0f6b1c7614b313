"""Comparing the listing with the stored table, on in-memory frames (HTTP paths are in
test_vanished.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from timesheet_assets.settings import SettingError
from timesheet_assets.vendors.aimsio.listing_state import (
    PENDING,
    StoredState,
    days_to_reread,
    gone_rows,
    plan_vanished,
)
from timesheet_assets.vendors.aimsio.settings import vanished_timecards

T0 = datetime(2026, 3, 1, 5, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 5, tzinfo=UTC)


def _stored(rows: list[dict]) -> StoredState:
    return StoredState(pd.DataFrame(rows), date_column="work_date")


def test_known_versions_leave_out_records_that_had_left_so_a_returning_one_is_fetched():
    stored = _stored(
        [
            {"record_key": "a", "source_updated_at_ms": 5, "listed": True},
            {"record_key": "b", "source_updated_at_ms": 6, "listed": False, "detail_after_vanishing": "http 404"},
            # Written before the listing columns existed: read as listed.
            {"record_key": "c", "source_updated_at_ms": 7, "listed": None},
            {"record_key": "d", "source_updated_at_ms": None, "listed": True},
        ]
    )
    assert stored.known_versions() == {"a": 5, "c": 7, "d": None}


def test_records_that_left_are_asked_about_once_oldest_first_within_the_bound():
    stored = _stored(
        [
            {"record_key": "listed", "source_updated_at_ms": 1, "listed": True},
            {"record_key": "left-now-2", "source_updated_at_ms": 1, "listed": True},
            {"record_key": "left-now-1", "source_updated_at_ms": 1, "listed": True},
            {
                "record_key": "waiting-new",
                "source_updated_at_ms": 1,
                "listed": False,
                "vanished_at": T1,
                "detail_after_vanishing": PENDING,
            },
            {
                "record_key": "waiting-old",
                "source_updated_at_ms": 1,
                "listed": False,
                "vanished_at": T0,
                "detail_after_vanishing": PENDING,
            },
            {
                "record_key": "answered",
                "source_updated_at_ms": 1,
                "listed": False,
                "vanished_at": T0,
                "detail_after_vanishing": "http 404",
            },
            # A quarantined list element: not a record, nothing to ask about.
            {"record_key": "stub:0123abcd", "source_updated_at_ms": None, "listed": True},
        ]
    )
    plan = plan_vanished(stored, {"listed"}, lookups=3, listing_empty=False)
    assert plan.left == ["left-now-1", "left-now-2"]
    assert plan.ask == ["waiting-old", "waiting-new", "left-now-1"]
    assert plan.still_pending == ["left-now-2"]
    # Listed again: neither left nor waiting.
    again = plan_vanished(stored, {"listed", "waiting-old", "left-now-1", "left-now-2"}, 10, False)
    assert (again.left, again.ask) == ([], ["waiting-new"])
    assert plan_vanished(stored, {"listed"}, lookups=0, listing_empty=False).ask == []


def test_an_empty_listing_marks_nothing_as_gone():
    stored = _stored([{"record_key": "a", "source_updated_at_ms": 1, "listed": True}])
    plan = plan_vanished(stored, set(), lookups=10, listing_empty=True)
    assert (plan.left, plan.ask, plan.still_pending) == ([], [], [])
    assert "empty" in plan.skipped_reason
    # An empty table with an empty listing is simply nothing to do.
    assert plan_vanished(StoredState.empty("work_date"), set(), 10, True).skipped_reason is None


def test_gone_rows_record_when_a_record_was_last_listed_and_what_was_answered():
    stored = _stored(
        [
            {"record_key": "new-gone", "source_updated_at_ms": 1_700_000_000_000, "listed": True, "last_listed_at": T0},
            {
                "record_key": "old-gone",
                "source_updated_at_ms": 1_700_000_000_001,
                "listed": False,
                "last_listed_at": T0,
                "vanished_at": T0,
                "detail_after_vanishing": PENDING,
            },
        ]
    )
    kept = pd.DataFrame(
        {
            "record_key": ["new-gone", "old-gone"],
            "source_updated_at_ms": [1_700_000_000_000, 1_700_000_000_001],
            "payload": ["{}", "{}"],
            "quarantine_reason": [None, None],
            "ingested_at": [T0, T0],
        }
    )
    now = datetime(2026, 3, 3, 5, tzinfo=UTC)
    rows = gone_rows(
        pd.DataFrame(),
        kept,
        stored,
        {"new-gone": PENDING, "old-gone": "http 404"},
        now,
        T1,
        {"record_key": "string", "payload": "string", "quarantine_reason": "string"},
    ).set_index("record_key")
    assert not rows["listed"].any()
    # The first run to miss it: last listed by the previous run, gone as of this one.
    assert rows.loc["new-gone", "last_listed_at"] == pd.Timestamp(T1)
    assert rows.loc["new-gone", "vanished_at"] == pd.Timestamp(now)
    assert rows.loc["new-gone", "detail_after_vanishing"] == PENDING
    # Asked later: its times stay, the answer is recorded.
    assert rows.loc["old-gone", "last_listed_at"] == pd.Timestamp(T0)
    assert rows.loc["old-gone", "vanished_at"] == pd.Timestamp(T0)
    assert rows.loc["old-gone", "detail_after_vanishing"] == "http 404"
    assert rows.loc["old-gone", "source_updated_at"] == pd.Timestamp(1_700_000_000_001, unit="ms", tz="UTC")


def test_days_to_reread_are_the_days_outside_the_window_within_the_partitions():
    days = [date(2026, 3, 1), date(2026, 3, 10), date(2026, 3, 15), None, date(2023, 1, 1), date(2027, 1, 1)]
    bounds = (date(2024, 1, 1), date(2026, 12, 5))
    assert days_to_reread(days, (date(2026, 3, 7), date(2026, 3, 20)), *bounds) == ["2026-03-01"]
    # A run that rebuilds no conformed day re-reads every day it touched.
    assert days_to_reread(days, None, *bounds) == ["2026-03-01", "2026-03-10", "2026-03-15"]


def test_the_vanished_setting_defaults_to_keep_and_refuses_other_values():
    assert vanished_timecards({}) == "keep"
    assert vanished_timecards({"AIMSIO_VANISHED_TIMECARDS": " DROP "}) == "drop"
    with pytest.raises(SettingError, match="AIMSIO_VANISHED_TIMECARDS must be 'keep' or 'drop', got 'delete'"):
        vanished_timecards({"AIMSIO_VANISHED_TIMECARDS": "delete"})
