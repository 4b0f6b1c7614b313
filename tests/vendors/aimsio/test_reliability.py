"""Aimsio under faults and bad input, through Dagster over HTTP against the sandbox (issue 9).

Every run either completes with each sandbox record exactly once in the raw tables, or fails
with a message naming vendor, endpoint path, status and attempt count while the warehouse (and
with it the stored ``updatedAt`` per GUID that the next run compares the listing with) stays
exactly as the last successful run left it.

Token/session expiry does not apply: Aimsio uses HTTP Basic on every call, there is nothing to
expire or renew. Credentials revoked mid-run (a 401 during the detail fan-out) are covered
below; a 401 from the start is in ``test_resource.py``. Aimsio documents no 429 and no body
wait hint; its own limiter answers are covered in ``test_resource.py`` and
``test_sandbox.py``; here 429 storms are injected with and without ``Retry-After``.

Fault runs use ``unthrottled()`` (the documented limiter is not under test here) and small
retry backoffs, so the whole file stays within a few seconds per fault.
"""

from __future__ import annotations

import json
import re
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import materialization_metadata, read_table
from timesheet_assets.storage import warehouse as warehouse_module
from timesheet_assets.vendors.aimsio.assets import build_assets
from timesheet_assets.vendors.aimsio.conform import conform_job_orders, conform_timecards
from timesheet_assets.vendors.aimsio.resource import basic_token
from timesheet_assets.vendors.aimsio.sandbox import (
    DOC_EXAMPLE_TIMECARD,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    AimsioStore,
)

from .support import (
    API,
    JOB_ORDERS,
    JOB_ORDERS_ASSET,
    JOB_ORDERS_KEY,
    TIMECARDS,
    TIMECARDS_ASSET,
    TIMECARDS_KEY,
    config,
    detail_calls,
    list_calls,
    run_raw,
    start,
    stored_versions,
    unthrottled,
)

TIMECARDS_TABLE = "aimsio.timecards"
JOB_ORDERS_TABLE = "aimsio.job_orders"
TIMECARDS_NODE = "raw__aimsio__timecards"
JOB_ORDERS_NODE = "raw__aimsio__job_orders"
BOTH = [TIMECARDS_ASSET, JOB_ORDERS_ASSET]


def fast(server, **overrides: Any):
    """Limiter off, tiny backoffs, a short read timeout."""
    values: dict[str, Any] = {"max_attempts": 3, "backoff_cap_seconds": 0.02, "timeout_seconds": 0.25}
    values.update(overrides)
    return unthrottled(server, **values)


def failure_text(result: dg.ExecuteInProcessResult, node: str = TIMECARDS_NODE) -> str:
    """The step's error and its causes, as the run's event log shows them."""
    failure = result.failure_data_for_node(node)
    assert failure is not None, f"{node} did not fail"
    parts, error = [], failure.error
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


def table(warehouse: str, name: str = TIMECARDS_TABLE) -> pd.DataFrame:
    return read_table(warehouse, name).sort_values("record_key").reset_index(drop=True)


def assert_every_record_once(warehouse: str, store: AimsioStore) -> None:
    for name, expected in ((TIMECARDS_TABLE, store.timecards), (JOB_ORDERS_TABLE, store.job_orders)):
        keys = read_table(warehouse, name)["record_key"]
        assert keys.is_unique, f"{name}: duplicate keys"
        assert set(keys) == set(expected), f"{name}: keys differ from the sandbox's"


def node_metadata(result: dg.ExecuteInProcessResult, key: list[str]) -> dict[str, Any]:
    return materialization_metadata(result, key)


# -- 1. transient faults: retried, every row exactly once -------------------------------------

RECOVERED = {
    # Eight detail calls in a row refused with "Retry-After: 1": each is retried after the
    # hinted second (and the shared limiter pauses every thread meanwhile), none is lost.
    "429-storm-retry-after": dict(script=[429] * 8, path_contains="/CurrentTimeCard/", retry_after="1"),
    # The list call refused once with Retry-After as an HTTP-date about two seconds ahead.
    "429-retry-after-http-date": dict(
        script=[429], path_contains="/CurrentTimeCard", retry_after="http-date", wait_hint_seconds=2.0
    ),
    # A gateway burst over list and detail calls of both entities (504 is Aimsio's queue timeout).
    "502-503-504-burst": dict(script=[502, None, 503, 504, 502, 503, None, 502]),
    # No answer within the client's 0.25 s read timeout (the sandbox stalls 1 s).
    "read-timeout": dict(script=["timeout", None, "timeout", "timeout"], timeout_seconds=1.0),
    "connection-reset-mid-body": dict(script=["reset", None, "reset", "reset", None, "reset"]),
    "truncated-json": dict(script=["truncate", None, "truncate", "truncate", None, "truncate"]),
}


@pytest.mark.parametrize("fault", list(RECOVERED))
def test_a_transient_fault_is_retried_and_every_row_lands_exactly_once(fault, serve_app, warehouse, instance):
    server, store = start(serve_app, config(8, projects=3))
    # More attempts than injected faults: no single call can exhaust them, whatever the
    # threads' order.
    resource = fast(server, max_attempts=10)
    knobs = RECOVERED[fault]
    server.sandbox.knobs.update(**knobs)
    result = run_raw(server, warehouse, instance, assets=BOTH, resource=resource)
    assert result.success
    injected = sum(server.sandbox.stats.faults_injected.values())
    assert injected == len([f for f in knobs["script"] if f is not None])

    assert_every_record_once(warehouse, store)
    cards, jobs = node_metadata(result, TIMECARDS_KEY), node_metadata(result, JOB_ORDERS_KEY)
    assert (cards["rows"], cards["quarantined"]) == (8, 0)
    assert (jobs["rows"], jobs["quarantined"]) == (3, 0)
    # Each fault cost exactly one more call, nothing else was re-fetched.
    assert cards["retries"] + jobs["retries"] == injected
    assert server.sandbox.stats.requests == (1 + 8) + (1 + 3) + injected
    assert stored_versions(warehouse) == store.timecard_updated
    assert stored_versions(warehouse, JOB_ORDERS_TABLE) == store.job_order_updated
    if fault.startswith("429"):
        # The server's wait was honoured (counted as rate-limit wait), not the 0.02 s backoff.
        # Waits are wall time: threads waiting out the storm's seconds together count once.
        minimum = 0.9
        assert cards["seconds_waited_rate_limit"] >= minimum


def test_faults_spread_over_the_ten_detail_threads_neither_duplicate_nor_skip_records(serve_app, warehouse, instance):
    """Issue 9 item 3 for the fan-out: mixed faults hit the 10 concurrent detail calls; each
    record is still fetched successfully once and written once, with its listed
    ``updatedAt``."""
    server, store = start(serve_app, config(40))
    resource = fast(server, max_attempts=16)
    faults = [
        502,
        "reset",
        503,
        "truncate",
        429,
        None,
        "timeout",
        504,
        None,
        "reset",
        503,
        None,
        "truncate",
        502,
        None,
        429,
        "timeout",
        None,
        503,
        502,
    ]
    server.sandbox.knobs.update(script=faults, path_contains="/CurrentTimeCard/", retry_after=None, timeout_seconds=0.5)
    result = run_raw(server, warehouse, instance, resource=resource)
    injected = len([f for f in faults if f is not None])
    assert sum(server.sandbox.stats.faults_injected.values()) == injected
    fetched = detail_calls(server)
    assert len(fetched) == 40 + injected and set(fetched) == set(store.timecards)
    assert server.sandbox.stats.summary()["peak_in_flight"] <= 10
    meta = node_metadata(result, TIMECARDS_KEY)
    assert (meta["rows"], meta["retries"], meta["detail_requests"]) == (40, injected, 40)
    assert stored_versions(warehouse) == store.timecard_updated
    raw = read_table(warehouse, TIMECARDS_TABLE)
    assert len(raw) == 40 and raw["record_key"].is_unique
    # Each row holds the detail of its own key (no thread mixed two answers up).
    assert all(json.loads(p)["timeCardGuid"] == k for k, p in zip(raw["record_key"], raw["payload"]))


# -- 2. faults that outlast the retries: clear failure, warehouse untouched -------------------


def _crash_after_insert(proof: list[int]):
    """The real warehouse write runs (delete + insert inside its transaction), then fails."""
    original = warehouse_module.ByNamePandasTypeHandler.handle_output

    def handle_output(self, context, table_slice, obj, connection):
        original(self, context, table_slice, obj, connection)
        proof.append(
            connection.execute("SELECT count(*) FROM aimsio.timecards WHERE description LIKE 'Revised%'").fetchone()[0]
        )
        raise OSError("warehouse disk full (after the insert, before the commit)")

    return handle_output


def test_faults_that_outlast_the_retries_fail_clearly_and_change_nothing(serve_app, warehouse, instance, monkeypatch):
    server, store = start(serve_app, config(12))
    resource = fast(server)
    run_raw(server, warehouse, instance, resource=resource)
    versions = stored_versions(warehouse)
    assert versions == store.timecard_updated
    token = basic_token(SANDBOX_USERNAME, SANDBOX_PASSWORD)
    changed_total: set[str] = set()
    crash_proof: list[int] = []

    def detail(status: str) -> str:
        return rf"Aimsio GET {API}/{TIMECARDS}/[0-9a-f-]{{36}} failed with {status}"

    listing = rf"Aimsio GET {API}/{TIMECARDS} failed with "
    cases = [
        # (name, knobs for one changed detail ("{guid}") or the list call, expected message)
        ("http-500", dict(script=[500], path_contains="/{guid}"), detail("HTTP 500 after 1 attempt:")),
        (
            "503-outage-on-one-detail",
            dict(status_rates={503: 1.0}, path_contains="/{guid}"),
            detail("HTTP 503 after 3 attempts:"),
        ),
        (
            "429-storm-without-end",
            dict(status_rates={429: 1.0}, retry_after=None, path_contains=f"/{TIMECARDS}"),
            listing + "HTTP 429 after 3 attempts:",
        ),
        (
            "read-timeout",
            dict(script=["timeout"] * 3, timeout_seconds=0.5, path_contains="/{guid}"),
            detail("no response after 3 attempts: ReadTimeout"),
        ),
        (
            "connection-reset",
            dict(reset_rate=1.0, path_contains="/{guid}"),
            detail("no response after 3 attempts: RemoteProtocolError"),
        ),
        (
            "truncated-list",
            dict(truncate_rate=1.0, path_contains=f"/{TIMECARDS}"),
            listing + "HTTP 200 after 3 attempts: response body is not valid JSON",
        ),
        (
            "credentials-revoked-mid-fan-out",
            dict(script=[401, 401], path_contains="/{guid}"),
            detail("HTTP 401 after 2 attempts: .*check AIMSIO_USERNAME / AIMSIO_PASSWORD"),
        ),
        ("write-fails-after-insert", {}, r"OSError: warehouse disk full"),
    ]
    for name, knobs, expected in cases:
        changed = store.mutate_timecards(4)
        changed_total.update(changed)
        before = table(warehouse)
        server.sandbox.stats.reset()
        if "path_contains" in knobs:
            knobs = {**knobs, "path_contains": knobs["path_contains"].format(guid=changed[1])}
        server.sandbox.knobs.update(**knobs)
        if name == "write-fails-after-insert":
            monkeypatch.setattr(
                warehouse_module.ByNamePandasTypeHandler, "handle_output", _crash_after_insert(crash_proof)
            )
        failed = run_raw(server, warehouse, instance, resource=resource, raise_on_error=False)
        monkeypatch.undo()
        server.sandbox.knobs.clear()

        assert not failed.success, name
        text = failure_text(failed)
        assert re.search(expected, text), (name, text)
        assert SANDBOX_PASSWORD not in text and token not in text, name
        pd.testing.assert_frame_equal(table(warehouse), before, obj=name)
        assert stored_versions(warehouse) == versions, name
        if name == "503-outage-on-one-detail":
            # Other details of the fan-out had already arrived; none of them was written.
            ok = [r for r in server.sandbox.stats.calls() if r.status == 200 and f"/{TIMECARDS}/" in r.path]
            assert len(ok) >= 1
        if name == "write-fails-after-insert":
            assert crash_proof and crash_proof[0] >= 4  # the new rows were in, then rolled back

    # The next clean run fetches every change the table does not hold yet, once each.
    server.sandbox.stats.reset()
    recovered = run_raw(server, warehouse, instance, resource=resource)
    assert list_calls(server) == 1
    assert sorted(detail_calls(server)) == sorted(changed_total)
    raw = table(warehouse).set_index("record_key")
    assert len(raw) == 12 and raw.index.is_unique
    for guid in changed_total:
        assert raw.loc[guid, "description"] == store.timecard(guid)["timeCarddescription"]
    assert node_metadata(recovered, TIMECARDS_KEY)["detail_requests"] == len(changed_total)
    assert stored_versions(warehouse) == store.timecard_updated


def test_a_change_landing_during_the_fan_out_is_fetched_by_the_next_run(serve_app, warehouse, instance, monkeypatch):
    """A row keeps the ``updatedAt`` the list call showed, not the clock: a record edited
    while the details are being fetched lists a different one next run and comes again."""
    edited: list[str] = []
    original = AimsioStore.timecard

    def timecard(self, guid):
        if not edited:
            target = next(g for g in self.timecards if g != guid)
            edited.append(target)
            with self._lock:
                self.timecards[target]["timeCarddescription"] = "edited during the run"
                self.timecard_updated[target] = self._next_updated_at()
        return original(self, guid)

    monkeypatch.setattr(AimsioStore, "timecard", timecard)  # before the app binds its routes
    server, store = start(serve_app, config(6))
    resource = fast(server)
    first = run_raw(server, warehouse, instance, resource=resource)
    assert len(edited) == 1
    assert first.success
    assert stored_versions(warehouse)[edited[0]] < store.timecard_updated[edited[0]]
    server.sandbox.stats.reset()
    run_raw(server, warehouse, instance, resource=resource)
    assert detail_calls(server) == edited
    raw = table(warehouse).set_index("record_key")
    assert raw.loc[edited[0], "description"] == "edited during the run"
    assert len(raw) == 6


def test_permanent_errors_skip_step_retries_and_outages_use_them(serve_app, warehouse, instance):
    """The shared ``permanent_errors_fail_fast`` wiring, with a zero-delay step retry."""
    timecards, job_orders = build_assets(retry_policy=dg.RetryPolicy(max_retries=1))
    server, _ = start(serve_app, config(3, projects=2))

    rejected = run_raw(
        server,
        warehouse,
        instance,
        assets=[timecards],
        resource=fast(server, password="not-the-password"),
        raise_on_error=False,
    )
    assert not rejected.success
    text = failure_text(rejected)
    assert f"Aimsio GET {API}/{TIMECARDS} failed with HTTP 401 after 2 attempts" in text
    assert "not-the-password" not in text and basic_token(SANDBOX_USERNAME, "not-the-password") not in text
    assert list_calls(server) == 2  # one step attempt: the call and its one re-send
    assert not [e for e in rejected.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]

    server.sandbox.stats.reset()
    server.sandbox.knobs.update(status_rates={503: 1.0}, path_contains=f"/{JOB_ORDERS}")
    outage = run_raw(
        server, warehouse, instance, assets=[job_orders], resource=fast(server, max_attempts=2), raise_on_error=False
    )
    assert not outage.success
    assert f"Aimsio GET {API}/{JOB_ORDERS} failed with HTTP 503 after 2 attempts" in failure_text(
        outage, JOB_ORDERS_NODE
    )
    assert list_calls(server, JOB_ORDERS) == 4  # two step attempts of two calls each
    assert len([e for e in outage.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 1


# -- 3. bad and drifting payloads -------------------------------------------------------------

GARBAGE_STUBS = [
    42,
    {"dtype": "TimeCard"},
    {"dtype": "TimeCard"},  # the same unusable element twice
    {"dtype": "TimeCard", "guid": "bad-updated-at", "updatedAt": "yesterday"},
]
BAD_TIMECARDS = {
    # key: (change to the document's example, expected quarantine reason)
    "wrong-type-hours": ({"timeCardEmployeeRegularHours": "eight"}, "timeCardEmployeeRegularHours"),
    "boolean-hours": ({"timeCardEmployeeOverTimeHours": True}, "a boolean is not a number"),
    "negative-hours": ({"timeCardEmployeeTravelTimeHours": "-4.000"}, "hours cannot be negative"),
    "nan-hours": ({"timeCardEmployeeDoubleTimeHours": "NaN"}, "number is not finite"),
    "huge-hours": ({"timeCardEmployeeRegularHours": 1e20}, "more than 168 hours"),
    "date-out-of-range": ({"timeCardRecordDate": 10**17}, "outside the years 1900-2199"),
    "object-for-date": ({"timeCardRecordDate": {"ms": 1}}, "expected epoch milliseconds"),
    "no-employee": ({"timeCardEmployeeGuid": None, "timeCardEmployeeCode": None}, "neither timeCardEmployeeGuid"),
}


def test_drifting_and_bad_payloads_are_kept_or_quarantined_and_a_malformed_page_fails(
    serve_app, warehouse, instance, monkeypatch
):
    page = {"mode": "garbage"}
    original_stubs = AimsioStore.timecard_stubs

    def timecard_stubs(self):
        if page["mode"] == "object":
            return {"error": "maintenance", "status": 200}
        if page["mode"] == "html-as-json-string":
            return "<html><body>Service temporarily unavailable</body></html>"
        return original_stubs(self) + GARBAGE_STUBS

    monkeypatch.setattr(AimsioStore, "timecard_stubs", timecard_stubs)  # before the routes bind
    server, store = start(serve_app, config(4, projects=2))
    resource = fast(server)

    store.put_timecard(
        {
            **DOC_EXAMPLE_TIMECARD,
            "timeCardGuid": "extra-fields",
            "brandNewField": {"nested": [1, "x"]},
            "timeCardNewFlag": True,
        }
    )
    store.put_timecard({"timeCardGuid": "sparse", "timeCardRecordDate": 1745231400000, "timeCardEmployeeGuid": "e-1"})
    for key, (change, _) in BAD_TIMECARDS.items():
        store.put_timecard({**DOC_EXAMPLE_TIMECARD, **change, "timeCardGuid": key})
    store.put_timecard([1, 2, 3], guid="array-body")  # a detail that is not an object
    bad_job = {
        "jobOrderGuid": "bad-job",
        "jobOrderName": "Late",
        "jobOrderStartDate": "soon",
        "jobOrderSurveyNotes": "kept",
    }
    with store._lock:
        store.job_orders["bad-job"] = bad_job
        store.job_order_updated["bad-job"] = store._next_updated_at()

    result = run_raw(server, warehouse, instance, assets=BOTH, resource=resource)
    assert result.success

    # Nothing dropped: valid rows + quarantined rows = list elements served.
    served = len(original_stubs(store)) + len(GARBAGE_STUBS)
    quarantined_details = len(BAD_TIMECARDS) + 1
    meta = node_metadata(result, TIMECARDS_KEY)
    assert meta["records_served"] == meta["rows"] == served == 4 + 2 + len(BAD_TIMECARDS) + 1 + 4
    assert meta["quarantined"] == quarantined_details + len(GARBAGE_STUBS)
    raw = table(warehouse).set_index("record_key")
    assert raw.index.is_unique and len(raw) == served
    valid = raw[raw["quarantine_reason"].isna()]
    assert len(valid) + meta["quarantined"] == served
    assert set(valid.index) == set(AimsioStore(config(4, projects=2)).timecards) | {"extra-fields", "sparse"}

    # Unknown fields are kept in the payload; missing optional fields are nulls.
    payload = json.loads(raw.loc["extra-fields", "payload"])
    assert payload["brandNewField"] == {"nested": [1, "x"]} and payload["timeCardNewFlag"] is True
    sparse = raw.loc["sparse"]
    for column in ("regular_hours", "job_guid", "job_number", "phase_code", "is_billable", "description"):
        assert pd.isna(sparse[column]), column
    conformed = conform_timecards(raw.reset_index()).set_index("entry_id")
    assert conformed.loc["sparse", "total_hours"] == 0.0 and pd.isna(conformed.loc["sparse", "billable_hours"])
    assert conformed.loc["sparse", "status"] == "submitted"

    # Wrong types and impossible values: quarantined with the reason, payload kept verbatim.
    for key, (change, reason) in BAD_TIMECARDS.items():
        assert reason in raw.loc[key, "quarantine_reason"], key
        assert json.loads(raw.loc[key, "payload"]) == {**DOC_EXAMPLE_TIMECARD, **change, "timeCardGuid": key}
        assert key not in conformed.index
    assert raw.loc["array-body", "quarantine_reason"] == "TypeError: record is not a JSON object"
    # List elements no detail can be fetched for: one row each, the repeated one keyed "#2".
    stub_rows = raw[raw.index.str.startswith("stub:")]
    assert len(stub_rows) == len(GARBAGE_STUBS) and stub_rows.index.str.endswith("#2").sum() == 1
    assert sorted(stub_rows["quarantine_reason"]) == [
        "list element is not a JSON object",
        "list stub has neither guid nor id",
        "list stub has neither guid nor id",
        "list stub invalid: updatedAt: Value error, expected epoch milliseconds or an ISO timestamp",
    ]
    jobs = table(warehouse, JOB_ORDERS_TABLE).set_index("record_key")
    assert "jobOrderStartDate" in jobs.loc["bad-job", "quarantine_reason"]
    assert json.loads(jobs.loc["bad-job", "payload"]) == bad_job
    assert len(conform_job_orders(jobs.reset_index())) == 2

    # The WARN check fails for both assets and counts the quarantined records.
    checks = {e.asset_key: e for e in result.get_asset_check_evaluations()}
    for key, count in ((TIMECARDS_KEY, meta["quarantined"]), (JOB_ORDERS_KEY, 1)):
        evaluation = checks[dg.AssetKey(key)]
        assert evaluation.check_name == "no_quarantined_records"
        assert evaluation.passed is False and evaluation.severity == dg.AssetCheckSeverity.WARN
        assert evaluation.metadata["quarantined"].value == count

    # A wholly malformed list page fails at once, naming the endpoint; nothing changes.
    before = table(warehouse)
    store.mutate_timecards(2)
    for mode, shape in (("object", r"an object with keys \['error', 'status'\]"), ("html-as-json-string", "str")):
        page["mode"] = mode
        failed = run_raw(server, warehouse, instance, resource=resource, raise_on_error=False)
        text = failure_text(failed)
        assert re.search(
            rf"Aimsio GET {API}/{TIMECARDS} failed with HTTP 200 after 1 attempt: expected a JSON "
            rf"array of {{dtype, guid, updatedAt}} stubs, got {shape}",
            text,
        ), text
        pd.testing.assert_frame_equal(table(warehouse), before)
