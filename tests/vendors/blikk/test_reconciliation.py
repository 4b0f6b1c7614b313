"""The check ``reported_hours_match_blikk``: the warehouse's hours per user and day against
Blikk's ``GET /v1/Core/TimeReports/UserDayStatistics``, over real HTTP against the sandbox,
and the sandbox's endpoint as the document describes it."""

from __future__ import annotations

import base64
from datetime import date, timedelta
from typing import Any

import dagster as dg
import httpx
import pytest

from tests.support.dagster_helpers import materialize
from tests.vendors.blikk.conftest import RunningBlikk
from timesheet_assets.schedules import RANGE_END, RANGE_START
from timesheet_assets.settings import SettingError
from timesheet_assets.vendors.blikk.assets import blikk_time_reports
from timesheet_assets.vendors.blikk.reconcile import (
    CHECK_NAME,
    blikk_hours,
    check_window,
    reported_hours_match_blikk,
    reported_hours_reading,
)
from timesheet_assets.vendors.blikk.resource import USER_DAY_STATISTICS_PATH
from timesheet_assets.vendors.blikk.sandbox import SANDBOX_APP_ID, SANDBOX_APP_SECRET, BlikkMutations

FAST = dict(requests_per_second=50.0, backoff_cap_seconds=0.05)


@pytest.fixture
def start(blikk):
    def make(**config: Any) -> RunningBlikk:
        sandbox = blikk(**{"time_records": 400, "days": 40, **config})
        sandbox.server.sandbox.rate_rule = None
        return sandbox

    return make


def load(sandbox: RunningBlikk, warehouse: str, first: date, last: date) -> dg.ExecuteInProcessResult:
    """The time reports of ``first``..``last`` and the check, in one run (as a refresh runs)."""
    return materialize(
        [blikk_time_reports, reported_hours_match_blikk],
        {"blikk": sandbox.resource(**FAST)},
        warehouse,
        first=first,
        last=last,
    )


def check_alone(sandbox: RunningBlikk, warehouse: str, first: date, last: date) -> dg.ExecuteInProcessResult:
    """Only the check, over the given days, against what the warehouse holds."""
    return materialize(
        [blikk_time_reports, reported_hours_match_blikk],
        {"blikk": sandbox.resource(**FAST)},
        warehouse,
        selection=dg.AssetSelection.checks(reported_hours_match_blikk),
        run_config={
            "ops": {
                reported_hours_match_blikk.node_def.name: {
                    "config": {"first_day": first.isoformat(), "last_day": last.isoformat()}
                }
            }
        },
    )


def evaluation(result: dg.ExecuteInProcessResult) -> tuple[bool, dg.AssetCheckSeverity, dict[str, Any]]:
    found = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_NAME]
    assert len(found) == 1
    meta = {k: getattr(v, "value", v) for k, v in found[0].metadata.items()}
    return found[0].passed, found[0].severity, meta


def name_of(sandbox: RunningBlikk, user_id: int) -> str:
    user = next(u for u in sandbox.data.users if u["id"] == user_id)
    return f"{user['firstName']} {user['lastName']}"


def test_a_clean_load_matches_blikk_in_pieces_of_31_days(start, warehouse):
    sandbox = start()
    first, last = sandbox.config.first_date, sandbox.config.anchor_date
    result = load(sandbox, warehouse, first, last)
    passed, severity, meta = evaluation(result)
    assert passed and severity == dg.AssetCheckSeverity.WARN
    assert meta["window"] == f"{first} .. {last}"
    assert meta["user_days_compared"] == len(sandbox.data.users) * 40
    assert meta["user_days_differing"] == 0 and meta["days_differing"] == []
    total = round(sum(float(r["hours"]) for r in sandbox.data.time_reports), 2)
    assert meta["blikk_hours"] == meta["warehouse_hours"] == pytest.approx(total)
    # 40 days: one piece of 31 days and one of 9, one page of users each.
    calls = sandbox.stats.calls(USER_DAY_STATISTICS_PATH)
    assert meta["statistics_page_requests"] == len(calls) == 2
    spans = sorted((c.query.split("filter.from=")[1][:10], c.query.split("filter.to=")[1][:10]) for c in calls)
    assert spans == [
        (first.isoformat(), (first + timedelta(days=30)).isoformat()),
        ((first + timedelta(days=31)).isoformat(), last.isoformat()),
    ]
    assert all("pageSize=100" in c.query and "sortBy=name" in c.query for c in calls)


def test_names_the_days_and_people_the_warehouse_has_not_reread_yet(start, warehouse):
    sandbox = start()
    first, last = sandbox.config.first_date, sandbox.config.anchor_date
    load(sandbox, warehouse, first, last)
    mutations = BlikkMutations(sandbox.data)
    edited_day, moved_from, moved_to = first + timedelta(days=3), first + timedelta(days=9), first + timedelta(days=20)
    edited = sandbox.data.time_report(int(mutations.entry_keys(edited_day, edited_day)[0]))
    mutations.edit_hours(str(edited["id"]), 1.5)
    moved = sandbox.data.time_report(int(mutations.entry_keys(moved_from, moved_from)[0]))
    mutations.move(str(moved["id"]), moved_to)

    result = check_alone(sandbox, warehouse, first, last)
    assert result.success  # a WARN check reports; it does not fail the run
    passed, severity, meta = evaluation(result)
    assert not passed and severity == dg.AssetCheckSeverity.WARN
    assert meta["days_differing"] == sorted(d.isoformat() for d in (edited_day, moved_from, moved_to))
    editor, mover = edited["user"]["id"], moved["user"]["id"]
    assert meta["people_differing"] == sorted(
        {f"{editor} {name_of(sandbox, editor)}", f"{mover} {name_of(sandbox, mover)}"}
    )
    assert meta["user_days_differing"] == 3
    rows = meta["differences"].replace(" ", "")
    assert f"|{edited_day.isoformat()}|{editor}|{name_of(sandbox, editor).replace(' ', '')}|" in rows
    assert "|-1.5|" in rows
    assert f"|{moved_to.isoformat()}|{mover}|" in rows and f"|{moved_from.isoformat()}|{mover}|" in rows

    # Re-reading those days brings the warehouse level with Blikk again.
    load(sandbox, warehouse, edited_day, moved_to)
    passed, _, meta = evaluation(check_alone(sandbox, warehouse, first, last))
    assert passed and meta["user_days_differing"] == 0


@pytest.mark.parametrize("served", ["all", "without_absence"])
@pytest.mark.parametrize("setting", ["all", "without_absence"])
def test_which_reports_count_is_a_setting(start, warehouse, monkeypatch, served, setting):
    # The document does not say whether reportedHours includes absence; a wrong reading would
    # flag every day with absence as differing.
    sandbox = start()
    sandbox.data.reported_hours_counts = served
    monkeypatch.setenv("BLIKK_REPORTED_HOURS", setting)
    first, last = sandbox.config.first_date, sandbox.config.anchor_date
    passed, _, meta = evaluation(load(sandbox, warehouse, first, last))
    assert meta["reported_hours_counts"] == setting
    absence_days = sorted({r["date"] for r in sandbox.data.time_reports if r.get("absenceProject")})
    assert absence_days
    if served == setting:
        assert passed and meta["days_differing"] == []
    else:
        assert not passed and meta["days_differing"] == absence_days


def test_statistics_the_check_cannot_read_fail_it(start, warehouse):
    sandbox = start(days=10, time_records=100)

    def break_one_user(path: str, page: int, body: Any) -> None:
        if path == USER_DAY_STATISTICS_PATH:
            body["items"][0]["dates"][0]["reportedHours"] = "lots"

    sandbox.data.page_hooks.append(break_one_user)
    passed, _, meta = evaluation(load(sandbox, warehouse, sandbox.config.first_date, sandbox.config.anchor_date))
    assert not passed
    assert len(meta["statistics_unreadable"]) == 1 and "reportedHours" in meta["statistics_unreadable"][0]


# -- the sandbox's endpoint, as documented ---------------------------------------------------
def _authorize(client: httpx.Client) -> httpx.Client:
    basic = base64.b64encode(f"{SANDBOX_APP_ID}:{SANDBOX_APP_SECRET}".encode()).decode()
    token = client.post("/v1/Auth/Token", headers={"Authorization": f"Basic {basic}"}).json()["accessToken"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_user_day_statistics_are_served_as_the_document_shows(start, doc_examples):
    sandbox = start(employees=150, days=10, time_records=200)
    first = sandbox.config.first_date
    with httpx.Client(base_url=sandbox.server.url) as client:
        _authorize(client)
        answer = client.get(
            USER_DAY_STATISTICS_PATH,
            params={
                "page": 1,
                "pageSize": 100,
                "sortBy": "name",
                "filter.from": first.isoformat(),
                "filter.to": (first + timedelta(days=30)).isoformat(),
            },
        )
        assert answer.status_code == 200
        body = answer.json()
        example = doc_examples["user_day_statistics_list"]
        assert set(body) == set(example)
        assert (body["page"], body["pageSize"], body["itemCount"], body["totalItemCount"], body["totalPages"]) == (
            1,
            100,
            100,
            150,
            2,
        )
        item, example_item = body["items"][0], example["items"][0]
        assert set(item) == set(example_item) and item["objectName"] == example_item["objectName"]
        assert len(item["dates"]) == 31
        assert set(item["dates"][0]) == set(example_item["dates"][0])
        assert [d["date"] for d in item["dates"]][:2] == [first.isoformat(), (first + timedelta(days=1)).isoformat()]
        names = [u["name"] for u in body["items"]]
        assert names == sorted(names)

        chosen = client.get(
            USER_DAY_STATISTICS_PATH,
            params={
                "page": 1,
                "filter.from": first.isoformat(),
                "filter.to": first.isoformat(),
                "filter.userIds": "2,3",
                "sortBy": "name",
                "sortOrder": "descending",
            },
        ).json()
        assert sorted(u["userId"] for u in chosen["items"]) == [2, 3] and chosen["pageSize"] == 25

        refused = {
            "span of 32 days": {
                "page": 1,
                "filter.from": first.isoformat(),
                "filter.to": (first + timedelta(days=31)).isoformat(),
            },
            "no page": {"filter.from": first.isoformat(), "filter.to": first.isoformat()},
            "page size 101": {
                "page": 1,
                "pageSize": 101,
                "filter.from": first.isoformat(),
                "filter.to": first.isoformat(),
            },
            "sort by date": {
                "page": 1,
                "sortBy": "date",
                "filter.from": first.isoformat(),
                "filter.to": first.isoformat(),
            },
            "no span": {"page": 1},
            "end before start": {
                "page": 1,
                "filter.from": first.isoformat(),
                "filter.to": (first - timedelta(days=1)).isoformat(),
            },
        }
        for case, params in refused.items():
            answer = client.get(USER_DAY_STATISTICS_PATH, params=params)
            assert answer.status_code == 400, case
            assert answer.json()["message"] == "The request is invalid." and answer.json()["modelState"], case


def test_the_client_reads_every_user_in_pages_and_pieces(start):
    sandbox = start(employees=150, days=40, time_records=300)
    resource = sandbox.resource(**FAST)
    try:
        listings = resource.fetch_user_day_statistics(sandbox.config.first_date, sandbox.config.anchor_date)
    finally:
        resource.close()
    assert [len(listing.records) for listing in listings] == [150, 150]
    assert all(listing.complete for listing in listings)
    assert sandbox.stats.count(USER_DAY_STATISTICS_PATH) == 4  # 2 pieces x 2 pages of 100
    found = blikk_hours(
        [item for listing in listings for item in listing.records],
        sandbox.config.first_date,
        sandbox.config.anchor_date,
    )
    assert len(found.hours) == 150 * 40
    assert sum(found.hours.values()) == pytest.approx(sum(float(r["hours"]) for r in sandbox.data.time_reports))


# -- pure parts ------------------------------------------------------------------------------
def test_the_documents_example_reads_as_hours_per_user_day(doc_examples):
    found = blikk_hours(doc_examples["user_day_statistics_list"]["items"], date(2021, 10, 1), date(2021, 10, 2))
    assert found.hours == {("1", date(2021, 10, 1)): 8.5, ("1", date(2021, 10, 2)): 4.25}
    assert found.names == {"1": "John Doe"} and found.unreadable == []


def test_the_window_is_the_config_then_the_runs_range_then_the_lookback(monkeypatch):
    today = date(2026, 5, 20)
    monkeypatch.delenv("BLIKK_LOOKBACK_DAYS", raising=False)
    monkeypatch.delenv("TIMESHEET_LOOKBACK_DAYS", raising=False)
    tags = {RANGE_START: "2026-04-01", RANGE_END: "2026-04-30"}
    assert check_window(tags, "2026-05-01", "2026-05-03", today) == (date(2026, 5, 1), date(2026, 5, 3))
    assert check_window(tags, None, None, today) == (date(2026, 4, 1), date(2026, 4, 30))
    assert check_window({"dagster/partition": "2026-04-07"}, None, None, today) == (date(2026, 4, 7),) * 2
    assert check_window({}, None, None, today) == (date(2026, 5, 7), today)
    monkeypatch.setenv("BLIKK_LOOKBACK_DAYS", "3")
    assert check_window({}, None, None, today) == (date(2026, 5, 18), today)
    with pytest.raises(ValueError, match="ends"):
        check_window({}, "2026-05-03", "2026-05-01", today)


def test_the_reading_setting_refuses_unknown_values():
    assert reported_hours_reading({}) == "all"
    assert reported_hours_reading({"BLIKK_REPORTED_HOURS": " Without_Absence "}) == "without_absence"
    with pytest.raises(SettingError, match="BLIKK_REPORTED_HOURS must be one of all, without_absence"):
        reported_hours_reading({"BLIKK_REPORTED_HOURS": "work"})
