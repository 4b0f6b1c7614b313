"""Aimsio's own lifecycle, over HTTP through what the schedules and the sensor run: timecards
that leave the open-timecards list (hard delete, processed and still served, processed and no
longer served), forms synced late and edits from a slow clock, inside the daily window and on
older days, under both readings of ``AIMSIO_VANISHED_TIMECARDS``. The shared lifecycle
(``tests/conformed/test_lifecycle.py``) covers edits, moves, approval (export), soft delete and
late records."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.conformed.test_lifecycle import Lifecycle
from tests.support.dagster_helpers import materialization_metadata, read_table
from tests.support.deployment import Deployment
from timesheet_assets.definitions import build_definitions
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.registry import serve_sandboxes
from timesheet_assets.vendors.aimsio.sandbox import AimsioMutations

TODAY = date(2026, 3, 20)
LOOKBACK = 14
CONFIG = SandboxConfig(seed=5, time_records=150, projects=4, employees=5, days=45, anchor_date=TODAY)
EVERYTHING = (TODAY - timedelta(days=44), TODAY)


def day(n: int) -> date:
    return TODAY - timedelta(days=n)


@pytest.fixture(params=["keep", "drop"])
def aimsio(request, tmp_path, monkeypatch, instance):
    warehouse = str(tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("AIMSIO_VANISHED_TIMECARDS", request.param)
    with serve_sandboxes(("aimsio",), CONFIG) as running:
        for name, value in running["aimsio"].env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TIMESHEET_WAREHOUSE", warehouse)
        monkeypatch.setenv("TIMESHEET_LOOKBACK_DAYS", str(LOOKBACK))
        defs = build_definitions(("aimsio",))
        mutations = running["aimsio"].server.sandbox.extra["mutations"]
        yield request.param, Lifecycle("aimsio", Deployment(defs, instance), mutations, warehouse)


def test_cards_that_leave_the_list_late_forms_and_slow_clocks_reach_conformed_as_the_setting_says(aimsio):
    setting, lc = aimsio
    source: AimsioMutations = lc.mutations
    assert lc.refresh("deep_refresh") == []  # Aimsio has no deep refresh
    lc.refresh("daily_refresh")
    assert lc.differences(*EVERYTHING).empty
    store = source.store
    taken: set[str] = set()

    def pick(n: int) -> str:
        key = next(k for k in source.entry_keys(day(n), day(n)) if k not in taken)
        taken.add(key)
        return key

    high_water = max(store.timecard_updated.values())
    hard, processed, processed_gone = pick(2), pick(3), pick(4)
    old_hard, old_processed = pick(30), pick(31)
    skewed, old_skewed = pick(6), pick(34)
    for key in (hard, old_hard):
        source.hard_delete(key)
    for key in (processed, old_processed):
        source.process(key)
    source.process(processed_gone, still_served=False)
    late, old_late = source.add_late(day(5)), source.add_late(day(33))
    for key in (skewed, old_skewed):
        source.edit_hours(key, 1.25, updated_at=store.timecard_updated[key] - 3_600_000)
    # Every one of them lists an updatedAt below what the first load already held.
    assert all(store.timecard_updated[k] < high_water for k in (late, old_late, skewed, old_skewed))

    runs = lc.refresh("daily_refresh")
    # The daily run and one sensor run for the old days the change scan found.
    assert len(runs) == 2
    differences = lc.differences(*EVERYTHING)
    assert differences.empty, differences.to_string()
    lc.assert_no_key_twice()

    raw = read_table(lc.warehouse, "aimsio.timecards").set_index("record_key")
    answers = raw.loc[[hard, old_hard, processed_gone, processed, old_processed], "detail_after_vanishing"]
    assert list(answers) == ["http 404"] * 3 + ["served"] * 2
    assert not raw.loc[answers.index, "listed"].any()
    conformed = set(lc.conformed()["entry_id"])
    assert {late, old_late, skewed, old_skewed} <= conformed
    left = {hard, old_hard, processed_gone, processed, old_processed}
    if setting == "keep":
        assert left <= conformed
    else:
        assert not left & conformed

    # Nothing left to find: the next daily run fetches nothing, asks about nothing, and hands
    # the sensor no day.
    runs = lc.refresh("daily_refresh")
    assert len(runs) == 1
    meta = materialization_metadata(runs[0], ["raw", "aimsio", "timecards"])
    assert (meta["detail_requests"], meta["asked_after_vanishing"], meta["days_to_reread"]) == (0, 0, [])
    assert lc.differences(*EVERYTHING).empty
