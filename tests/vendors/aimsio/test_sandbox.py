"""The Aimsio sandbox is as strict as the document: auth, shapes, errors and the limiter."""

from __future__ import annotations

import re
import threading
import time

import httpx

from timesheet_assets.vendors.aimsio.sandbox import (
    DOC_EXAMPLE_TIMECARD,
    NO_PERMISSION_PASSWORD,
    NO_PERMISSION_USERNAME,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    AimsioStore,
    expected_timesheets,
)

from .support import API, config, start

AUTH = (SANDBOX_USERNAME, SANDBOX_PASSWORD)
HOURS = re.compile(r"^\d+\.\d{3}$")


def test_basic_auth_is_required_and_permission_checked(serve_app):
    server, _ = start(serve_app, config(3))
    url = f"{server.url}{API}/CurrentTimeCard"
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert anonymous.json()["message"] == "Full authentication is required to access this resource"
    assert httpx.get(url, auth=(SANDBOX_USERNAME, "wrong")).status_code == 401
    forbidden = httpx.get(url, auth=(NO_PERMISSION_USERNAME, NO_PERMISSION_PASSWORD))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == "Forbidden"
    assert httpx.get(url, auth=AUTH).status_code == 200


def test_list_and_detail_shapes_follow_the_document(serve_app):
    server, store = start(serve_app, config(5))
    stubs = httpx.get(f"{server.url}{API}/CurrentTimeCard", auth=AUTH).json()
    assert isinstance(stubs, list) and len(stubs) == 5
    for stub in stubs:
        assert set(stub) == {"dtype", "guid", "updatedAt"}
        assert stub["dtype"] == "TimeCard" and isinstance(stub["updatedAt"], int)
    detail = httpx.get(f"{server.url}{API}/CurrentTimeCard/{stubs[0]['guid']}", auth=AUTH).json()
    assert set(detail) == set(DOC_EXAMPLE_TIMECARD)  # same keys, including "timeCarddescription"
    assert detail["timeCardGuid"] == stubs[0]["guid"]
    for key in (
        "timeCardEmployeeRegularHours",
        "timeCardEmployeeOverTimeHours",
        "timeCardEmployeeDoubleTimeHours",
        "timeCardEmployeeTravelTimeHours",
    ):
        assert HOURS.match(detail[key]), (key, detail[key])
    assert isinstance(detail["timeCardRecordDate"], int) and isinstance(detail["timeCardCreatedAt"], int)
    jobs = httpx.get(f"{server.url}{API}/JobOrder", auth=AUTH).json()
    assert len(jobs) == 6 and {j["dtype"] for j in jobs} == {"JobOrder"}
    job = httpx.get(f"{server.url}{API}/JobOrder/{jobs[0]['guid']}", auth=AUTH).json()
    assert job["jobOrderGuid"] == jobs[0]["guid"] and "jobOrderCrew" in job


def test_unknown_guid_and_undocumented_query_parameters_are_refused(serve_app):
    server, _ = start(serve_app, config(2))
    missing = httpx.get(f"{server.url}{API}/CurrentTimeCard/no-such-guid", auth=AUTH)
    assert missing.status_code == 404
    assert missing.json()["message"] == "CurrentTimeCard not found: no-such-guid"
    filtered = httpx.get(f"{server.url}{API}/CurrentTimeCard", params={"updatedSince": 1}, auth=AUTH)
    assert filtered.status_code == 400
    assert filtered.json()["message"] == "Unsupported query parameter(s): updatedSince"


def test_an_eleventh_call_in_flight_is_refused(serve_app):
    server, _ = start(serve_app, config(2))
    server.sandbox.knobs.update(latency_seconds=0.5)
    statuses: list[int] = []
    bodies: list[dict] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def call() -> None:
        with httpx.Client() as client:
            barrier.wait()
            response = client.get(f"{server.url}{API}/CurrentTimeCard", auth=AUTH)
        with lock:
            statuses.append(response.status_code)
            bodies.append(response.json())

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 10 + [429] * 2
    refused = [b for b in bodies if isinstance(b, dict) and b.get("status") == 429]
    assert refused[0]["message"] == "Too many parallel calls: up to 10 are permitted"
    stats = server.sandbox.stats.summary()
    assert stats["refused_in_flight"] == 2 and stats["peak_in_flight"] == 10


def test_more_than_ten_calls_in_a_second_queue(serve_app):
    server, _ = start(serve_app, config(2))
    # The vendor's clock stands still: all eleven arrive in one second however slowly this
    # machine sends them.
    server.sandbox.clock = lambda: 1000.0
    started = time.monotonic()
    with httpx.Client(auth=AUTH) as client:
        statuses = [client.get(f"{server.url}{API}/CurrentTimeCard").status_code for _ in range(11)]
    elapsed = time.monotonic() - started
    assert statuses == [200] * 11
    stats = server.sandbox.stats.summary()
    assert stats["queued"] == 1 and stats["timed_out"] == 0
    assert elapsed >= 0.9  # the 11th waited for the first to leave the one-second window


def test_a_call_that_would_wait_past_the_queue_timeout_gets_504(serve_app):
    server, _ = start(serve_app, config(2))
    # With at most 10 in flight the queue never reaches 5 s, so shorten it to see the answer.
    server.sandbox.rate_rule.queue_timeout_seconds = 0.05
    with httpx.Client(auth=AUTH) as client:
        responses = [client.get(f"{server.url}{API}/CurrentTimeCard") for _ in range(11)]
    assert [r.status_code for r in responses] == [200] * 10 + [504]
    assert responses[-1].json()["error"] == "Gateway Timeout"
    assert responses[-1].json()["message"].startswith("Request timed out")
    assert server.sandbox.stats.summary()["timed_out"] == 1


def test_mutations_bump_updated_at_past_everything_and_change_hours(serve_app):
    server, store = start(serve_app, config(10))
    before = {s["guid"]: s["updatedAt"] for s in store.timecard_stubs()}
    hours_before = {g: store.timecard(g)["timeCardEmployeeRegularHours"] for g in before}
    response = httpx.post(f"{server.url}/_control/aimsio/mutate", params={"count": 3})
    changed = response.json()["changed"]
    assert len(changed) == 3 and len(set(changed)) == 3
    after = {s["guid"]: s["updatedAt"] for s in store.timecard_stubs()}
    assert min(after[g] for g in changed) > max(before.values())
    assert all(after[g] == before[g] for g in before if g not in changed)
    assert all(store.timecard(g)["timeCarddescription"].startswith("Revised") for g in changed)
    assert any(store.timecard(g)["timeCardEmployeeRegularHours"] != hours_before[g] for g in changed)
    # The control route is outside the documented limiter.
    assert server.sandbox.stats.summary()["rate_exceeded"] == 0


def test_seeded_data_is_deterministic_and_covers_the_window():
    cfg = config(120)
    first, second = AimsioStore(cfg), AimsioStore(cfg)
    assert first.timecards == second.timecards and first.timecard_updated == second.timecard_updated
    everything = expected_timesheets(cfg, cfg.first_date, cfg.anchor_date)
    deleted = sum(1 for body in first.timecards.values() if body["timeCardIsDeleted"])
    assert everything["lines"] == 120 - deleted
    assert 0 < deleted < 20
    one_day = expected_timesheets(cfg, cfg.anchor_date, cfg.anchor_date)
    assert 0 < one_day["lines"] < everything["lines"]


def test_mutations_change_what_the_api_serves_as_the_document_allows(serve_app, monkeypatch):
    from datetime import timedelta

    from timesheet_assets.sandbox.mutations import SourceMutations
    from timesheet_assets.vendors.aimsio.sandbox import _work_date

    from .support import ANCHOR

    server, store = start(serve_app, config(12))
    mutations = server.sandbox.extra["mutations"]
    assert isinstance(mutations, SourceMutations)
    api = f"{server.url}{API}/CurrentTimeCard"

    def mutate(**body):
        answer = httpx.post(f"{server.url}/_sandbox/mutate", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["key"]

    def stubs() -> dict[str, int]:
        return {s["guid"]: s["updatedAt"] for s in httpx.get(api, auth=AUTH).json()}

    def card(key: str) -> httpx.Response:
        return httpx.get(f"{api}/{key}", auth=AUTH)

    keys = mutations.entry_keys(ANCHOR - timedelta(days=30), ANCHOR)
    edited, moved, exported, deleted, hard, processed = keys[:6]
    high_water = max(stubs().values())
    hours = float(card(edited).json()["timeCardEmployeeRegularHours"])
    mutate(op="edit_hours", key=edited, delta=1.5)
    assert float(card(edited).json()["timeCardEmployeeRegularHours"]) == hours + 1.5
    assert stubs()[edited] > high_water
    target = ANCHOR - timedelta(days=20)
    assert mutate(op="move", key=moved, day=target.isoformat()) == moved  # the GUID stays
    assert _work_date(card(moved).json()) == target
    mutate(op="approve", key=exported)
    assert card(exported).json()["timeCardIsExportedToIntegration"] is True
    mutate(op="delete", key=deleted)
    assert card(deleted).json()["timeCardIsDeleted"] is True and deleted in stubs()
    late = mutate(op="add_late", day=(ANCHOR - timedelta(days=2)).isoformat())
    assert card(late).status_code == 200 and stubs()[late] < max(stubs().values())

    mutations.hard_delete(hard)
    assert hard not in stubs() and card(hard).status_code == 404
    mutations.process(processed)
    assert processed not in stubs()
    assert card(processed).json()["timeCardPayrollPeriodStatus"] == "CLOSED"

    everything = (ANCHOR - timedelta(days=400), ANCHOR)
    monkeypatch.setenv("AIMSIO_VANISHED_TIMECARDS", "keep")
    kept = mutations.expected_lines(*everything).set_index("entry_id")
    assert {hard, processed, late} <= set(kept.index) and deleted not in kept.index
    assert kept.loc[processed, "status"] == "paid" and kept.loc[exported, "status"] == "submitted"
    assert kept.loc[moved, "work_date"] == target
    monkeypatch.setenv("AIMSIO_VANISHED_TIMECARDS", "drop")
    dropped = set(mutations.expected_lines(*everything)["entry_id"])
    assert dropped == set(kept.index) - {hard, processed}
