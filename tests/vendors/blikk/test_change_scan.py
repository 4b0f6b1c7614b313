"""The change scan of ``raw/blikk/time_reports`` over real HTTP against the sandbox: what it
finds beyond the run's window (``days_to_reread``), where it stops (the watermark of the
previous run, kept in the materialization metadata), what it costs, and what a failed run
does to the watermark."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from tests.vendors.blikk.conftest import RunningBlikk
from timesheet_assets.schedules import RANGE_END, RANGE_START, build_reread_sensor
from timesheet_assets.vendors.blikk import PLUGIN, change_scan
from timesheet_assets.vendors.blikk.assets import TIME_REPORTS_KEY, blikk_time_reports
from timesheet_assets.vendors.blikk.change_scan import SCAN_FIELDS, WATERMARK_KEY, stored_watermark
from timesheet_assets.vendors.blikk.models import parse_blikk_datetime
from timesheet_assets.vendors.blikk.resource import TIME_REPORTS_PATH
from timesheet_assets.vendors.blikk.sandbox import BlikkMutations

TIME_REPORTS = ["raw", "blikk", "time_reports"]
FAST = dict(requests_per_second=50.0, backoff_cap_seconds=0.05)
WINDOW_DAYS = 7


@pytest.fixture
def start(blikk):
    """A sandbox without its 4/s limit (these tests count requests, not rates)."""

    def make(**config: Any) -> RunningBlikk:
        sandbox = blikk(**{"time_records": 300, "days": 30, **config})
        sandbox.server.sandbox.rate_rule = None
        return sandbox

    return make


def window(sandbox: RunningBlikk) -> tuple[date, date]:
    last = sandbox.config.anchor_date
    return last - timedelta(days=WINDOW_DAYS - 1), last


def old_day(sandbox: RunningBlikk, n: int) -> date:
    """A day ``n`` days before the anchor (outside the run's window for n >= 7)."""
    return sandbox.config.anchor_date - timedelta(days=n)


def run(
    sandbox: RunningBlikk,
    warehouse: str,
    instance: dg.DagsterInstance,
    first: date | None = None,
    last: date | None = None,
    *,
    raise_on_error: bool = True,
    **options: Any,
) -> dg.ExecuteInProcessResult:
    default_first, default_last = window(sandbox)
    return materialize(
        [blikk_time_reports],
        {"blikk": sandbox.resource(change_scan=True, **{**FAST, **options})},
        warehouse,
        first=first or default_first,
        last=last or default_last,
        instance=instance,
        raise_on_error=raise_on_error,
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return materialization_metadata(result, TIME_REPORTS)


def scan_calls(sandbox: RunningBlikk) -> list[Any]:
    """Time report requests without a date filter: the scan's."""
    return [c for c in sandbox.stats.calls(TIME_REPORTS_PATH) if "filter.from" not in c.query]


def keys_on(sandbox: RunningBlikk, day: date) -> list[str]:
    return BlikkMutations(sandbox.data).entry_keys(day, day)


def unattested_on(sandbox: RunningBlikk, day: date) -> str:
    return next(
        str(r["id"])
        for r in sandbox.data.time_reports
        if r["date"] == day.isoformat() and not r.get("attestedDate") and not r.get("sentToAttestDate")
    )


def stored_days(warehouse: str) -> dict[str, date]:
    table = read_table(warehouse, "blikk.time_reports")
    return dict(zip(table["record_key"], table["work_date"].dt.date))


def test_the_document_shows_attesting_does_not_move_updated_date(doc_examples, start):
    # The document's example report: created 05:02:04, sent to attest 07:02:16, attested
    # 07:10:18 — and never updated. Attesting is not an update.
    example = doc_examples["time_reports_list"]["items"][0]
    assert example["createdDate"] < example["sentToAttestDate"] < example["attestedDate"]
    assert example["updatedDate"] is None
    # The sandbox behaves so; an edit (PUT) does stamp updatedDate.
    sandbox = start()
    mutations = BlikkMutations(sandbox.data)
    key = unattested_on(sandbox, old_day(sandbox, 20))
    before = dict(sandbox.data.time_report(int(key)))
    mutations.approve(key)
    after = sandbox.data.time_report(int(key))
    assert after["attestedDate"] and after["sentToAttestDate"]
    assert after["updatedDate"] == before["updatedDate"]
    mutations.edit_hours(key, 0.5)
    assert sandbox.data.time_report(int(key))["updatedDate"] == after["attestedDate"]


def test_first_run_sets_the_watermark_from_one_page_per_field_and_names_no_day(start, warehouse, instance):
    sandbox = start()
    result = run(sandbox, warehouse, instance)
    meta = metadata(result)
    assert meta["days_to_reread"] == []
    assert meta["change_scan_first_run"] == sorted(SCAN_FIELDS)
    assert meta["change_scan_changed_records"] == 0
    # One page of each sort, newest first, at the largest page size, on any work date.
    assert meta["change_scan_requests"] == 4
    assert meta["change_scan_requests_by_field"] == {name: 1 for name in SCAN_FIELDS}
    calls = scan_calls(sandbox)
    assert sorted(c.query for c in calls) == sorted(
        f"sortBy={name}&sortOrder=descending&page=1&pageSize=100" for name in SCAN_FIELDS
    )
    # The watermark: the newest value of each field. The seeded data end more than an hour
    # before this machine's clock, so no report can still get those stamps: settled.
    for name in SCAN_FIELDS:
        newest = max(r[name] for r in sandbox.data.time_reports if r[name])
        mark = meta[WATERMARK_KEY]["fields"][name]
        assert datetime.fromisoformat(mark["at"]) == parse_blikk_datetime(newest)
        assert mark["settled"] is True and mark["ids"] == []
    assert stored_watermark(instance, TIME_REPORTS_KEY) == meta[WATERMARK_KEY]


def test_changes_beyond_the_window_become_days_to_reread(start, warehouse, instance):
    sandbox = start()
    first, last = window(sandbox)
    run(sandbox, warehouse, instance, sandbox.config.first_date, last)  # load all 30 days
    mutations = BlikkMutations(sandbox.data)
    mutations.edit_hours(keys_on(sandbox, old_day(sandbox, 20))[0], 1.0)  # updatedDate
    mutations.approve(unattested_on(sandbox, old_day(sandbox, 18)))  # attestedDate, sentToAttestDate
    mutations.add_late(old_day(sandbox, 16))  # createdDate
    moved_out = keys_on(sandbox, last - timedelta(days=2))[0]
    mutations.move(moved_out, old_day(sandbox, 12))  # updatedDate, out of the window
    mutations.edit_hours(keys_on(sandbox, last)[0], 0.25)  # inside the window: the run reads it

    result = run(sandbox, warehouse, instance)
    meta = metadata(result)
    assert meta["days_to_reread"] == sorted(old_day(sandbox, n).isoformat() for n in (20, 18, 16, 12))
    assert meta["change_scan_changed_records"] == 5 and meta["change_scan_changed_in_window"] == 1
    assert meta["change_scan_first_run"] == [] and meta["change_scan_complete"] is True
    # Few changes: each sort stops on its first page, at the watermark.
    assert meta["change_scan_requests_by_field"] == {name: 1 for name in SCAN_FIELDS}
    # The report moved out left the window's days with this write and is on no day until
    # its new day, named above, is re-read.
    assert moved_out not in stored_days(warehouse)

    again = metadata(run(sandbox, warehouse, instance))
    assert again["days_to_reread"] == [] and again["change_scan_changed_records"] == 0
    assert again["change_scan_requests"] == 4


def test_paging_stops_at_the_watermark(start, warehouse, instance):
    sandbox = start(time_records=900, days=30)
    run(sandbox, warehouse, instance)
    total_pages = math.ceil(900 / 100)
    outside = [str(r["id"]) for r in sandbox.data.time_reports if r["date"] < window(sandbox)[0].isoformat()]
    sandbox.data.edit_time_reports([int(k) for k in outside[:250]])
    sandbox.stats.reset()

    meta = metadata(run(sandbox, warehouse, instance))
    assert meta["change_scan_changed_records"] == 250
    # 250 changes: pages 1-3 of the updatedDate sort (page 3 reaches the watermark) and one
    # re-read of page 1 to see that the list held still; the list has 9 pages.
    updated = [c for c in scan_calls(sandbox) if "sortBy=updatedDate" in c.query]
    assert [c.query.split("page=")[1].split("&")[0] for c in updated] == ["1", "2", "3", "1"]
    assert total_pages > 3
    assert meta["change_scan_requests_by_field"] == {
        "updatedDate": 4,
        "createdDate": 1,
        "attestedDate": 1,
        "sentToAttestDate": 1,
    }
    assert meta["change_scan_requests"] == 7
    expected_days = {sandbox.data.time_report(int(k))["date"] for k in outside[:250]}
    assert set(meta["days_to_reread"]) == expected_days


def test_reports_sharing_the_newest_second_are_told_apart_by_id_until_it_settles(
    start, warehouse, instance, monkeypatch
):
    sandbox = start(time_records=900, days=30)
    run(sandbox, warehouse, instance)
    first, _ = window(sandbox)
    bulk = [int(r["id"]) for r in sandbox.data.time_reports if r["date"] < first.isoformat()][:250]
    sandbox.data.edit_time_reports(bulk)  # one second, as a bulk change is stamped
    assert metadata(run(sandbox, warehouse, instance))["change_scan_changed_records"] == 250

    # A fresh mark keeps the 250 ids of its second: one more report edited in that same second
    # would be new. So the next scan reads the whole second (pages 1-3 and page 1 again) to
    # learn that nothing changed.
    mark = stored_watermark(instance, TIME_REPORTS_KEY)["fields"]["updatedDate"]
    assert mark["settled"] is False and sorted(mark["ids"]) == sorted(str(k) for k in bulk)
    fresh = metadata(run(sandbox, warehouse, instance))
    assert fresh["change_scan_changed_records"] == 0
    assert fresh["change_scan_requests_by_field"]["updatedDate"] == 4

    # Once the mark's second is older than SETTLED_AFTER by this machine's clock, it is final.
    monkeypatch.setattr(change_scan, "SETTLED_AFTER", timedelta(0))
    settling = metadata(run(sandbox, warehouse, instance))
    assert settling["change_scan_changed_records"] == 0
    assert stored_watermark(instance, TIME_REPORTS_KEY)["fields"]["updatedDate"]["settled"] is True
    settled = metadata(run(sandbox, warehouse, instance))
    assert settled["change_scan_changed_records"] == 0
    assert settled["change_scan_requests_by_field"]["updatedDate"] == 1


def test_a_failed_run_does_not_advance_the_watermark(start, warehouse, instance):
    sandbox = start()
    run(sandbox, warehouse, instance, sandbox.config.first_date, sandbox.config.anchor_date)
    before = stored_watermark(instance, TIME_REPORTS_KEY)
    table_before = read_table(warehouse, "blikk.time_reports")
    mutations = BlikkMutations(sandbox.data)
    mutations.edit_hours(keys_on(sandbox, old_day(sandbox, 21))[0], 2.0)

    # The scan succeeds (4 requests), the window read then fails: 500 is not retried.
    sandbox.knobs.update(script=[None] * 4 + [500], path_contains=TIME_REPORTS_PATH)
    failed = run(sandbox, warehouse, instance, raise_on_error=False)
    assert not failed.success
    assert len(scan_calls(sandbox)) >= 4
    assert stored_watermark(instance, TIME_REPORTS_KEY) == before
    assert read_table(warehouse, "blikk.time_reports").equals(table_before)

    # A failure inside the scan leaves it where it was too.
    sandbox.knobs.update(script=[None, 500], path_contains=TIME_REPORTS_PATH)
    assert not run(sandbox, warehouse, instance, raise_on_error=False).success
    assert stored_watermark(instance, TIME_REPORTS_KEY) == before

    # The next good run finds the edit the failed runs had seen.
    sandbox.knobs.clear()
    meta = metadata(run(sandbox, warehouse, instance))
    assert meta["days_to_reread"] == [old_day(sandbox, 21).isoformat()]
    assert stored_watermark(instance, TIME_REPORTS_KEY) != before


def test_an_outage_during_the_scan_is_retried(start, warehouse, instance):
    sandbox = start()
    run(sandbox, warehouse, instance)
    BlikkMutations(sandbox.data).add_late(old_day(sandbox, 25))
    sandbox.knobs.update(script=[503, 429], path_contains=TIME_REPORTS_PATH, retry_after="0", wait_hint_seconds=0.05)
    result = run(sandbox, warehouse, instance)
    meta = metadata(result)
    assert meta["days_to_reread"] == [old_day(sandbox, 25).isoformat()]
    assert meta["retries"] == 2 and sandbox.stats.faults_injected == {"503": 1, "429": 1}


def test_a_report_moved_into_the_window_and_back(start, warehouse, instance):
    sandbox = start()
    first, last = window(sandbox)
    run(sandbox, warehouse, instance, sandbox.config.first_date, last)
    mutations = BlikkMutations(sandbox.data)
    home = old_day(sandbox, 15)
    key = keys_on(sandbox, home)[0]

    # Into the window: the window read brings it and removes it from its old day.
    mutations.move(key, last - timedelta(days=1))
    into = metadata(run(sandbox, warehouse, instance))
    assert into["days_to_reread"] == []
    assert into["rows_moved_from_other_days"] == 1
    assert stored_days(warehouse)[key] == last - timedelta(days=1)

    # And back: the window read no longer has it; the scan names its day again.
    mutations.move(key, home)
    back = metadata(run(sandbox, warehouse, instance))
    assert back["days_to_reread"] == [home.isoformat()]
    assert key not in stored_days(warehouse)

    # The sensor re-reads that day as its own run; the report is back, once.
    sensor = build_reread_sensor([PLUGIN])
    with dg.build_sensor_context(instance=instance) as context:
        requests = sensor.evaluate_tick(context).run_requests
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests] == [(home.isoformat(), home.isoformat())]
    reread = metadata(run(sandbox, warehouse, instance, home, home))
    assert reread["days_to_reread"] == []
    table = read_table(warehouse, "blikk.time_reports")
    assert (table["record_key"] == key).sum() == 1 and stored_days(warehouse)[key] == home


def test_a_second_edit_within_the_second_the_scan_saw_is_still_found(start, warehouse, instance, monkeypatch):
    # Timestamps have whole seconds: a report edited, scanned and edited again within one
    # second shows the mark's value and id both times; only its content tells the edit.
    sandbox = start()
    first, last = window(sandbox)
    run(sandbox, warehouse, instance, sandbox.config.first_date, last)
    mutations = BlikkMutations(sandbox.data)
    home = old_day(sandbox, 15)
    key = keys_on(sandbox, home)[0]
    mutations.move(key, last - timedelta(days=1))
    run(sandbox, warehouse, instance)
    one_second = sandbox.data.time_report(int(key))["updatedDate"]
    monkeypatch.setattr(sandbox.data, "stamp", lambda: one_second)

    mutations.move(key, home)
    assert sandbox.data.time_report(int(key))["updatedDate"] == one_second
    back = metadata(run(sandbox, warehouse, instance))
    assert back["days_to_reread"] == [home.isoformat()]


def test_a_mark_covers_a_report_at_its_second_only_with_the_content_it_saw():
    at = parse_blikk_datetime("2025-03-01T12:00:00Z")
    seen = {"id": 7, "date": "2025-03-01", "minutes": 60}
    mark = change_scan.Mark(at, {"7": change_scan.fingerprint(seen)})
    assert mark.covers(at, "7", change_scan.fingerprint(seen))
    assert not mark.covers(at, "7", change_scan.fingerprint({**seen, "date": "2025-02-01"}))
    assert not mark.covers(at, "8", change_scan.fingerprint(seen))
    assert mark.covers(at - timedelta(seconds=1), "8")
    # A mark stored before fingerprints were kept trusts the id, as it did.
    legacy = change_scan.Mark.from_json({"at": at.isoformat(), "ids": ["7"], "settled": False})
    assert legacy is not None and legacy.covers(at, "7", "anything")
    assert change_scan.Mark.from_json(mark.to_json()) == mark


def test_a_deletion_is_not_seen_by_the_scan_and_waits_for_the_weekly_refresh(start, warehouse, instance):
    sandbox = start()
    run(sandbox, warehouse, instance, sandbox.config.first_date, sandbox.config.anchor_date)
    day = old_day(sandbox, 22)
    key = keys_on(sandbox, day)[0]
    BlikkMutations(sandbox.data).delete(key)

    daily = metadata(run(sandbox, warehouse, instance))
    assert daily["days_to_reread"] == [] and daily["change_scan_changed_records"] == 0
    assert key in stored_days(warehouse)
    # The deep refresh re-reads the long window, the deleted report's day with it.
    run(sandbox, warehouse, instance, sandbox.config.first_date, sandbox.config.anchor_date)
    assert key not in stored_days(warehouse)


@pytest.mark.parametrize("nulls_sort", ["lowest", "highest"])
def test_where_reports_without_a_value_sort_changes_the_cost_not_the_days(start, warehouse, instance, nulls_sort):
    # The document does not say where nulls go in a sorted list. Sorted highest (first when
    # descending), the scan finds the first page with values by bisection.
    sandbox = start(time_records=2000, days=30, employees=30)
    sandbox.data.nulls_sort = nulls_sort
    run(sandbox, warehouse, instance)
    mutations = BlikkMutations(sandbox.data)
    mutations.edit_hours(keys_on(sandbox, old_day(sandbox, 20))[0], 1.0)
    mutations.approve(unattested_on(sandbox, old_day(sandbox, 19)))
    mutations.add_late(old_day(sandbox, 17))

    meta = metadata(run(sandbox, warehouse, instance))
    assert meta["days_to_reread"] == sorted(old_day(sandbox, n).isoformat() for n in (20, 19, 17))
    assert meta["change_scan_complete"] is True
    by_field = meta["change_scan_requests_by_field"]
    pages = math.ceil(2000 / 100)
    if nulls_sort == "lowest":
        assert by_field == {name: 1 for name in SCAN_FIELDS}
    else:
        # updatedDate is null on ~3 of 4 reports: 15 null pages come first. Page 1, then
        # bisection over pages 2..20 (at most 5), then the walk from the first page with values.
        nulls = sum(1 for r in sandbox.data.time_reports if not r["updatedDate"])
        assert nulls > 10 * 100
        assert 2 <= by_field["updatedDate"] <= 1 + math.ceil(math.log2(pages)) + 3 < pages
        assert by_field["createdDate"] == 1  # createdDate is never null


@pytest.mark.parametrize("walks", [2, 1])
def test_a_deletion_during_a_multi_page_scan_is_caught_by_walking_again(start, warehouse, instance, walks):
    sandbox = start(time_records=900, days=30)
    run(sandbox, warehouse, instance)
    first, _ = window(sandbox)
    outside = [int(r["id"]) for r in sandbox.data.time_reports if r["date"] < first.isoformat()][:250]
    sandbox.data.edit_time_reports(outside)
    victim = max(outside)  # the edits share one second; ties sort by id, so this one is first
    slipping = sorted(outside)[-201]  # 201st of the 250: first on page 3, until the deletion

    def delete_during_page_two(path: str, page: int, body: Any) -> None:
        # The first page 2 asked for is the updatedDate scan's: deleting a report from page 1
        # shifts every later report up by one, so page 3's first report slips onto page 2,
        # which has been read already.
        if path == TIME_REPORTS_PATH and page == 2:
            sandbox.data.page_hooks.remove(delete_during_page_two)
            sandbox.data.delete_time_reports([victim])

    sandbox.data.page_hooks.append(delete_during_page_two)
    meta = metadata(run(sandbox, warehouse, instance, max_list_walks=walks))
    by_field = meta["change_scan_requests_by_field"]
    if walks == 2:
        # Pages 1-3, page 1 again (its count moved), pages 1-3 again, page 1 again: every
        # edited report found (the deleted one was read on page 1 before it went).
        assert by_field["updatedDate"] == 8
        assert meta["change_scan_changed_records"] == 250
        assert meta["change_scan_complete"] is True
    else:
        # One walk allowed: the slipped report is missed, so the mark stays where it was and
        # the next run walks the same stretch again and finds it.
        assert by_field["updatedDate"] == 4
        assert meta["change_scan_changed_records"] == 249
        assert meta["change_scan_complete"] is False
        slipped_day = sandbox.data.time_report(slipping)["date"]
        others = {sandbox.data.time_report(k)["date"] for k in outside if k not in (victim, slipping)}
        again = metadata(run(sandbox, warehouse, instance, max_list_walks=walks))
        assert again["change_scan_changed_records"] == 249 and again["change_scan_complete"] is True
        assert slipped_day in again["days_to_reread"]
        assert set(again["days_to_reread"]) == others | {slipped_day}
