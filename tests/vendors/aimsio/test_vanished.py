"""What the listing says beyond changes, over HTTP through Dagster: records whose ``updatedAt``
is older than others', timecards that leave the open-timecards list (hard delete, processed),
what one GET-single call answers for them, ``AIMSIO_VANISHED_TIMECARDS``, and the work days a
run hands to the ``reread_changed_days`` sensor."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from tests.support.dagster_helpers import materialization_metadata, read_table
from timesheet_assets.settings import SettingError
from timesheet_assets.vendors.aimsio import PLUGIN
from timesheet_assets.vendors.aimsio.conform import conform_timecards
from timesheet_assets.vendors.aimsio.sandbox import AimsioMutations, _work_date

from .support import (
    ANCHOR,
    TIMECARDS_KEY,
    config,
    detail_calls,
    list_calls,
    run_raw,
    start,
    stored_versions,
    unthrottled,
)

TABLE = "aimsio.timecards"


def _raw(warehouse: str) -> pd.DataFrame:
    return read_table(warehouse, TABLE).set_index("record_key")


def _listed_at(result) -> pd.Timestamp:
    return pd.Timestamp(datetime.fromisoformat(materialization_metadata(result, TIMECARDS_KEY)["listed_at"]))


def _setup(serve_app, records: int, **overrides):
    server, store = start(serve_app, config(records, **overrides))
    mutations: AimsioMutations = server.sandbox.extra["mutations"]
    return server, store, mutations, unthrottled(server)


def test_a_card_synced_late_and_an_edit_from_a_slow_clock_are_fetched_though_older_than_what_is_stored(
    serve_app, warehouse, instance
):
    server, store, mutations, fast = _setup(serve_app, 12)
    run_raw(server, warehouse, instance, resource=fast)
    high_water = max(stored_versions(warehouse).values())

    late = mutations.add_late(ANCHOR - timedelta(days=3))  # a phone's form, synced today
    skewed = next(iter(store.timecards))
    before = float(store.timecard(skewed)["timeCardEmployeeRegularHours"])
    mutations.edit_hours(skewed, 1.0, updated_at=store.timecard_updated[skewed] - 60_000)
    # Both are below the newest updatedAt already stored: one global cursor would skip them.
    assert store.timecard_updated[late] < high_water and store.timecard_updated[skewed] < high_water

    server.sandbox.stats.reset()
    result = run_raw(server, warehouse, instance, resource=fast)
    assert list_calls(server) == 1 and sorted(detail_calls(server)) == sorted([late, skewed])
    meta = materialization_metadata(result, TIMECARDS_KEY)
    assert (meta["detail_requests"], meta["unchanged_skipped"]) == (2, 11)
    raw = _raw(warehouse)
    assert raw.loc[late, "description"] == "Synced late" and bool(raw.loc[late, "listed"])
    assert raw.loc[skewed, "regular_hours"] == before + 1.0
    assert stored_versions(warehouse) == store.timecard_updated

    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance, resource=fast)
    assert server.sandbox.stats.requests == 1  # nothing differs any more


@pytest.mark.parametrize("setting", ["keep", "drop"])
def test_a_hard_deleted_card_is_asked_about_once_and_the_setting_decides_whether_it_counts(
    setting, serve_app, warehouse, instance, monkeypatch
):
    monkeypatch.setenv("AIMSIO_VANISHED_TIMECARDS", setting)
    server, store, mutations, fast = _setup(serve_app, 6)
    first = run_raw(server, warehouse, instance, resource=fast)
    victim = next(g for g, b in store.timecards.items() if not b["timeCardIsDeleted"])
    hours = float(store.timecard(victim)["timeCardEmployeeRegularHours"])
    mutations.hard_delete(victim)

    server.sandbox.stats.reset()
    second = run_raw(server, warehouse, instance, resource=fast)
    # One list call and one GET-single for the card that left; it answers 404.
    assert list_calls(server) == 1 and detail_calls(server) == [victim]
    assert [r.status for r in server.sandbox.stats.calls() if victim in r.path] == [404]
    meta = materialization_metadata(second, TIMECARDS_KEY)
    assert (meta["left_listing"], meta["asked_after_vanishing"], meta["waiting_for_answer"]) == (1, 1, 0)
    assert meta["answers_after_vanishing"] == {"http 404": 1}
    assert meta["vanished_timecards"] == setting
    raw = _raw(warehouse)
    row = raw.loc[victim]
    assert not bool(row["listed"]) and row["detail_after_vanishing"] == "http 404"
    assert row["last_listed_at"] == _listed_at(first)  # the last run whose listing named it
    assert row["vanished_at"] == _listed_at(second)  # the first run whose listing did not
    assert row["regular_hours"] == hours and not bool(row["is_deleted"])  # raw keeps it as it was
    assert raw.drop(index=victim)["listed"].all()

    # Asked once: the next run makes its list call only and leaves the row alone.
    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance, resource=fast)
    assert server.sandbox.stats.requests == 1
    pd.testing.assert_series_equal(_raw(warehouse).loc[victim], row)

    conformed = set(conform_timecards(_raw(warehouse).reset_index())["entry_id"])
    assert (victim in conformed) is (setting == "keep")
    assert len(conformed) == len(mutations.expected_lines(date(2000, 1, 1), date(2100, 1, 1)))


@pytest.mark.parametrize("setting", ["keep", "drop"])
def test_a_processed_card_still_served_takes_its_served_body(setting, serve_app, warehouse, instance, monkeypatch):
    monkeypatch.setenv("AIMSIO_VANISHED_TIMECARDS", setting)
    server, store, mutations, fast = _setup(serve_app, 6)
    run_raw(server, warehouse, instance, resource=fast)
    processed, deleted_on_leaving = [g for g, b in store.timecards.items() if not b["timeCardIsDeleted"]][:2]
    last_listed_version = stored_versions(warehouse)[processed]
    mutations.process(processed)  # payroll closed its period, it left the open list
    store.timecards[deleted_on_leaving]["timeCardIsDeleted"] = True  # deleted as it left the list
    store.unlist_timecard(deleted_on_leaving)

    server.sandbox.stats.reset()
    result = run_raw(server, warehouse, instance, resource=fast)
    assert sorted(detail_calls(server)) == sorted([processed, deleted_on_leaving])
    assert materialization_metadata(result, TIMECARDS_KEY)["answers_after_vanishing"] == {"served": 2}
    raw = _raw(warehouse)
    assert list(raw.loc[[processed, deleted_on_leaving], "detail_after_vanishing"]) == ["served", "served"]
    assert not raw.loc[[processed, deleted_on_leaving], "listed"].any()
    assert raw.loc[processed, "payroll_period_status"] == "CLOSED" and bool(raw.loc[processed, "is_exported"])
    assert bool(raw.loc[deleted_on_leaving, "is_deleted"])
    # The served body has no updatedAt: the row keeps the one it was last listed with.
    assert raw.loc[processed, "source_updated_at_ms"] == last_listed_version

    out = conform_timecards(raw.reset_index()).set_index("entry_id")
    assert deleted_on_leaving not in out.index  # flagged deleted: gone whatever the setting
    if setting == "keep":
        assert out.loc[processed, "status"] == "paid"
    else:
        assert processed not in out.index
    expected = mutations.expected_lines(date(2000, 1, 1), date(2100, 1, 1)).set_index("entry_id")
    assert sorted(expected.index) == sorted(out.index)
    assert list(expected["status"]) == list(out.loc[expected.index, "status"])


def test_lookups_after_vanishing_are_bounded_per_run_and_the_rest_follow(serve_app, warehouse, instance):
    server, store, mutations, _ = _setup(serve_app, 8)
    fast = unthrottled(server, vanished_lookups_per_run=2)
    run_raw(server, warehouse, instance, resource=fast)
    gone = list(store.timecards)[:5]
    for guid in gone:
        mutations.hard_delete(guid)

    asked: list[str] = []
    waiting: list[int] = []
    for _ in range(4):
        server.sandbox.stats.reset()
        result = run_raw(server, warehouse, instance, resource=fast)
        assert list_calls(server) == 1
        calls = detail_calls(server)
        assert len(calls) <= 2
        asked += calls
        waiting.append(materialization_metadata(result, TIMECARDS_KEY)["waiting_for_answer"])
    # 5 cards left: 2 + 2 + 1 calls, each card asked exactly once, then nothing.
    assert sorted(asked) == sorted(gone) and waiting == [3, 1, 0, 0]
    raw = _raw(warehouse)
    assert set(raw.loc[gone, "detail_after_vanishing"]) == {"http 404"}
    # Every card that left got its vanished_at from the run that first missed it.
    assert raw.loc[gone, "vanished_at"].nunique() == 1


def test_a_card_listed_again_is_fetched_and_current_again(serve_app, warehouse, instance):
    server, store, mutations, fast = _setup(serve_app, 4)
    run_raw(server, warehouse, instance, resource=fast)
    card = next(iter(store.timecards))
    store.unlist_timecard(card)
    run_raw(server, warehouse, instance, resource=fast)
    assert not bool(_raw(warehouse).loc[card, "listed"])

    store.unlisted.discard(card)
    server.sandbox.stats.reset()
    result = run_raw(server, warehouse, instance, resource=fast)
    # Same updatedAt as stored, fetched anyway: it had left, so its stored state is not current.
    assert detail_calls(server) == [card]
    assert materialization_metadata(result, TIMECARDS_KEY)["listed_again"] == 1
    row = _raw(warehouse).loc[card]
    assert bool(row["listed"]) and pd.isna(row["vanished_at"]) and pd.isna(row["detail_after_vanishing"])


def test_an_empty_listing_marks_nothing_as_gone(serve_app, warehouse, instance):
    server, store, mutations, fast = _setup(serve_app, 4)
    run_raw(server, warehouse, instance, resource=fast)
    before = _raw(warehouse)
    for guid in list(store.timecards):
        mutations.hard_delete(guid)
    server.sandbox.stats.reset()
    result = run_raw(server, warehouse, instance, resource=fast)
    assert server.sandbox.stats.requests == 1  # no lookups either
    assert "empty" in materialization_metadata(result, TIMECARDS_KEY)["vanished_check_skipped"]
    pd.testing.assert_frame_equal(_raw(warehouse), before)


def test_the_days_a_run_touched_outside_its_window_go_to_the_sensor(serve_app, warehouse, instance):
    server, store, mutations, fast = _setup(serve_app, 40, days=20)
    window = (ANCHOR - timedelta(days=6), ANCHOR)
    first = run_raw(server, warehouse, instance, resource=fast, window=window)
    all_days = {_work_date(b) for b in store.timecards.values()}
    outside = sorted(d.isoformat() for d in all_days if not window[0] <= d <= window[1])
    assert materialization_metadata(first, ["raw", "aimsio", "timecards"])["days_to_reread"] == outside

    def card_on(day: date) -> str:
        return next(k for k in mutations.entry_keys(day, day))

    old, moved, inside, removed = (
        ANCHOR - timedelta(days=12),
        ANCHOR - timedelta(days=2),
        ANCHOR - timedelta(days=1),
        ANCHOR - timedelta(days=15),
    )
    mutations.edit_hours(card_on(old), 0.5)  # an old day
    mutations.move(card_on(moved), ANCHOR - timedelta(days=9))  # from inside the window to an old day
    mutations.edit_hours(card_on(inside), 0.5)  # inside: the run's own conformed step rebuilds it
    mutations.add_late(ANCHOR - timedelta(days=11))
    mutations.hard_delete(card_on(removed))
    result = run_raw(server, warehouse, instance, resource=fast, window=window)
    expected = sorted(d.isoformat() for d in (old, ANCHOR - timedelta(days=9), ANCHOR - timedelta(days=11), removed))
    assert materialization_metadata(result, TIMECARDS_KEY)["days_to_reread"] == expected

    # Without a window (raw materialized alone) no conformed day is rebuilt: every day touched.
    mutations.edit_hours(card_on(inside), 0.5)
    result = run_raw(server, warehouse, instance, resource=fast)
    assert materialization_metadata(result, TIMECARDS_KEY)["days_to_reread"] == [inside.isoformat()]


def test_a_misspelt_vanished_setting_fails_when_the_code_location_loads(monkeypatch):
    monkeypatch.setenv("AIMSIO_VANISHED_TIMECARDS", "remove")
    with pytest.raises(SettingError, match="AIMSIO_VANISHED_TIMECARDS must be 'keep' or 'drop'"):
        PLUGIN.definitions()


def test_a_table_written_before_the_listing_columns_reads_as_all_listed(serve_app, warehouse, instance):
    import duckdb

    server, store, mutations, fast = _setup(serve_app, 5)
    run_raw(server, warehouse, instance, resource=fast)
    with duckdb.connect(warehouse) as conn:
        for column in ("listed", "last_listed_at", "vanished_at", "detail_after_vanishing"):
            conn.execute(f"ALTER TABLE aimsio.timecards DROP COLUMN {column}")
    gone = next(iter(store.timecards))
    mutations.hard_delete(gone)
    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance, resource=fast)
    # Nothing refetched (the stored updatedAts still match); the removed card is asked about.
    assert list_calls(server) == 1 and detail_calls(server) == [gone]
    raw = _raw(warehouse)
    assert raw.loc[gone, "detail_after_vanishing"] == "http 404" and not bool(raw.loc[gone, "listed"])
    assert raw.drop(index=gone)["listed"].isna().all()  # untouched rows: null reads as listed
    assert gone in set(conform_timecards(raw.reset_index(), vanished="keep")["entry_id"])
    assert gone not in set(conform_timecards(raw.reset_index(), vanished="drop")["entry_id"])


def test_a_job_order_that_leaves_the_list_is_marked_and_stays_a_project(serve_app, warehouse, instance):
    from timesheet_assets.vendors.aimsio.conform import conform_job_orders

    from .support import JOB_ORDERS, JOB_ORDERS_ASSET

    server, store, _, fast = _setup(serve_app, 0, projects=3)
    run_raw(server, warehouse, instance, resource=fast, assets=[JOB_ORDERS_ASSET])
    gone = next(iter(store.job_orders))
    with store._lock:
        del store.job_orders[gone], store.job_order_updated[gone]
    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance, resource=fast, assets=[JOB_ORDERS_ASSET])
    assert list_calls(server, JOB_ORDERS) == 1 and detail_calls(server, JOB_ORDERS) == [gone]
    jobs = read_table(warehouse, "aimsio.job_orders").set_index("record_key")
    assert not bool(jobs.loc[gone, "listed"]) and jobs.loc[gone, "detail_after_vanishing"] == "http 404"
    # Timecards kept in the conformed table may still point at it.
    assert gone in set(conform_job_orders(jobs.reset_index())["project_id"])
