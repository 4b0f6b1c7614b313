"""``aims360_export_sensor``: the asynchronous half of an AIMS360 export, one state machine per view.

The sensor owns the asynchronous part: it creates an export job per
view, polls it (one status call per pending job per tick), and when the job completes asks
for one run of the view's asset with the job id and publishlink in the run config. The asset
then only downloads and parses the output. Materialized by hand (no run config) the asset
does the whole flow itself: rerun the job of its last materialization (or create one), poll
with a timeout, download.

Sensor state lives in the sensor cursor (JSON, one entry per view). Per view and tick:

* no job → create one;
* job Queued / running → one status call; the skip reason shows status and percent;
* job Completed → ``RunRequest`` with ``run_key = "<jobId>:<completedDate>"`` (never two runs
  for one completion; later ticks make no calls until the data is due for refresh);
* job Failed, unknown to the API (purged), or without progress for longer than the stall
  timeout → a new job, at most ``AIMS360_MAX_ATTEMPTS`` jobs in a row; then the view is
  marked failed and every tick errors (naming view, job and reason) until the failure
  cool-down passes or the cursor is reset;
* data older than the refresh interval → rerun the job (``/rerun``) when ``canReRun`` and its
  output is not purged, else create a new job.

The sensor is STOPPED by default. Settings: ``Aims360Settings`` (settings.py).
"""

# No ``from __future__ import annotations`` here: Dagster reads the sensor's resource
# parameter annotation when the sensor is defined, and a string annotation defeats that.

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import dagster as dg
from pydantic import BaseModel, ConfigDict, ValidationError

from ...http.errors import VendorError, VendorHTTPError
from .jobs import RERUN_REFUSED_STATUSES
from .models import BackgroundJob, ExportJob, parse_timestamp
from .resource import Aims360Resource
from .settings import Aims360Settings
from .view_asset import SENSOR_NAME, Aims360ExportConfig, download_run_config, view_asset_key
from .views import ViewSpec

CURSOR_VERSION = 1
Phase = Literal["new", "pending", "delivered", "failed"]


class ViewState(BaseModel):
    """What the sensor remembers about one view between ticks (in the cursor)."""

    model_config = ConfigDict(extra="ignore")

    phase: Phase = "new"
    job_id: str | None = None
    publish_link: str | None = None
    scope: str | None = None
    status: str | None = None
    percent: float | None = None
    can_rerun: bool | None = None
    purge_deadline: str | None = None
    job_started_at: str | None = None
    last_progress_at: str | None = None
    # Jobs in a row that failed, stalled or vanished; reset by a completion.
    attempts: int = 0
    # API calls in a row that failed after the client's retries; reset by any success.
    errors: int = 0
    last_error: str | None = None
    # A rerun keeps the job id: its previous completion is not the rerun's completion.
    stale_completed_date: str | None = None
    # What the job was created with: a rerun keeps both, so a changed setting needs a new job.
    output_format: str | None = None
    requested_scope: str | None = None
    last_completed_date: str | None = None
    requested_run_key: str | None = None
    data_refreshed_at: str | None = None
    failed_at: str | None = None
    failure: str | None = None


def load_cursor(cursor: str | None) -> dict[str, ViewState]:
    if not cursor:
        return {}
    try:
        body = json.loads(cursor)
        return {slug: ViewState.model_validate(value) for slug, value in body.get("views", {}).items()}
    except (ValueError, AttributeError, ValidationError):
        return {}


def dump_cursor(states: Mapping[str, ViewState]) -> str:
    return json.dumps(
        {"version": CURSOR_VERSION, "views": {slug: s.model_dump(exclude_defaults=True) for slug, s in states.items()}},
        sort_keys=True,
        separators=(",", ":"),
    )


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _seconds_since(earlier: str | None, now: datetime) -> float:
    when = parse_timestamp(earlier)
    return float("inf") if when is None else (now - when).total_seconds()


class Aims360ExportFailed(Exception):
    """A view's exports failed ``AIMS360_MAX_ATTEMPTS`` times in a row (error tick)."""


@dataclass
class TickOutcome:
    message: str
    run_request: dg.RunRequest | None = None


class ViewTracker:
    """One tick's work for one view; all vendor calls go through the resource."""

    def __init__(self, view: ViewSpec, resource: Aims360Resource, settings: Aims360Settings, now: datetime):
        self.view = view
        self.res = resource
        self.settings = settings
        self.now = now

    def advance(self, state: ViewState) -> tuple[ViewState, TickOutcome]:
        st = state.model_copy(deep=True)
        label = self.view.label
        try:
            if st.phase == "failed":
                # Reached only after the cool-down: try again from scratch.
                st = ViewState(last_completed_date=st.last_completed_date)
                return st, TickOutcome(f"{label}: retrying after the failure cool-down; " + self._start(st, None))
            if st.phase == "new":
                return st, TickOutcome(f"{label}: " + self._start(st, None))
            if st.phase == "pending":
                return self._poll(st)
            return self._maybe_refresh(st)
        except VendorError as exc:
            st.errors += 1
            st.last_error = str(exc)
            if st.errors >= self.settings.max_attempts:
                return self._fail(st, f"AIMS360 API calls failed {st.errors} times in a row: {exc}")
            return st, TickOutcome(
                f"{label}: AIMS360 call failed ({exc}); retrying next tick "
                f"({st.errors} of {self.settings.max_attempts})"
            )

    # -- steps -----------------------------------------------------------------------------
    def _start(self, st: ViewState, rerun_job_id: str | None) -> str:
        """Rerun or create a job; ``st`` becomes pending. Returns what happened."""
        note = ""
        job: ExportJob | None = None
        if rerun_job_id:
            try:
                job = self.res.rerun_job(rerun_job_id)
            except VendorHTTPError as exc:
                if exc.status not in RERUN_REFUSED_STATUSES:
                    raise
                note = f"job {rerun_job_id} cannot be rerun (HTTP {exc.status}: {exc.vendor_message}); "
        if job is None:
            st.stale_completed_date = None
            job = self.res.create_export_job(self.view)
            st.output_format = self.res.output_format
            st.requested_scope = self.res.publishlink_scope
            verb = "created export job"
        else:
            st.stale_completed_date = st.last_completed_date
            verb = "reran export job"
        st.phase = "pending"
        st.job_id = job.job_id
        st.publish_link = job.publish_link
        st.scope = job.publish_link_access_scope or st.scope or self.res.publishlink_scope
        st.status = job.job_status or "Queued"
        st.percent = None
        st.job_started_at = st.last_progress_at = _iso(self.now)
        st.errors = 0
        st.last_error = None
        attempt = f", attempt {st.attempts + 1} of {self.settings.max_attempts}" if st.attempts else ""
        return f"{note}{verb} {job.job_id} ({st.status}{attempt})"

    def _poll(self, st: ViewState) -> tuple[ViewState, TickOutcome]:
        label = self.view.label
        assert st.job_id is not None
        job = self.res.job_status(st.job_id)
        st.errors = 0
        st.last_error = None
        if job is None:
            return self._retry(st, f"job {st.job_id} is no longer known to the API (purged)")
        if job.is_failed:
            return self._retry(st, f"job {st.job_id} {job.describe()}")
        if job.completes_after(st.stale_completed_date):
            return st, self._deliver(st, job)
        progressed = (job.job_status, job.percent_completed) != (st.status, st.percent)
        st.status, st.percent = job.job_status, job.percent_completed
        if progressed:
            st.last_progress_at = _iso(self.now)
        idle = _seconds_since(st.last_progress_at, self.now)
        if idle > self.settings.stall_timeout_seconds:
            return self._retry(
                st,
                f"job {st.job_id} stalled: no progress for {idle:.0f} s (stall timeout "
                f"{self.settings.stall_timeout_seconds:g} s, last status {job.describe()})",
            )
        waiting = "waiting for the rerun to start" if job.is_completed else job.describe()
        return st, TickOutcome(f"{label}: job {st.job_id} {waiting}")

    def _deliver(self, st: ViewState, job: BackgroundJob) -> TickOutcome:
        # Without a completedDate (optional in answers) the tick's time tells completions of
        # one (rerun) job apart; a repeated run_key would make Dagster drop the new run.
        run_key = f"{job.job_id}:{job.completed_date or _iso(self.now)}"
        st.phase = "delivered"
        st.status, st.percent = job.job_status, job.percent_completed
        st.publish_link = job.publish_link or st.publish_link
        st.scope = job.publish_link_access_scope or st.scope
        st.can_rerun = job.can_rerun
        deadline = job.purge_deadline()
        st.purge_deadline = _iso(deadline) if deadline else None
        st.last_completed_date = job.completed_date
        st.stale_completed_date = None
        st.requested_run_key = run_key
        st.data_refreshed_at = _iso(self.now)
        st.attempts = 0
        request = dg.RunRequest(
            run_key=run_key,
            asset_selection=[view_asset_key(self.view)],
            run_config=download_run_config(
                self.view,
                Aims360ExportConfig(
                    job_id=job.job_id,
                    publish_link=st.publish_link,
                    scope=st.scope,
                    completed_date=job.completed_date,
                    # The download is read as the format the job was created with.
                    output_format=st.output_format or self.res.output_format,
                ),
            ),
            tags={"aims360/view": self.view.label, "aims360/job_id": job.job_id},
        )
        return TickOutcome(
            f"{self.view.label}: job {job.job_id} completed at {job.completed_date}; requested run {run_key}",
            request,
        )

    def _maybe_refresh(self, st: ViewState) -> tuple[ViewState, TickOutcome]:
        label = self.view.label
        age = _seconds_since(st.data_refreshed_at, self.now)
        refreshed = parse_timestamp(st.data_refreshed_at)
        if refreshed is not None and age < self.settings.refresh_interval_seconds:
            due = refreshed + timedelta(seconds=self.settings.refresh_interval_seconds)
            return st, TickOutcome(
                f"{label}: job {st.job_id} (completed {st.last_completed_date}) already requested; "
                f"next refresh after {_iso(due)}"
            )
        purge = parse_timestamp(st.purge_deadline)
        purged = purge is not None and purge <= self.now
        settings_changed = (st.output_format, st.requested_scope) != (
            self.res.output_format,
            self.res.publishlink_scope,
        )
        if st.can_rerun and not purged and not settings_changed:
            return st, TickOutcome(f"{label}: data is {age:.0f} s old; " + self._start(st, st.job_id))
        if settings_changed:
            why = "output format or publishlink scope changed since it was created"
        else:
            why = "its output was purged" if purged else "canReRun is not Yes"
        return st, TickOutcome(
            f"{label}: data is {age:.0f} s old and job {st.job_id} cannot be rerun ({why}); " + self._start(st, None)
        )

    def _retry(self, st: ViewState, reason: str) -> tuple[ViewState, TickOutcome]:
        st.attempts += 1
        if st.attempts >= self.settings.max_attempts:
            return self._fail(st, reason)
        st.phase = "new"
        st.job_id = None
        return st, TickOutcome(f"{self.view.label}: {reason}; " + self._start(st, None))

    def _fail(self, st: ViewState, reason: str) -> tuple[ViewState, TickOutcome]:
        st.phase = "failed"
        st.failed_at = _iso(self.now)
        st.failure = f"{reason} (after {st.attempts} failed job(s) and {st.errors} failed call(s) in a row)"
        return st, TickOutcome(
            f"FAILED {self.view.label}: {st.failure}. The sensor reports an error from the next "
            "tick until the failure cool-down passes or its cursor is reset."
        )


def failure_report(failed: list[tuple[ViewSpec, ViewState]], settings: Aims360Settings) -> str:
    lines = []
    for view, st in failed:
        failed_at = parse_timestamp(st.failed_at)
        retry = (
            f"Retried automatically after {_iso(failed_at + timedelta(seconds=settings.failure_cooldown_seconds))}."
            if failed_at is not None
            else "Reset the sensor's cursor to retry it."
        )
        lines.append(f"AIMS360 view {view.label} failed: {st.failure} (last job {st.job_id or 'none'}). {retry}")
    lines.append(
        f"To retry now: `dagster sensor cursor {SENSOR_NAME} --delete` (all views start new "
        "exports), or remove the view's entry from the cursor."
    )
    return "\n".join(lines)


def build_export_sensor(
    settings: Aims360Settings,
    now: Callable[[], datetime] | None = None,
) -> dg.SensorDefinition:
    clock = now or (lambda: datetime.now(UTC))
    views = settings.views

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        target=[view_asset_key(v) for v in views],
        description=(
            "Creates AIMS360 export jobs for the configured views, polls them, and requests a "
            "run of the view's asset when a job completes; reruns jobs when the data is older "
            "than the refresh interval. Off by default: turn it on in the UI (Automation)."
        ),
    )
    def aims360_export_sensor(context: dg.SensorEvaluationContext, aims360: Aims360Resource):
        at = clock()
        states = load_cursor(context.cursor)
        failed = [
            (v, states[v.slug])
            for v in views
            if v.slug in states
            and states[v.slug].phase == "failed"
            and _seconds_since(states[v.slug].failed_at, at) < settings.failure_cooldown_seconds
        ]
        if failed:
            # Nothing else runs while a view is failed: the error must not hide behind
            # other views' progress, and a failed tick keeps no state it could lose.
            raise Aims360ExportFailed(failure_report(failed, settings))
        updated: dict[str, ViewState] = {}
        messages: list[str] = []
        requests: list[dg.RunRequest] = []
        for view in views:
            state, outcome = ViewTracker(view, aims360, settings, at).advance(states.get(view.slug, ViewState()))
            updated[view.slug] = state
            messages.append(outcome.message)
            if outcome.run_request is not None:
                requests.append(outcome.run_request)
        cursor = dump_cursor(updated)
        if requests:
            for message in messages:
                context.log.info(message)
            return dg.SensorResult(run_requests=requests, cursor=cursor)
        return dg.SensorResult(skip_reason=dg.SkipReason("\n".join(messages)), cursor=cursor)

    return aims360_export_sensor
