"""aims360_export_sensor over real HTTP against the sandbox, ticks evaluated with
``dg.build_sensor_context`` on a real Dagster instance."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from timesheet_assets.vendors.aims360.assets import Aims360ExportFailed, load_cursor
from timesheet_assets.vendors.aims360.definitions import definitions
from timesheet_assets.vendors.aims360.resource import Aims360Resource
from timesheet_assets.vendors.aims360.sandbox import JobLifecycle

from .conftest import OP, calls, make_resource, make_settings, status_calls

FAILED_FAST = JobLifecycle(queued_polls=0, progress=(), outcome="Failed")
COMPLETE_FAST = JobLifecycle(queued_polls=0, progress=(), outcome="Completed")


def only_job_id(aims) -> str:
    (job_id,) = aims.state.jobs
    return job_id


def tick_until_run_request(h, limit: int = 6):
    for _ in range(limit):
        data = h.tick()
        if data.run_requests:
            return data
    raise AssertionError(f"no RunRequest within {limit} ticks: {[d.skip_message for d in h.history]}")


def test_tick_sequence_create_pending_completed_then_rerun_after_refresh(aims, harness, now):
    h = harness()

    created = h.tick()
    assert created.run_requests == []
    job_id = only_job_id(aims)
    assert created.skip_message == f"Orders/Open Orders: created export job {job_id} (Queued)"
    assert calls(aims, "/reports/v1.0/exportdata", "POST") == 1
    assert status_calls(aims) == 0

    queued = h.tick()
    assert queued.run_requests == []
    assert queued.skip_message == f"Orders/Open Orders: job {job_id} Queued (0%)"
    running = h.tick()
    assert running.run_requests == []
    assert running.skip_message == f"Orders/Open Orders: job {job_id} Queued (50%)"
    assert load_cursor(h.cursor)["orders_open_orders"].percent == 50

    done = h.tick()
    (request,) = done.run_requests
    completed = aims.state.job(job_id).completed_date
    assert completed
    assert request.run_key == f"{job_id}:{completed}"
    assert request.asset_selection == [dg.AssetKey(["raw", "aims360", "orders_open_orders"])]
    assert request.run_config == {
        "ops": {
            OP: {
                "config": {
                    "job_id": job_id,
                    "publish_link": aims.state.job(job_id).publish_link,
                    "scope": "Private",
                    "completed_date": completed,
                    "output_format": "JSON",  # what the job was created with
                }
            }
        }
    }

    # The same completion never yields another run, and costs no vendor call at all.
    requests_before = aims.sandbox.stats.requests
    for _ in range(3):
        again = h.tick()
        assert again.run_requests == []
        assert "already requested" in again.skip_message
    assert aims.sandbox.stats.requests == requests_before

    now.advance(3600)
    rerun = h.tick()
    assert rerun.run_requests == []
    assert f"reran export job {job_id} (Queued)" in rerun.skip_message
    assert calls(aims, f"/backgroundjob/{job_id}/rerun", "POST") == 1
    assert calls(aims, "/reports/v1.0/exportdata") == 1  # same job, no new one

    refreshed = tick_until_run_request(h)
    (second,) = refreshed.run_requests
    assert second.run_key == f"{job_id}:{aims.state.job(job_id).completed_date}"
    assert second.run_key != request.run_key
    assert [d.skip_message for d in h.history[-3:-1]] == [
        f"Orders/Open Orders: job {job_id} Queued (0%)",
        f"Orders/Open Orders: job {job_id} Queued (50%)",
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/jobsmanagement/odata/v1.0/backgroundjob"), ("POST", "/jobsmanagement/v1.0/backgroundjob")],
)
def test_tick_costs_at_most_one_status_call_per_pending_job(aims, harness, method, path):
    settings = make_settings("Orders/Open Orders;Invoices/Open Invoices;Styles/All Styles")
    aims.state.queue_lifecycles(
        JobLifecycle(queued_polls=1, progress=(50,)),
        JobLifecycle(queued_polls=3, progress=(20, 60)),
        JobLifecycle(outcome="Stuck"),
    )
    h = harness(settings, make_resource(aims.url, status_method=method))
    h.tick()
    assert calls(aims, "/exportdata") == 3
    for _ in range(7):
        pending = sum(1 for s in load_cursor(h.cursor).values() if s.phase == "pending")
        before = status_calls(aims)
        h.tick()
        assert status_calls(aims) - before == pending
    polled = aims.sandbox.stats.calls("/backgroundjob")
    assert polled and all(r.method == method and r.path == path for r in polled)
    assert all(r.query.startswith("$filter=jobId%20eq%20'") for r in polled)
    # Two delivered (no more polling), one still pending.
    phases = sorted(s.phase for s in load_cursor(h.cursor).values())
    assert phases == ["delivered", "delivered", "pending"]
    assert sum(len(d.run_requests) for d in h.history) == 2


def test_failed_job_is_recreated_and_the_reason_shown(aims, harness):
    aims.state.queue_lifecycles(FAILED_FAST, COMPLETE_FAST)
    h = harness()
    h.tick()
    first = only_job_id(aims)
    failed = h.tick()
    assert failed.run_requests == []
    second = next(j for j in aims.state.jobs if j != first)
    assert failed.skip_message == (
        f"Orders/Open Orders: job {first} Failed: Export failed: the view query timed out; "
        f"created export job {second} (Queued, attempt 2 of 3)"
    )
    done = h.tick()
    (request,) = done.run_requests
    assert request.run_key.startswith(f"{second}:")
    assert load_cursor(h.cursor)["orders_open_orders"].attempts == 0


def test_failures_are_bounded_then_every_tick_errors_until_the_cooldown(aims, harness, now):
    aims.state.queue_lifecycles(FAILED_FAST, FAILED_FAST, FAILED_FAST)
    h = harness()
    h.tick()
    h.tick()
    h.tick()
    last = h.tick()
    assert calls(aims, "/exportdata") == 3
    assert last.skip_message.startswith("FAILED Orders/Open Orders: job ")
    assert "Failed: Export failed: the view query timed out" in last.skip_message

    requests_before = aims.sandbox.stats.requests
    for _ in range(2):
        with pytest.raises(Aims360ExportFailed) as error:
            h.tick()
        text = str(error.value)
        assert text.startswith("AIMS360 view Orders/Open Orders failed: job ")
        assert "Failed: Export failed: the view query timed out" in text
        assert "dagster sensor cursor aims360_export_sensor --delete" in text
    assert aims.sandbox.stats.requests == requests_before  # error ticks touch nothing

    now.advance(1800)
    recovered = h.tick()
    assert "retrying after the failure cool-down; created export job" in recovered.skip_message
    assert calls(aims, "/exportdata") == 4


def test_stuck_job_is_detected_after_the_stall_timeout(aims, harness, now):
    aims.state.queue_lifecycles(JobLifecycle(queued_polls=0, progress=(40,), outcome="Stuck"))
    h = harness()
    h.tick()
    stuck = only_job_id(aims)
    assert h.tick().skip_message == f"Orders/Open Orders: job {stuck} Queued (40%)"
    now.advance(300)
    assert h.tick().skip_message == f"Orders/Open Orders: job {stuck} Queued (40%)"
    now.advance(301)
    stalled = h.tick()
    replacement = next(j for j in aims.state.jobs if j != stuck)
    assert stalled.skip_message == (
        f"Orders/Open Orders: job {stuck} stalled: no progress for 601 s (stall timeout 600 s, "
        f"last status Queued (40%)); created export job {replacement} (Queued, attempt 2 of 3)"
    )
    assert calls(aims, "/exportdata") == 2


def test_job_purged_while_pending_is_recreated(aims, harness):
    h = harness()
    h.tick()
    gone = only_job_id(aims)
    aims.state.purge(gone)
    data = h.tick()
    assert f"job {gone} is no longer known to the API (purged); created export job" in data.skip_message
    assert calls(aims, "/exportdata") == 2


def test_refresh_creates_a_new_job_when_the_job_cannot_be_rerun(aims, harness, now):
    aims.state.queue_lifecycles(JobLifecycle(queued_polls=0, progress=(), can_rerun=False), COMPLETE_FAST)
    h = harness()
    h.tick()
    first = tick_until_run_request(h).run_requests[0]
    now.advance(3600)
    data = h.tick()
    assert "cannot be rerun (canReRun is not Yes); created export job" in data.skip_message
    assert calls(aims, "/rerun") == 0
    second = tick_until_run_request(h).run_requests[0]
    assert second.run_key.split(":")[0] != first.run_key.split(":")[0]


def test_refresh_falls_back_to_a_new_job_when_the_api_refuses_the_rerun(aims, harness, now):
    h = harness()
    h.tick()
    tick_until_run_request(h)
    aims.state.purge(only_job_id(aims))
    now.advance(3600)
    data = h.tick()
    assert "cannot be rerun (HTTP 404: Job '" in data.skip_message
    assert "created export job" in data.skip_message
    assert calls(aims, "/rerun") == 1
    assert calls(aims, "/exportdata") == 2


def test_api_outage_is_retried_on_later_ticks_and_shown(aims, harness):
    h = harness()
    h.tick()
    aims.sandbox.knobs.update(script=[503, 503], path_contains="backgroundjob")
    data = h.tick()
    assert (
        "AIMS360 call failed (AIMS360 GET /jobsmanagement/odata/v1.0/backgroundjob failed with HTTP 503"
        in data.skip_message
    )
    assert data.skip_message.endswith("retrying next tick (1 of 3)")
    assert "Queued" in h.tick().skip_message
    assert load_cursor(h.cursor)["orders_open_orders"].errors == 0


def test_sensor_definition_is_off_by_default_and_configurable():
    defs = definitions(
        {
            "AIMS360_VIEWS": "Orders/Open Orders; Invoices/Open Invoices",
            "AIMS360_SENSOR_INTERVAL_SECONDS": "45",
        }
    )
    (sensor,) = [s for s in defs.sensors if s.name == "aims360_export_sensor"]
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds == 45
    assert "aims360" in sensor.required_resource_keys
    keys = {a.key for a in defs.assets}
    assert keys == {
        dg.AssetKey(["raw", "aims360", "orders_open_orders"]),
        dg.AssetKey(["raw", "aims360", "invoices_open_invoices"]),
    }
    cursor = json.dumps({"version": 1, "views": {"orders_open_orders": {"phase": "pending", "job_id": "x"}}})
    assert load_cursor(cursor)["orders_open_orders"].job_id == "x"
    assert load_cursor("not json") == {}


def test_missing_credentials_make_an_error_tick_naming_the_variables(aims, harness):
    h = harness(res=Aims360Resource(base_url=aims.url))
    with pytest.raises(Exception) as error:
        h.tick()
    chain, exc = [], error.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__
    assert any("set AIMS360_ACCESS_TOKEN, or all of AIMS360_CLIENT_ID" in text for text in chain)
    assert aims.sandbox.stats.requests == 0
