"""Reliability of the AIMS360 Aqua flow over real HTTP (issue 9): faults on every endpoint of
both flows (the manual materialization: token, exportdata or rerun, job status, publishlink;
the sensor-driven run: publishlink only), token expiry mid-run, drifting and bad view rows,
and malformed export files.

Each test proves one of two outcomes: (a) the run completes and the table holds every row
the sandbox serves exactly once, or (b) the run fails with a message naming the vendor,
method, endpoint path, status and attempt count, and the warehouse still holds exactly what
the previous (clean) run wrote. See docs/reliability/aims360.md.

The security (token/publishlink scopes, secrets) and sensor-lifecycle cases (failed, stuck,
purged jobs, outage across ticks) are in test_security.py and test_sensor.py.
"""

from __future__ import annotations

import json
import time
from collections import deque
from email.utils import parsedate_to_datetime
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest
from starlette.responses import Response

from tests.support.dagster_helpers import materialization_metadata, materialize, read_table
from timesheet_assets.ingest import HTTP_RETRY_POLICY, QUARANTINE_CHECK
from timesheet_assets.vendors.aims360 import sandbox as aims_sandbox
from timesheet_assets.vendors.aims360.assets import build_view_asset
from timesheet_assets.vendors.aims360.resource import forget_cached_tokens
from timesheet_assets.vendors.aims360.view_asset import Aims360ExportConfig, download_run_config

from .conftest import OP, OPEN_ORDERS, make_resource, make_settings

VIEW = "Orders/Open Orders"
KEY = ["raw", "aims360", "orders_open_orders"]
TABLE = "aims360.orders_open_orders"
FAST_POLLS = {"ops": {OP: {"config": {"first_poll_seconds": 0.01}}}}
# The deployed step retry waits 30 s; this one does not, and still shows which failures the
# step retry policy gets to see (outages) and which fail at once (permanent errors).
ONE_STEP_RETRY = dg.RetryPolicy(max_retries=1, delay=0)

TOKEN = "/authentication/v1/authentication/Token"
EXPORT = "/reports/v1.0/exportdata"
STATUS = "/jobsmanagement/odata/v1.0/backgroundjob"
RERUN = "/rerun"
PUBLISHLINK = "/reports/v1.0/publishlink/"
MASKED_LINK = "GET /reports/v1.0/publishlink/***"


# -- helpers -------------------------------------------------------------------------------
def fast(aims, **overrides: Any):
    """A resource with three attempts per call and (almost) no backoff."""
    return make_resource(aims.url, **{"max_attempts": 3, "backoff_cap_seconds": 0.02, **overrides})


def run(res, warehouse, instance=None, *, run_config=FAST_POLLS, retry_policy=None, ok=True):
    """One materialization of the view asset. ``instance=None`` is a fresh instance with no
    previous materialization, so the run creates a job instead of rerunning one."""
    settings = make_settings()
    assets = [build_view_asset(v, settings, retry_policy=retry_policy) for v in settings.views]
    return materialize(assets, {"aims360": res}, warehouse, instance=instance, run_config=run_config, raise_on_error=ok)


def sensor_run_config(harness, res) -> dict:
    """Sensor ticks (create, polls) until the RunRequest; its run config names the job."""
    h = harness(res=res)
    for _ in range(6):
        data = h.tick()
        if data.run_requests:
            config = data.run_requests[0].run_config["ops"][OP]["config"]
            return {"ops": {OP: {"config": {**config, "first_poll_seconds": 0.01}}}}
    raise AssertionError("the sensor never requested a run")


def table(warehouse) -> pd.DataFrame:
    frame = read_table(warehouse, TABLE)
    order = frame["record_key"].astype(int).sort_values().index
    return frame.loc[order].reset_index(drop=True)


def column_types(warehouse) -> dict[str, str]:
    with duckdb.connect(warehouse, read_only=True) as conn:
        return dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders_open_orders'"
            ).fetchall()
        )


def assert_every_row_once(aims, warehouse) -> None:
    frame = table(warehouse)
    served = aims.state.view_rows(VIEW)
    assert frame["record_key"].is_unique and len(frame) == len(served)
    assert frame["order_no"].tolist() == [r["Order No"] for r in served]
    assert [json.loads(p) for p in frame["payload"]] == served
    assert frame["quarantine_reason"].isna().all()


def failure_text(result) -> str:
    """The step failure as the UI shows it: the error and its causes."""
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    texts, error = [], data.error
    while error is not None:
        texts.append(error.message)
        error = error.cause
    if data.user_failure_data is not None:
        texts.append(data.user_failure_data.description or "")
    return "\n".join(texts)


def step_retries(result) -> int:
    return sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")


def statuses(aims, fragment: str) -> list[int | None]:
    return [r.status for r in aims.sandbox.stats.calls() if fragment in r.path]


def quarantine_check(result):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == QUARANTINE_CHECK]
    return evaluation


# -- (a) faults the client rides out -------------------------------------------------------
# Each fault hits the first attempt of EVERY call in three runs: a manual materialization
# that creates a job (token, exportdata, status polls, publishlink), one that reruns it
# (rerun, polls, publishlink), and the sensor's ticks plus the run it requests (publishlink).
RECOVERABLE = {
    "429_retry_after_seconds": (429, {"retry_after": "0"}),
    "502_bad_gateway": (502, {}),
    "503_unavailable": (503, {"retry_after": None}),
    "read_timeout": ("timeout", {"timeout_seconds": 0.5}),
    "reset_mid_body": ("reset", {}),
    "truncated_json": ("truncate", {}),
}


@pytest.mark.parametrize("name", list(RECOVERABLE))
def test_fault_on_the_first_attempt_of_every_call_is_retried_and_every_row_lands_once(
    aims, harness, instance, warehouse, name
):
    fault, knobs = RECOVERABLE[name]
    res = fast(aims, timeout_seconds=0.25 if fault == "timeout" else 30.0)
    aims.sandbox.knobs.update(script=[fault, None] * 60, **knobs)

    created = run(res, warehouse, instance)
    assert_every_row_once(aims, warehouse)
    reran = run(res, warehouse, instance)
    assert_every_row_once(aims, warehouse)
    from_sensor = run(res, warehouse, instance, run_config=sensor_run_config(harness, res))
    assert_every_row_once(aims, warehouse)

    log = aims.sandbox.stats.calls()
    for fragment in (TOKEN, EXPORT, STATUS, RERUN, PUBLISHLINK):
        assert any(fragment in r.path for r in log), fragment
    # Every call was attempted exactly twice: the fault, then the retry that worked.
    assert aims.sandbox.stats.faults_injected[str(fault)] * 2 == len(log)
    for result in (created, reran, from_sensor):
        meta = materialization_metadata(result, KEY)
        assert meta["requests"] == 2 * meta["retries"] > 0
        assert quarantine_check(result).passed
    assert materialization_metadata(from_sensor, KEY)["requests"] == 2  # the download only


class _ArrivalLog(deque):
    """The sandbox's request log, also noting when each request arrived (test-only)."""

    def __init__(self) -> None:
        super().__init__(maxlen=20000)
        self.arrived: list[tuple[str, float]] = []

    def append(self, record) -> None:
        self.arrived.append((record.path, time.time()))
        super().append(record)


def test_429_with_retry_after_as_http_date_is_waited_out(aims, instance, warehouse, monkeypatch):
    res = fast(aims)  # backoff cap 0.02 s: only the server's date can make the client wait
    aims.sandbox.knobs.update(script=[429], path_contains=EXPORT, retry_after="http-date", wait_hint_seconds=2.0)
    dates: list[str] = []
    issue = aims.sandbox.retry_after_value
    monkeypatch.setattr(aims.sandbox, "retry_after_value", lambda wait: dates.append(issue(wait)) or dates[-1])
    monkeypatch.setattr(aims.sandbox.stats, "log", _ArrivalLog())

    result = run(res, warehouse, instance)

    assert_every_row_once(aims, warehouse)
    assert statuses(aims, EXPORT) == [429, 200]
    (date,) = dates  # e.g. "Mon, 23 Nov 2026 04:46:38 GMT": 1-2 s ahead, whole seconds
    refused_at, retried_at = [at for path, at in aims.sandbox.stats.log.arrived if EXPORT in path]
    not_before = parsedate_to_datetime(date).timestamp()
    assert retried_at >= not_before > refused_at + 0.5  # the retry waited for the date
    meta = materialization_metadata(result, KEY)
    assert meta["rate_limited"] == 1 and meta["seconds_waited_backoff"] <= 2.5


def test_429_and_5xx_storm_on_every_endpoint_completes_with_every_row_once(aims, harness, instance, warehouse):
    res = fast(aims, max_attempts=10)
    aims.sandbox.knobs.update(seed=11, status_rates={429: 0.3, 502: 0.1, 503: 0.1}, retry_after="0")

    results = [run(res, warehouse, instance)]
    assert_every_row_once(aims, warehouse)
    results.append(run(res, warehouse, instance))
    assert_every_row_once(aims, warehouse)
    results.append(run(res, warehouse, instance, run_config=sensor_run_config(harness, res)))
    assert_every_row_once(aims, warehouse)

    by_status = aims.sandbox.stats.by_status
    assert by_status[429] >= 5 and by_status[502] + by_status[503] >= 2
    metas = [materialization_metadata(r, KEY) for r in results]
    # Every retry answers a refusal (no spurious attempts), and every run saw the storm.
    for meta in metas:
        assert meta["retries"] == meta["rate_limited"] + meta["server_errors"]
    assert sum(m["rate_limited"] for m in metas) <= by_status[429]
    assert all(m["retries"] > 0 for m in metas[:2])


def test_a_503_burst_shorter_than_the_attempts_is_ridden_out(aims, instance, warehouse):
    res = fast(aims, max_attempts=6)
    aims.sandbox.knobs.update(script=[503, 502, 503, 502, 503], path_contains=PUBLISHLINK, retry_after=None)

    result = run(res, warehouse, instance)

    assert_every_row_once(aims, warehouse)
    assert statuses(aims, PUBLISHLINK) == [503, 502, 503, 502, 503, 200]
    assert materialization_metadata(result, KEY)["server_errors"] == 5


# -- (b) faults that fail the run, leaving the warehouse as it was -------------------------
def clean_run(aims, res, warehouse, instance) -> tuple[pd.DataFrame, dict]:
    result = run(res, warehouse, instance)
    assert_every_row_once(aims, warehouse)
    return table(warehouse), materialization_metadata(result, KEY)


ENDPOINTS_500 = {
    "token": (TOKEN, "POST /authentication/v1/authentication/Token"),
    "exportdata": (EXPORT, "POST /reports/v1.0/exportdata"),
    "job_status": (STATUS, "GET /jobsmanagement/odata/v1.0/backgroundjob"),
    "rerun": (RERUN, "POST /jobsmanagement/v1.0/backgroundjob/{job_id}/rerun"),
    "publishlink_manual": (PUBLISHLINK, MASKED_LINK),
    "publishlink_sensor_run": (PUBLISHLINK, MASKED_LINK),
}


def faulty_run(aims, harness, res, warehouse, instance, flow: str, **knobs):
    """A run of ``flow`` with ``knobs`` set: ``manual`` reruns the clean run's job, ``create``
    creates a job (no previous materialization), ``token`` fetches a token first, ``sensor``
    is the run the sensor requests (the knobs are set after its ticks)."""
    run_instance, run_config = instance, FAST_POLLS
    if flow == "token":
        forget_cached_tokens()
    elif flow == "create":
        run_instance = None
    elif flow == "sensor":
        run_config = sensor_run_config(harness, res)
    aims.sandbox.knobs.clear()
    aims.sandbox.knobs.update(**knobs)
    result = run(res, warehouse, run_instance, run_config=run_config, retry_policy=ONE_STEP_RETRY, ok=False)
    aims.sandbox.knobs.clear()
    return result


def test_500_fails_at_once_naming_the_call_and_leaves_the_table(aims, harness, instance, warehouse):
    res = fast(aims)
    before, meta = clean_run(aims, res, warehouse, instance)
    flows = {"token": "token", "exportdata": "create", "publishlink_sensor_run": "sensor"}
    for endpoint, (fragment, call) in ENDPOINTS_500.items():
        result = faulty_run(
            aims, harness, res, warehouse, instance, flows.get(endpoint, "manual"), script=[500], path_contains=fragment
        )

        expected = f"AIMS360 {call.format(job_id=meta['job_id'])} failed with HTTP 500 after 1 attempt: sandbox fault"
        assert expected in failure_text(result), endpoint
        assert step_retries(result) == 0, endpoint  # not an outage a step retry could wait out
        assert statuses(aims, fragment)[-1] == 500, endpoint
        pd.testing.assert_frame_equal(table(warehouse), before, obj=endpoint)


# Outages that outlast the client's three attempts (and the one step retry): each fault on a
# different call, so that together they cover every endpoint of both flows.
EXHAUSTED = {
    "503_burst_on_job_status": (
        {"status_rates": {503: 1.0}, "retry_after": None},
        STATUS,
        "manual",
        "GET /jobsmanagement/odata/v1.0/backgroundjob failed with HTTP 503 after 3 attempts",
    ),
    "502_burst_on_exportdata": (
        {"status_rates": {502: 1.0}},
        EXPORT,
        "create",
        "POST /reports/v1.0/exportdata failed with HTTP 502 after 3 attempts",
    ),
    "429_storm_on_token": (
        {"status_rates": {429: 1.0}, "retry_after": "0"},
        TOKEN,
        "token",
        "POST /authentication/v1/authentication/Token failed with HTTP 429 after 3 attempts",
    ),
    "timeouts_on_publishlink_manual": (
        {"script": ["timeout"] * 6, "timeout_seconds": 0.5},
        PUBLISHLINK,
        "manual",
        f"{MASKED_LINK} failed with no response after 3 attempts: ReadTimeout",
    ),
    "resets_on_rerun": (
        {"reset_rate": 1.0},
        RERUN,
        "manual",
        "POST /jobsmanagement/v1.0/backgroundjob/{job_id}/rerun failed with no response after 3 "
        "attempts: RemoteProtocolError",
    ),
    "truncated_json_on_publishlink_sensor_run": (
        {"truncate_rate": 1.0},
        PUBLISHLINK,
        "sensor",
        f"{MASKED_LINK} failed with HTTP 200 after 3 attempts: publishlink JSON could not be decoded",
    ),
}


def test_outage_outlasting_the_retries_fails_clearly_and_leaves_the_table(aims, harness, instance, warehouse):
    res = fast(aims)
    impatient = fast(aims, timeout_seconds=0.25)  # for the read timeouts
    before, meta = clean_run(aims, res, warehouse, instance)
    for name, (knobs, fragment, flow, message) in EXHAUSTED.items():
        client = impatient if "timeout" in name else res
        result = faulty_run(aims, harness, client, warehouse, instance, flow, path_contains=fragment, **knobs)

        assert f"AIMS360 {message.format(job_id=meta['job_id'])}" in failure_text(result), name
        assert step_retries(result) == 1, name  # an outage: the step retry policy got its turn
        pd.testing.assert_frame_equal(table(warehouse), before, obj=name)


# A wait asked for beyond the client's cap (120 s) is an outage at once: no sleeping inside
# the step, no early retry into more refusals; the step retry policy gets it.
LONG_WAITS = {
    "429_retry_after_an_hour_on_exportdata": (429, EXPORT, "create", "POST /reports/v1.0/exportdata"),
    "503_retry_after_an_hour_on_job_status": (503, STATUS, "manual", "GET /jobsmanagement/odata/v1.0/backgroundjob"),
}


def test_a_wait_longer_than_the_cap_is_an_outage_for_the_step_retry_not_an_early_retry(
    aims, harness, instance, warehouse
):
    res = fast(aims)
    before, _ = clean_run(aims, res, warehouse, instance)
    for name, (status, fragment, flow, call) in LONG_WAITS.items():
        calls_before = len(statuses(aims, fragment))
        result = faulty_run(
            aims,
            harness,
            res,
            warehouse,
            instance,
            flow,
            status_rates={status: 1.0},
            retry_after="3600",
            path_contains=fragment,
        )

        assert (
            f"AIMS360 {call} failed with HTTP {status} after 1 attempt: the vendor asked to wait 3600 s "
            "before retrying, longer than the 120 s this client waits within a run: treated as an outage"
        ) in failure_text(result), name
        assert step_retries(result) == 1, name  # an outage: the step retry policy got its turn
        # One request per step attempt: the client never came back before the hour was up.
        assert statuses(aims, fragment)[calls_before:] == [status, status], name
        pd.testing.assert_frame_equal(table(warehouse), before, obj=name)


def test_deployed_asset_keeps_the_step_retry_policy_and_the_quarantine_check():
    settings = make_settings()
    asset = build_view_asset(settings.views[0], settings)
    assert asset.op.retry_policy == HTTP_RETRY_POLICY
    assert [s.name for s in asset.check_specs] == [QUARANTINE_CHECK]


# -- token expiry mid-run --------------------------------------------------------------------
def test_token_expiring_while_polling_is_refreshed_once(aims, instance, warehouse):
    # The token dies after 3 calls: exportdata, two polls; the third poll gets 401.
    aims.sandbox.knobs.update(token_expiry_after_calls=3)
    res = fast(aims)

    result = run(res, warehouse, instance)

    assert_every_row_once(aims, warehouse)
    assert statuses(aims, STATUS) == [200, 200, 401, 200]
    assert statuses(aims, TOKEN) == [200, 200]
    assert materialization_metadata(result, KEY)["reauthentications"] == 1


def test_token_expiring_before_the_sensor_runs_download_is_refreshed_once(aims, harness, instance, warehouse):
    res = fast(aims)
    run_config = sensor_run_config(harness, res)
    used = sum(1 for r in aims.sandbox.stats.calls() if TOKEN not in r.path)
    aims.sandbox.knobs.update(token_expiry_after_calls=used)  # the token's next use is refused

    result = run(res, warehouse, instance, run_config=run_config)

    assert_every_row_once(aims, warehouse)
    assert statuses(aims, PUBLISHLINK) == [401, 200]
    assert statuses(aims, TOKEN) == [200, 200]
    assert materialization_metadata(result, KEY)["reauthentications"] == 1


def test_token_refused_again_after_the_refresh_fails_at_once_and_leaves_the_table(aims, instance, warehouse):
    res = fast(aims)
    before, meta = clean_run(aims, res, warehouse, instance)
    aims.sandbox.knobs.update(token_expiry_after_calls=0)  # every token is dead on arrival

    result = run(res, warehouse, instance, retry_policy=ONE_STEP_RETRY, ok=False)

    assert (
        f"AIMS360 POST /jobsmanagement/v1.0/backgroundjob/{meta['job_id']}/rerun failed with HTTP 401 "
        "after 2 attempts: Authorization has been denied for this request." in failure_text(result)
    )
    assert step_retries(result) == 0
    assert statuses(aims, TOKEN) == [200, 200]  # one refresh, no loop
    pd.testing.assert_frame_equal(table(warehouse), before)


# -- bad and drifting payloads -------------------------------------------------------------
NOT_ROWS = [None, "not a row", [1, 2], 42]


def drifted(served: list[dict]) -> list[Any]:
    rows = [dict(r) for r in served]
    rows[1]["Season"] = "Fall 2024"  # a column the view did not have, in some rows only
    rows[5]["Season"] = "Spring 2025"
    del rows[2]["Notes"], rows[2]["Buyer"]  # optional columns missing
    rows[3]["Total Qty"] = "twelve"  # wrong type
    rows[4]["Order Date"] = "2024-02-30"  # impossible date
    rows[6]["Total Amount"] = None
    return rows + NOT_ROWS


def test_drifting_json_rows_are_kept_and_non_objects_quarantined(aims, instance, warehouse, monkeypatch):
    res = fast(aims)
    clean_run(aims, res, warehouse, instance)
    assert {k: column_types(warehouse)[k] for k in ("total_qty", "order_date")} == {
        "total_qty": "BIGINT",
        "order_date": "DATE",
    }
    served = aims.state.view_rows(VIEW)
    bad = drifted(served)
    monkeypatch.setattr(
        aims.state.view(VIEW), "rows", lambda version=None: [dict(r) if isinstance(r, dict) else r for r in bad]
    )

    result = run(res, warehouse, instance)

    assert result.success
    meta = materialization_metadata(result, KEY)
    assert (meta["records_served"], meta["rows"], meta["quarantined"]) == (len(bad), len(bad), len(NOT_ROWS))
    check = quarantine_check(result)
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert check.metadata["quarantined"].value == len(NOT_ROWS)

    frame = table(warehouse)
    valid = frame[frame["quarantine_reason"].isna()]
    quarantined = frame[frame["quarantine_reason"].notna()]
    assert len(valid) + len(quarantined) == len(bad)  # nothing dropped
    assert quarantined["quarantine_reason"].eq("TypeError: record is not a JSON object").all()
    assert [json.loads(p) for p in quarantined["payload"]] == NOT_ROWS
    assert [json.loads(p) for p in valid["payload"]] == bad[: len(served)]
    # Unknown column: a new table column, null where the row lacks it, kept in the payload.
    assert valid["season"].tolist()[:7] == [None, "Fall 2024", None, None, None, "Spring 2025", None]
    # Missing optional fields: nulls.
    assert pd.isna(valid.loc[2, "notes"]) and pd.isna(valid.loc[2, "buyer"])
    assert pd.isna(valid.loc[6, "total_amount"])
    # Wrong type / impossible value: the column becomes text, no value lost; the table's
    # column types follow this export instead of failing or rounding the insert.
    assert valid.loc[3, "total_qty"] == "twelve"
    assert valid.loc[0, "total_qty"] == str(served[0]["Total Qty"])
    assert valid.loc[4, "order_date"] == "2024-02-30"
    types = column_types(warehouse)
    assert (types["total_qty"], types["order_date"], types["season"]) == ("VARCHAR", "VARCHAR", "VARCHAR")

    monkeypatch.undo()  # the view is clean again: so is the next table
    run(res, warehouse, instance)
    assert_every_row_once(aims, warehouse)
    assert {k: column_types(warehouse)[k] for k in ("total_qty", "order_date")} == {
        "total_qty": "BIGINT",
        "order_date": "DATE",
    }


DRIFTING_CSV = (
    b"\xef\xbb\xbfOrder No,Customer,Total Qty,Order Date,Season\r\n"
    b"0000001,Diaz Apparel,12,2024-05-01,Fall\r\n"
    b"0000002,Lee Apparel,twelve,2024-05-02\r\n"  # a cell short, and a word for a number
    b'0000003,"Kim, Apparel",7,2024-02-30,Spring,EXTRA\r\n'  # an impossible date, a cell extra
    b"0000004,Ng Apparel,,2024-05-04,\r\n"  # empty cells
)


def test_drifting_csv_rows_are_kept_with_nulls_and_text(aims, instance, warehouse, monkeypatch):
    res = fast(aims, output_format="CSV")
    run(res, warehouse, instance)
    assert table(warehouse)["order_no"].tolist() == [r["Order No"] for r in aims.state.view_rows(VIEW)]
    monkeypatch.setattr(
        aims_sandbox, "render_output", lambda rows, fmt, name: Response(DRIFTING_CSV, media_type="text/csv")
    )

    result = run(res, warehouse, instance)

    meta = materialization_metadata(result, KEY)
    assert (meta["output_format"], meta["records_served"], meta["rows"], meta["quarantined"]) == ("CSV", 4, 4, 0)
    assert quarantine_check(result).passed
    frame = table(warehouse)
    assert frame["order_no"].tolist() == ["0000001", "0000002", "0000003", "0000004"]
    assert frame["total_qty"].tolist()[:3] == ["12", "twelve", "7"] and pd.isna(frame.loc[3, "total_qty"])
    assert frame["order_date"].tolist()[2] == "2024-02-30"
    assert frame["season"].tolist()[0] == "Fall" and pd.isna(frame.loc[1, "season"]) and pd.isna(frame.loc[3, "season"])
    assert frame["column_6"].tolist()[2] == "EXTRA"
    assert json.loads(frame.loc[1, "payload"]) == {
        "Order No": "0000002",
        "Customer": "Lee Apparel",
        "Total Qty": "twelve",
        "Order Date": "2024-05-02",
        "Season": None,
    }
    assert frame["customer"].tolist()[2] == "Kim, Apparel"


MALFORMED = {
    "json_cut_off": (
        "JSON",
        b'[{"Order No": "0000001", "Customer": ',
        "application/json",
        1,
        f"{MASKED_LINK} failed with HTTP 200 after 3 attempts: publishlink JSON could not be decoded",
    ),
    "csv_cut_mid_row": (
        "CSV",
        b"Order No,Customer,Total Qty\r\n0000001,Diaz Apparel,12\r\n0000002,Lee",
        "text/csv",
        1,
        f"{MASKED_LINK} failed with HTTP 200 after 3 attempts: publishlink CSV ends mid-row (row 2 "
        "has 2 of 3 columns and no line break): the file is truncated",
    ),
    "csv_open_quote": (
        "CSV",
        b'Order No,Notes\r\n0000001,"Call Dock 4\r\n',
        "text/csv",
        1,
        f"{MASKED_LINK} failed with HTTP 200 after 3 attempts: publishlink CSV ends inside a quoted "
        "field: the file is truncated",
    ),
    "corrupt_excel": (
        "Excel",
        b"PK\x03\x04 not really a workbook",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        1,
        f"{MASKED_LINK} failed with HTTP 200 after 3 attempts: publishlink Excel file could not be read (BadZipFile)",
    ),
    "corrupt_legacy_excel": (
        "Excel",
        bytes.fromhex("d0cf11e0a1b11ae1") + b" not really a workbook",
        "application/vnd.ms-excel",
        1,
        f"{MASKED_LINK} failed with HTTP 200 after 3 attempts: publishlink Excel (xls) file could not be read",
    ),
    "error_envelope_under_200": (
        "JSON",
        b'{"message": "Access Denied"}',
        "application/json",
        0,
        f"{MASKED_LINK} failed with HTTP 200 after 1 attempt: Access Denied",
    ),
    "json_that_is_not_rows": (
        "JSON",
        b'"a string, not rows"',
        "application/json",
        0,
        f"{MASKED_LINK} failed with HTTP 200 after 1 attempt: publishlink JSON is neither a list of rows nor an object",
    ),
}


def test_malformed_export_file_fails_clearly_and_leaves_the_table(aims, instance, warehouse, monkeypatch):
    res = fast(aims)
    before, meta = clean_run(aims, res, warehouse, instance)
    # Download the clean run's (completed) job again, as a sensor-requested run does.
    job = aims.state.job(meta["job_id"])
    for name, (output_format, body, media_type, retries, message) in MALFORMED.items():
        download_only = download_run_config(
            OPEN_ORDERS,
            Aims360ExportConfig(
                job_id=job.job_id, publish_link=job.publish_link, scope="Private", output_format=output_format
            ),
        )
        monkeypatch.setattr(
            aims_sandbox, "render_output", lambda rows, fmt, n, b=body, m=media_type: Response(b, media_type=m)
        )

        result = run(res, warehouse, instance, run_config=download_only, retry_policy=ONE_STEP_RETRY, ok=False)

        assert f"AIMS360 {message}" in failure_text(result), name
        # A body that may be a cut-off transfer is an outage (retried); an envelope is not.
        assert step_retries(result) == retries, name
        pd.testing.assert_frame_equal(table(warehouse), before, obj=name)
