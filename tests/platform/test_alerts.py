"""A failed run and an overdue asset reach people: the alert sensors post Slack-compatible
JSON to the webhook named by TIMESHEET_ALERT_WEBHOOK_URL (a receiver on loopback here),
and neither the webhook's secret path nor a vendor credential shows anywhere."""

from datetime import date, timedelta

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon
from dagster._time import get_current_timestamp

from tests.support.dagster_helpers import range_tags
from tests.support.webhook import WebhookReceiver
from timesheet_assets.alerts import (
    FRESHNESS_SENSOR,
    RUN_FAILURE_SENSOR,
    WEBHOOK_ENV,
    AlertDeliveryError,
    alert_on_overdue_assets,
    alert_on_run_failure,
    post_alert,
    webhook_url,
)
from timesheet_assets.definitions import build_definitions
from timesheet_assets.freshness import DEFAULT_OVERDUE_HOURS, freshness_policy, overdue_hours
from timesheet_assets.location import CODE_LOCATION, DEFINITIONS_ATTRIBUTE, DEFINITIONS_MODULE
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.settings import SettingError
from timesheet_assets.vendors.blikk.sandbox import create_app, sandbox_env

DAY = date(2025, 3, 31)
REPORTS = dg.AssetKey(["raw", "blikk", "time_reports"])


@pytest.fixture
def receiver(monkeypatch):
    with WebhookReceiver() as hook:
        monkeypatch.setenv(WEBHOOK_ENV, hook.url)
        yield hook


def test_every_raw_and_conformed_asset_says_when_it_is_overdue(monkeypatch):
    monkeypatch.setenv("BLIKK_OVERDUE_HOURS", "170")
    graph = build_definitions().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).freshness_policy
        assert isinstance(policy, dg.FreshnessPolicy), key
        hours = 170 if key.path[:2] == ["raw", "blikk"] else DEFAULT_OVERDUE_HOURS
        assert policy.fail_window.to_timedelta() == timedelta(hours=hours), key
        assert policy.warn_window.to_timedelta() == timedelta(hours=hours - 1), key


def test_overdue_settings_are_checked(monkeypatch):
    monkeypatch.setenv("TIMESHEET_OVERDUE_HOURS", "30")
    assert overdue_hours("ajera") == 30 and overdue_hours() == 30
    monkeypatch.setenv("AJERA_OVERDUE_HOURS", "0.5")
    with pytest.raises(SettingError, match="AJERA_OVERDUE_HOURS must be at least 1 hour"):
        freshness_policy("ajera")
    monkeypatch.setenv("AJERA_OVERDUE_HOURS", "a day")
    with pytest.raises(SettingError, match="AJERA_OVERDUE_HOURS must be a number of hours"):
        freshness_policy("ajera")


def test_a_failed_run_is_posted_with_its_vendor_call_and_no_secret(
    serve_app, receiver, instance, tmp_path, monkeypatch
):
    server = serve_app(create_app(SandboxConfig(anchor_date=DAY, days=3, time_records=20)))
    env = sandbox_env(server.url)
    secret = env["BLIKK_APP_SECRET"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BLIKK_APP_SECRET", "rejected-" + secret)
    monkeypatch.setenv("TIMESHEET_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("TIMESHEET_UI_URL", "https://dagster.example.com/")
    defs = build_definitions(("blikk",))
    result = defs.resolve_job_def("refresh_blikk").execute_in_process(
        instance=instance, tags={**range_tags(DAY, DAY), "timesheet_assets/vendor": "blikk"}, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)

    context = dg.build_run_status_sensor_context(
        sensor_name=RUN_FAILURE_SENSOR,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()
    alert_on_run_failure(context)

    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["path"] == WebhookReceiver.PATH and post["content_type"] == "application/json"
    assert set(post["body"]) == {"text"}  # Slack's incoming-webhook body
    text = post["body"]["text"]
    lines = text.splitlines()
    assert (
        lines[0] == f"{':red_circle:'} timesheet-assets: run of refresh_blikk (blikk), work dates {DAY} .. {DAY} failed"
    )
    step_lines = [line for line in lines if line.startswith("• ")]
    assert len(step_lines) == 2  # both raw steps were refused
    assert all("Blikk POST /v1/Auth/Token failed with HTTP 401" in line for line in step_lines), step_lines
    assert lines[-1] == f"run {result.run_id}: https://dagster.example.com/runs/{result.run_id}"
    assert secret not in text and "rejected-" not in text


def test_without_a_webhook_the_sensors_skip_and_say_why(instance, monkeypatch):
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    assert webhook_url() is None
    defs = build_definitions(("blikk",))
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        result = alert_on_overdue_assets.evaluate_tick(context)
    assert result.skip_message  # nothing changed yet, nothing to post


def test_a_failing_webhook_is_an_error_naming_its_host_only(receiver):
    receiver.status = 500
    with pytest.raises(AlertDeliveryError) as info:
        post_alert("hello", webhook_url())
    message = str(info.value)
    assert message == "alert webhook at http://127.0.0.1 answered HTTP 500"
    assert "s3cret" not in message and "services" not in message

    with pytest.raises(AlertDeliveryError) as info:
        post_alert("hello", webhook_url().copy_with(port=1))  # nothing listens there
    assert "unreachable" in str(info.value) and "s3cret" not in str(info.value)


def test_a_plain_http_webhook_off_loopback_is_refused_without_showing_its_path(monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, "http://hooks.example.com/services/T1/B2/s3cret-token")
    with pytest.raises(AlertDeliveryError) as info:
        webhook_url()
    assert "http://hooks.example.com" in str(info.value) and "s3cret" not in str(info.value)


def test_an_asset_turning_late_then_overdue_then_fresh_is_posted(receiver, sqlite_instance, monkeypatch):
    """Dagster's freshness daemon evaluates the policies (its clock moved forward), and the
    sensor posts each change once. The daemon's workspace needs an instance on disk."""
    instance = sqlite_instance
    now = get_current_timestamp()
    clock = {"t": now}
    for module in ("dagster._core.definitions.freshness_evaluator", "dagster._daemon.freshness"):
        monkeypatch.setattr(f"{module}.get_current_timestamp", lambda: clock["t"])
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=REPORTS, partition=DAY.isoformat()))
    defs = build_definitions(("blikk",))
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=DEFINITIONS_MODULE, attribute=DEFINITIONS_ATTRIBUTE),
        location_name=CODE_LOCATION,
    )
    cursor = None

    def tick(hours: float) -> list[str]:
        nonlocal cursor
        clock["t"] = now + hours * 3600
        list(FreshnessDaemon().run_iteration(process))
        before = len(receiver.posts)
        with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
            alert_on_overdue_assets.evaluate_tick(context)
            cursor = context.cursor
        return receiver.texts()[before:]

    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as process:
        assert tick(1) == []
        assert instance.get_freshness_state_records([REPORTS])[REPORTS].freshness_state == FreshnessState.PASS
        late = tick(25.5)
        assert len(late) == 1 and "• raw/blikk/time_reports: late (overdue within the hour)" in late[0]
        assert tick(25.7) == []  # still late: said once
        overdue = tick(27)
        assert len(overdue) == 1 and "• raw/blikk/time_reports: overdue" in overdue[0]
        # Assets never loaded stay UNKNOWN: no alert for them.
        assert "conformed/timesheets" not in overdue[0]
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=REPORTS, partition=DAY.isoformat()))
        # The new materialization is stamped with the real time: evaluate half an hour after it.
        fresh = tick(0.5)
        assert len(fresh) == 1 and "• raw/blikk/time_reports: fresh again" in fresh[0]
    assert alert_on_overdue_assets.name == FRESHNESS_SENSOR
