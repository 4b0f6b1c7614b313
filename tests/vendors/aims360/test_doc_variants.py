"""Choices the Aqua documentation leaves open, served the other way by the sandbox (knobs on
its state) or by an ``httpx.MockTransport``: an independent implementation of the same docs
may make them, and the client must still load every row."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.dagster_helpers import failure_text, materialization_metadata, materialize, read_table
from timesheet_assets.vendors.aims360.assets import build_view_asset
from timesheet_assets.vendors.aims360.models import BackgroundJob
from timesheet_assets.vendors.aims360.resource import ViewSpec, parse_export

from .conftest import OP, ROWS, calls, make_resource, make_settings

KEY = ["raw", "aims360", "orders_open_orders"]
TABLE = "aims360.orders_open_orders"
ORDERS = ViewSpec("Orders", "Open Orders")
# Polls start at once; the timeout is generous, since a loaded machine can take seconds to get
# a job through the sandbox and a timed-out poll leads to a new export job.
QUICK = {"ops": {OP: {"config": {"first_poll_seconds": 0.01, "poll_timeout_seconds": 60}}}}


def view_assets():
    settings = make_settings()
    # No step retry: a failure must show at once, not after the deployed policy's delays.
    return [build_view_asset(v, settings, retry_policy=None) for v in settings.views]


def order_numbers(warehouse: str) -> list[str]:
    table = read_table(warehouse, TABLE)
    return sorted(table["order_no"].tolist())


def served_order_numbers(aims) -> list[str]:
    return sorted(r["Order No"] for r in aims.state.view_rows("Orders/Open Orders"))


# -- status rows with only the documented job fields ---------------------------------------
def test_status_rows_without_completed_date_still_complete_a_manual_run(aims, instance, warehouse):
    """The Aqua page documents jobId, jobStatus, publishLink and publishLinkAccessScope only;
    a status row without ``completedDate`` (or ``canReRun``, ``percentCompleted``) that says
    Completed is complete."""
    aims.state.sparse_job_rows = True
    resource = make_resource(aims.url)

    first = materialize(
        view_assets(), {"aims360": resource}, warehouse, instance=instance, run_config=QUICK, raise_on_error=False
    )
    assert first.success, failure_text(first)
    assert order_numbers(warehouse) == served_order_numbers(aims)
    assert len(order_numbers(warehouse)) == ROWS

    # Second run reruns the job (same id) and must not wait for a completedDate that never comes.
    aims.state.change_view("Orders/Open Orders")
    second = materialize(
        view_assets(), {"aims360": resource}, warehouse, instance=instance, run_config=QUICK, raise_on_error=False
    )
    assert second.success, failure_text(second)
    job_id = materialization_metadata(first, KEY)["job_id"]
    assert calls(aims, f"/backgroundjob/{job_id}/rerun") == 1
    totals = sorted(read_table(warehouse, TABLE)["total_amount"].tolist())
    assert totals == sorted(r["Total Amount"] for r in aims.state.view_rows("Orders/Open Orders"))


def test_status_rows_without_completed_date_give_one_run_per_completion(aims, harness, instance, warehouse, now):
    aims.state.sparse_job_rows = True
    h = harness()
    keys = []
    for _ in range(2):
        for _ in range(6):
            data = h.tick()
            if data.run_requests:
                break
        else:
            raise AssertionError(f"no RunRequest: {[d.skip_message for d in h.history]}")
        (request,) = data.run_requests
        keys.append(request.run_key)
        result = materialize(
            h.assets(), {"aims360": h.resource}, warehouse, instance=instance, run_config=request.run_config
        )
        assert materialization_metadata(result, KEY)["rows"] == ROWS
        assert h.tick().run_requests == []  # the completion is delivered once
        now.advance(h.settings.refresh_interval_seconds + 1)
    assert len(set(keys)) == 2, keys
    assert "None" not in "".join(keys)


# -- only one of the documented job status forms served ------------------------------------
@pytest.mark.parametrize(
    "served, configured",
    [(("POST",), "GET"), (("GET",), "POST")],
    ids=["server_has_only_post_client_prefers_get", "server_has_only_get_client_prefers_post"],
)
def test_status_form_the_server_lacks_falls_back_to_the_other_documented_form(
    aims, instance, warehouse, served, configured
):
    aims.state.status_forms = served
    resource = make_resource(aims.url, status_method=configured)

    result = materialize(
        view_assets(), {"aims360": resource}, warehouse, instance=instance, run_config=QUICK, raise_on_error=False
    )

    assert result.success, failure_text(result)
    assert order_numbers(warehouse) == served_order_numbers(aims)
    missing = sum(1 for r in aims.sandbox.stats.calls() if "/backgroundjob" in r.path and r.status == 404)
    # The missing form is tried once; later polls go straight to the form that answered.
    assert missing == 1
    assert resource.job_status("no-such-job") is None


def test_unknown_job_is_none_when_both_status_forms_answer_404(aims):
    resource = make_resource(aims.url)
    aims.state.status_forms = ("POST",)
    job = resource.create_export_job(ORDERS)
    aims.state.purge(job.job_id)
    assert resource.job_status(job.job_id) is None


@pytest.mark.parametrize("spelling", ["doc", "odata"])
def test_job_filter_spelled_only_one_way_by_the_server_is_found_and_kept(aims, instance, warehouse, spelling):
    """The Aqua page writes ``jobId eq'<id>'``, OData ``jobId eq '<id>'``."""
    aims.state.filter_spelling = spelling
    aims.state.rerun_forms = ("filter",)  # the rerun must use the spelling that worked too
    resource = make_resource(aims.url)
    for _ in range(2):
        result = materialize(
            view_assets(), {"aims360": resource}, warehouse, instance=instance, run_config=QUICK, raise_on_error=False
        )
        assert result.success, failure_text(result)
    assert order_numbers(warehouse) == served_order_numbers(aims)
    assert calls(aims, "/exportdata") == 1  # the second run reran the job
    refused = [r for r in aims.sandbox.stats.calls() if "/backgroundjob" in r.path and r.status == 400]
    assert len(refused) == (1 if spelling == "doc" else 0)


# -- rerun served only in the Aqua page's spelling ------------------------------------------
def test_rerun_served_only_in_the_aqua_page_spelling_is_used(aims, instance, warehouse):
    aims.state.rerun_forms = ("filter",)
    resource = make_resource(aims.url)
    first = materialize(view_assets(), {"aims360": resource}, warehouse, instance=instance, run_config=QUICK)
    second = materialize(
        view_assets(), {"aims360": resource}, warehouse, instance=instance, run_config=QUICK, raise_on_error=False
    )
    assert second.success, failure_text(second)
    job_id = materialization_metadata(first, KEY)["job_id"]
    assert materialization_metadata(second, KEY)["job_id"] == job_id
    assert calls(aims, "/exportdata") == 1  # rerun, no second job
    assert order_numbers(warehouse) == served_order_numbers(aims)


def test_rerun_answered_with_the_jobs_current_row_is_not_taken_for_a_rerun():
    """An implementation without the rerun call may answer the Aqua page's spelling as a
    plain status query: a Completed row is not a queued rerun, so a new job is created."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json={"access_token": "t"})
        if request.url.path.endswith("/rerun"):
            return httpx.Response(404, json={"message": "Not Found"})
        if request.url.path == "/jobsmanagement/v1.0/backgroundjob":
            return httpx.Response(200, json=[{"jobId": "old", "jobStatus": "Completed"}])
        if request.url.path == "/reports/v1.0/exportdata":
            return httpx.Response(200, json={"jobId": "new", "jobStatus": "Queued"})
        return httpx.Response(404)

    resource = make_resource("https://aqua.example.test")
    resource._client = resource.open_client(transport=httpx.MockTransport(handler))
    started = resource.start_export(ORDERS, rerun_job_id="old")
    assert started.job_id == "new"
    assert seen[-3:] == [
        "POST /jobsmanagement/v1.0/backgroundjob/old/rerun",
        "POST /jobsmanagement/v1.0/backgroundjob",  # the Aqua page's spelling, read as a status
        "POST /reports/v1.0/exportdata",
    ]


# -- JSON exports: empty and wrapped ---------------------------------------------------------
def test_empty_view_served_as_json_null_lands_as_an_empty_table(aims, instance, warehouse):
    aims.state.json_null_when_empty = True
    aims.state.view("Orders/Open Orders").base_rows = []
    result = materialize(
        view_assets(),
        {"aims360": make_resource(aims.url)},
        warehouse,
        instance=instance,
        run_config=QUICK,
        raise_on_error=False,
    )
    assert result.success, failure_text(result)
    assert materialization_metadata(result, KEY)["rows"] == 0
    assert len(read_table(warehouse, TABLE)) == 0


@pytest.mark.parametrize(
    "body, rows",
    [
        (b"null", []),
        (b'{"data": null}', []),
        (b'{"value": null, "@odata.count": 0}', []),
        (b'{"results": [{"Order No": "1"}, {"Order No": "2"}], "count": 2}', [{"Order No": "1"}, {"Order No": "2"}]),
        (b'{"Table": []}', []),
    ],
)
def test_json_export_empty_or_under_an_unlisted_key(body, rows):
    assert parse_export(body, "JSON", "application/json; charset=utf-8").records == rows


def test_one_row_object_export_is_still_one_row():
    assert parse_export(json.dumps({"Order No": "1", "Qty": 2}).encode(), "JSON").records == [
        {"Order No": "1", "Qty": 2}
    ]


# -- optional job fields in a shape the docs do not show -----------------------------------
def test_unreadable_optional_job_fields_do_not_hide_the_job():
    job = BackgroundJob.model_validate(
        {"jobId": "j", "jobStatus": "Completed", "percentCompleted": "n/a", "purgeDays": "30 days"}
    )
    assert (job.job_id, job.is_completed, job.percent_completed, job.purge_days) == ("j", True, None, None)
