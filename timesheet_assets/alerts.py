"""Alerts that reach people: a failed run, and an asset that turned late or overdue, posted to
a chat webhook.

``TIMESHEET_ALERT_WEBHOOK_URL`` names the webhook (Slack's incoming webhooks, or anything that
accepts Slack's ``{"text": ...}`` body: Mattermost, Rocket.Chat, Teams' Slack-compatible
connectors). The URL is a secret — whoever has it can post to the channel — so it is read from
the environment when a sensor runs and never written to a log, a tick or an error: failures
name the host only. ``TIMESHEET_UI_URL`` (optional, e.g. ``https://dagster.example.com``) adds
a link to the run or asset. Without a webhook the sensors skip, saying why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

import dagster as dg
import httpx

from .http import InsecureURLError, ensure_safe_url

WEBHOOK_ENV = "TIMESHEET_ALERT_WEBHOOK_URL"
UI_URL_ENV = "TIMESHEET_UI_URL"
RUN_FAILURE_SENSOR = "alert_on_run_failure"
FRESHNESS_SENSOR = "alert_on_overdue_assets"
MAX_STEPS_LISTED = 5
MAX_LINE = 400
ALERTED_STATES = ("WARN", "FAIL")


class AlertDeliveryError(RuntimeError):
    """The webhook could not be reached or refused the post (the message names its host only)."""


def webhook_url() -> httpx.URL | None:
    raw = os.environ.get(WEBHOOK_ENV, "").strip()
    if not raw:
        return None
    try:
        return ensure_safe_url(raw, setting=WEBHOOK_ENV)
    except InsecureURLError as exc:
        # ensure_safe_url names scheme and host only; the path (the secret part) stays out.
        raise AlertDeliveryError(str(exc)) from None


def post_alert(text: str, url: httpx.URL, *, timeout: float = 10.0) -> None:
    """Post ``{"text": text}``; raise ``AlertDeliveryError`` naming only the host on failure."""
    failure: str | None = None
    try:
        response = httpx.post(url, json={"text": text}, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        # httpx's own message carries the full URL: keep only the kind of failure.
        failure = f"unreachable ({type(exc).__name__})"
    else:
        if response.status_code >= 300:
            failure = f"answered HTTP {response.status_code}"
    if failure is not None:
        raise AlertDeliveryError(f"alert webhook at {url.scheme}://{url.host} {failure}")


def _ui_link(path: str) -> str:
    base = os.environ.get(UI_URL_ENV, "").strip().rstrip("/")
    return f"{base}/{path}" if base else ""


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def _step_headline(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    user = data.user_failure_data if data is not None else None
    if user is not None and user.description:
        return user.description
    error = data.error if data is not None else None
    if error is None:
        return event.message or "failed"
    # The cause says more than Dagster's wrapper ("Exceeded max_retries of 2").
    while error.cause is not None and error.message.startswith("Exceeded max_retries"):
        error = error.cause
    return error.message.split("\n", 1)[0]


def run_failure_text(run: dg.DagsterRun, step_failures: Sequence[dg.DagsterEvent], run_message: str) -> str:
    tags = run.tags
    window = ""
    if "dagster/asset_partition_range_start" in tags:
        window = (
            f", work dates {tags['dagster/asset_partition_range_start']} .. {tags['dagster/asset_partition_range_end']}"
        )
    vendor = tags.get("timesheet_assets/vendor")
    lines = [f":red_circle: timesheet-assets: run of {run.job_name}{f' ({vendor})' if vendor else ''}{window} failed"]
    for event in step_failures[:MAX_STEPS_LISTED]:
        lines.append(f"• {event.step_key}: {_short(_step_headline(event))}")
    if len(step_failures) > MAX_STEPS_LISTED:
        lines.append(f"• … and {len(step_failures) - MAX_STEPS_LISTED} more failed steps")
    if not step_failures:
        lines.append(f"• {_short(run_message)}")
    link = _ui_link(f"runs/{run.run_id}")
    lines.append(f"run {run.run_id}" + (f": {link}" if link else ""))
    return "\n".join(lines)


@dg.run_failure_sensor(
    name=RUN_FAILURE_SENSOR,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts every failed run of this code location (job, vendor, work dates, each "
    f"failed step's vendor call) to the chat webhook in {WEBHOOK_ENV}.",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext):
    url = webhook_url()
    if url is None:
        return dg.SkipReason(f"{WEBHOOK_ENV} is not set: no webhook to post to")
    text = run_failure_text(context.dagster_run, context.get_step_failure_events(), context.failure_event.message or "")
    post_alert(text, url)
    context.log.info(f"posted the failure of run {context.dagster_run.run_id} to the alert webhook")
    return None


def freshness_text(changes: Iterable[tuple[dg.AssetKey, str, str]]) -> str:
    """One message for the state changes (key, new state, previous state) of one tick."""
    words = {"FAIL": "overdue", "WARN": "late (overdue within the hour)", "PASS": "fresh again"}
    lines = [":hourglass: timesheet-assets: asset freshness changed"]
    for key, state, _previous in changes:
        link = _ui_link(f"assets/{key.to_user_string()}")
        lines.append(f"• {key.to_user_string()}: {words.get(state, state.lower())}" + (f" ({link})" if link else ""))
    return "\n".join(lines)


@dg.sensor(
    name=FRESHNESS_SENSOR,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Posts to the chat webhook in {WEBHOOK_ENV} when an asset turns late or "
    "overdue under its freshness policy (as Dagster's freshness daemon evaluates it), and "
    "when it is fresh again.",
)
def alert_on_overdue_assets(context: dg.SensorEvaluationContext):
    # Cursor: asset -> its freshness state when last seen. Only a change of state is news
    # (a state that flips and flips back between two ticks is not).
    seen: dict[str, str] = json.loads(context.cursor or "{}")
    assert context.repository_def is not None  # a sensor's context always has its code location
    keys = list(context.repository_def.asset_graph.get_all_asset_keys())
    records = context.instance.get_freshness_state_records(keys)
    changes: list[tuple[dg.AssetKey, str, str]] = []
    for key, record in sorted(records.items(), key=lambda item: item[0].to_user_string()):
        state = record.freshness_state.value
        previous = seen.get(key.to_user_string(), "UNKNOWN")
        seen[key.to_user_string()] = state
        if state == previous:
            continue
        if state in ALERTED_STATES or (state == "PASS" and previous in ALERTED_STATES):
            changes.append((key, state, previous))
    if not changes:
        context.update_cursor(json.dumps(seen))
        return dg.SkipReason("no asset turned late, overdue or fresh again")
    url = webhook_url()
    if url is None:
        context.update_cursor(json.dumps(seen))
        return dg.SkipReason(f"{WEBHOOK_ENV} is not set: {len(changes)} freshness change(s) not posted")
    post_alert(freshness_text(changes), url)  # raises before the cursor moves: retried next tick
    context.update_cursor(json.dumps(seen))
    return dg.SkipReason(f"posted {len(changes)} freshness change(s) to the alert webhook")


ALERT_SENSORS = (alert_on_run_failure, alert_on_overdue_assets)
