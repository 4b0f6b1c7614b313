"""AIMS360 Aqua views as sensor-driven raw assets.

One asset per configured view (``AIMS360_VIEWS``), ``raw/aims360/<source>_<view name>``.
The sensor ``aims360_export_sensor`` owns the asynchronous part: it creates an export job per
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

Settings (environment, read when the definitions load; see docs/vendors/aims360.md):
``AIMS360_SENSOR_INTERVAL_SECONDS`` (60), ``AIMS360_STALL_TIMEOUT_SECONDS`` (1800),
``AIMS360_REFRESH_INTERVAL_SECONDS`` (86400), ``AIMS360_MAX_ATTEMPTS`` (3),
``AIMS360_FAILURE_COOLDOWN_SECONDS`` (3600), ``AIMS360_POLL_TIMEOUT_SECONDS`` (1800, for
materializations without the sensor). The sensor is STOPPED by default.
"""

# No ``from __future__ import annotations`` here: Dagster reads the asset's ``Config``
# parameter annotation when the asset is defined, and a string annotation defeats that.

import json
import math
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Literal, Mapping

import dagster as dg
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...http.errors import VendorError, VendorHTTPError
from ...ingest import (
    HTTP_RETRY_POLICY,
    RawFrame,
    RawSpec,
    build_raw_frame,
    permanent_errors_fail_fast,
    raw_asset_defaults,
    quarantine_check_result,
    quarantine_check_spec,
    raw_output,
)
from ...ingest.records import INGESTED_COLUMN, KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN
from .models import BackgroundJob, ViewRow, normalise_scope, parse_timestamp
from .resource import (
    RERUN_REFUSED_STATUSES,
    Aims360ConfigError,
    Aims360Resource,
    ExportFile,
    ExportJob,
    ExportJobFailed,
    PublishlinkGone,
    ViewSpec,
    parse_views,
    snake_case,
)

SENSOR_NAME = "aims360_export_sensor"
GROUP = "aims360"
CURSOR_VERSION = 1


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------
def _number(environ: Mapping[str, str], name: str, default: float, *, minimum: float, integer: bool = False):
    raw = environ.get(name, "").strip()
    if not raw:
        return int(default) if integer else float(default)
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise Aims360ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise Aims360ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Aims360Settings:
    views: tuple[ViewSpec, ...]
    sensor_interval_seconds: int = 60
    stall_timeout_seconds: float = 1800.0
    refresh_interval_seconds: float = 86400.0
    max_attempts: int = 3
    failure_cooldown_seconds: float = 3600.0
    poll_timeout_seconds: float = 1800.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Aims360Settings":
        env = os.environ if environ is None else environ
        return cls(
            views=parse_views(env.get("AIMS360_VIEWS")),
            sensor_interval_seconds=_number(env, "AIMS360_SENSOR_INTERVAL_SECONDS", 60, minimum=1, integer=True),
            stall_timeout_seconds=_number(env, "AIMS360_STALL_TIMEOUT_SECONDS", 1800, minimum=1),
            refresh_interval_seconds=_number(env, "AIMS360_REFRESH_INTERVAL_SECONDS", 86400, minimum=1),
            max_attempts=_number(env, "AIMS360_MAX_ATTEMPTS", 3, minimum=1, integer=True),
            failure_cooldown_seconds=_number(env, "AIMS360_FAILURE_COOLDOWN_SECONDS", 3600, minimum=0),
            poll_timeout_seconds=_number(env, "AIMS360_POLL_TIMEOUT_SECONDS", 1800, minimum=1),
        )


_CHOICES = {
    "output_format": ("AIMS360_OUTPUT_FORMAT", {"json": "JSON", "csv": "CSV", "excel": "Excel"}),
    "publishlink_scope": (
        "AIMS360_PUBLISHLINK_SCOPE",
        {"private": "Private", "peopleinorganization": "PeopleInOrganization", "public": "Public"},
    ),
    "status_method": ("AIMS360_STATUS_METHOD", {"get": "GET", "post": "POST"}),
}


def resource_from_env(environ: Mapping[str, str] | None = None) -> Aims360Resource:
    """The resource as configured by the environment. Credentials are ``dg.EnvVar``s (read
    at run time, never shown in the UI); only the variables that are set are referenced, so
    a token-only or credentials-only setup loads, and a missing one fails with a message
    naming the variables when the resource is first used."""
    env = os.environ if environ is None else environ
    kwargs: dict[str, Any] = Aims360Resource.env_settings(env)
    for field_name, (variable, allowed) in _CHOICES.items():
        raw = env.get(variable, "").strip()
        if raw:
            key = "".join(ch for ch in raw.lower() if ch.isalnum())
            if key not in allowed:
                raise Aims360ConfigError(
                    f"{variable} must be one of {', '.join(allowed.values())}, got {raw!r}"
                )
            kwargs[field_name] = allowed[key]
    hosts = [h.strip() for h in env.get("AIMS360_PUBLISHLINK_HOSTS", "").split(",") if h.strip()]
    if hosts:
        kwargs["publishlink_hosts"] = hosts
    return Aims360Resource(**kwargs)


# --------------------------------------------------------------------------------------
# Typing an exported view
# --------------------------------------------------------------------------------------
_RESERVED = {KEY_COLUMN, PAYLOAD_COLUMN, QUARANTINE_COLUMN, INGESTED_COLUMN}
_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[+-]?(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_KINDS = ("boolean", "Int64", "Float64", "date", "datetime64[ns, UTC]", "string")
_INT64 = (-(2**63), 2**63 - 1)
# Dates and timestamps outside what pandas holds in nanoseconds (1677-09-21 .. 2262-04-11)
# would turn into nulls or wrap around in a typed column: such columns stay text.
_YEARS = (1678, 2261)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _fits(kind: str, value: Any) -> bool:
    text = value.strip() if isinstance(value, str) else None
    if kind == "boolean":
        return isinstance(value, bool) or (text is not None and text.lower() in ("true", "false"))
    if isinstance(value, bool):
        return kind == "string"
    if kind == "Int64":
        if isinstance(value, int):
            return _INT64[0] <= value <= _INT64[1]
        return text is not None and _int64_text(text)
    if kind == "Float64":
        if isinstance(value, int):
            # Integers beyond int64 would lose digits as floats: the column stays text.
            return _INT64[0] <= value <= _INT64[1]
        if isinstance(value, float):
            return True
        # Leading zeros mark codes ("007"), not numbers.
        return (
            text is not None
            and bool(_FLOAT.match(text))
            and not re.match(r"^[+-]?0\d", text)
            and _finite_float_text(text)
            and (_int64_text(text) or not _INT.match(text))
        )
    if kind == "date":
        return text is not None and bool(_DATE.match(text)) and _valid_date(text)
    if kind == "datetime64[ns, UTC]":
        if text is None:
            return False
        if _DATE.match(text):
            return _valid_date(text)
        return bool(_DATETIME.match(text)) and _utc_timestamp(text) is not None
    return True


def _finite_float_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:  # "e5" matches the pattern but is no number
        return False


def _int64_text(text: str) -> bool:
    # Length first: Python refuses to convert strings of thousands of digits.
    return bool(_INT.match(text)) and len(text.lstrip("+-")) <= 19 and _INT64[0] <= int(text) <= _INT64[1]


def _valid_date(text: str) -> bool:
    try:
        return _YEARS[0] <= date.fromisoformat(text).year <= _YEARS[1]
    except ValueError:
        return False


def _utc_timestamp(text: str) -> pd.Timestamp | None:
    """The timestamp in UTC, or ``None`` when it does not parse or falls outside the years a
    typed column can hold (offsets such as ``+99:99`` included)."""
    try:
        stamp = pd.Timestamp(text)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    except (ValueError, OverflowError):
        return None
    if pd.isna(stamp) or not _YEARS[0] <= stamp.year <= _YEARS[1]:
        return None
    return stamp


def _convert(kind: str, value: Any) -> Any:
    if _blank(value):
        return None
    if kind == "boolean":
        return value if isinstance(value, bool) else value.strip().lower() == "true"
    if kind == "Int64":
        return value if isinstance(value, int) else int(value.strip())
    if kind == "Float64":
        return float(value.strip() if isinstance(value, str) else value)
    if kind == "date":
        return date.fromisoformat(value.strip())
    if kind == "datetime64[ns, UTC]":
        # Parsed one by one: a column mixing dates, seconds and fractions must not lose the
        # values pandas' format inference would not match.
        stamp = _utc_timestamp(value.strip())
        if stamp is None:
            raise ValueError(f"not a timestamp: {value!r}")
        return stamp
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return _utf8(str(value))


def _utf8(text: str) -> str:
    """Text the warehouse can store: JSON may escape lone surrogates (``"\\ud800"``), which no
    UTF-8 column holds; they become U+FFFD here (``payload`` keeps the escape as served)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def infer_kind(values: list[Any]) -> str:
    present = [v for v in values if not _blank(v)]
    if not present:
        return "string"
    return next(kind for kind in _KINDS if all(_fits(kind, v) for v in present))


def column_names(headers: list[str]) -> dict[str, str]:
    """Vendor column → warehouse column: snake case, unique, clear of the raw-table columns."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for position, header in enumerate(headers, start=1):
        base = snake_case(str(header)) or f"column_{position}"
        if base[0].isdigit():
            base = f"c_{base}"
        if base in _RESERVED:
            base = f"view_{base}"
        name, suffix = base, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        names[header] = name
    return names


def view_frame(records: list[Any]):
    """Raw frame of an exported view: one row per exported row, typed columns inferred from
    the values (so JSON, CSV and Excel exports of the same data give equal frames), the
    row as served in ``payload`` and the 1-based row number as ``record_key``."""
    headers: list[str] = []
    for record in records:
        if isinstance(record, dict):
            for header in record:
                if header not in headers:
                    headers.append(header)
    names = column_names(headers)
    kinds = {
        header: infer_kind([r.get(header) for r in records if isinstance(r, dict)]) for header in headers
    }
    columns = {names[h]: kinds[h] for h in headers}

    def to_rows(model: ViewRow):
        values = model.model_extra or {}
        yield {names[h]: _convert(kinds[h], values.get(h)) for h in headers}

    spec = RawSpec(model=ViewRow, columns=columns, to_rows=to_rows, key_of=lambda _: None)
    raw = build_raw_frame(spec, records)
    raw.frame[KEY_COLUMN] = pd.array([str(i) for i in range(1, len(raw.frame) + 1)], dtype="string")
    return raw, names


# --------------------------------------------------------------------------------------
# The asset
# --------------------------------------------------------------------------------------
class Aims360ExportConfig(dg.Config):
    """Filled by ``aims360_export_sensor``; leave empty to run the whole export here."""

    job_id: str | None = Field(default=None, description="Completed export job to load.")
    publish_link: str | None = Field(default=None, description="The job's publishlink.")
    scope: str | None = Field(default=None, description="The publishlink's access scope.")
    completed_date: str | None = Field(default=None, description="The job's completedDate.")
    poll_timeout_seconds: float | None = Field(
        default=None, description="Without a completed job: how long to wait for one "
        "(default AIMS360_POLL_TIMEOUT_SECONDS)."
    )
    first_poll_seconds: float = Field(
        default=1.0, description="First wait between status polls (grows to 30 s)."
    )


def op_name(view: ViewSpec) -> str:
    return view_asset_key(view).to_python_identifier()


def view_asset_key(view: ViewSpec) -> dg.AssetKey:
    return dg.AssetKey(["raw", "aims360", view.slug])


def _previous_job(
    context: dg.AssetExecutionContext, key: dg.AssetKey, resource: Aims360Resource
) -> tuple[str | None, str | None]:
    """Job id and completion of the last materialization, when rerunning that job would give
    what the resource asks for now (a rerun keeps the job's output format and scope)."""
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None, None
    metadata = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    same_output = str(metadata.get("output_format", "")).lower() == resource.output_format.lower()
    same_scope = normalise_scope(str(metadata.get("publishlink_scope", ""))) == normalise_scope(
        resource.publishlink_scope
    )
    if not (same_output and same_scope):
        return None, None
    return (metadata.get("job_id") or None), (metadata.get("completed_date") or None)


def export_view(
    context: dg.AssetExecutionContext,
    config: Aims360ExportConfig,
    aims360: Aims360Resource,
    view: ViewSpec,
    settings: Aims360Settings,
) -> tuple[dg.Output, RawFrame]:
    """Load the completed job named in ``config``; without one (or when its publishlink is
    gone) rerun or create a job, wait for it, then load it."""
    key = view_asset_key(view)
    before = aims360.metrics.snapshot()
    job_id, link, completed = config.job_id, config.publish_link, config.completed_date
    scope = config.scope or aims360.publishlink_scope
    export: ExportFile | None = None
    if link:
        try:
            export = aims360.download_publishlink(link, scope, job_id=job_id or "")
        except PublishlinkGone as exc:
            context.log.warning(f"{exc}; exporting the view again")
    if export is None:
        previous_job, previous_completed = _previous_job(context, key, aims360)
        rerun_id = job_id or previous_job
        started = aims360.start_export(view, rerun_job_id=rerun_id, log=context.log)
        reran = rerun_id is not None and started.job_id == rerun_id
        context.log.info(
            f"AIMS360 {'reran' if reran else 'created'} export job {started.job_id} for {view.label}"
        )
        last_seen: list[str] = []

        def report(job: BackgroundJob) -> None:
            text = job.describe()
            if not last_seen or last_seen[-1] != text:
                context.log.info(f"AIMS360 job {job.job_id}: {text}")
                last_seen.append(text)

        finished = aims360.wait_for_job(
            started.job_id,
            timeout_seconds=config.poll_timeout_seconds or settings.poll_timeout_seconds,
            first_poll_seconds=config.first_poll_seconds,
            stale_completed_date=(completed or previous_completed) if reran else None,
            on_progress=report,
        )
        job_id = finished.job_id
        link = finished.publish_link or started.publish_link
        # The scope is optional in answers; the job was created (or rerun) with ours.
        scope = (
            finished.publish_link_access_scope
            or started.publish_link_access_scope
            or aims360.publishlink_scope
        )
        completed = finished.completed_date
        if not link:
            raise ExportJobFailed(aims360.vendor_label, f"AIMS360 job {job_id} completed without a publishlink")
        export = aims360.download_publishlink(link, scope, job_id=job_id)
    raw, names = view_frame(export.records)
    output = raw_output(
        raw,
        aims360.metrics.snapshot() - before,
        job_id=job_id or "",
        completed_date=completed or "",
        output_format=export.output_format,
        publishlink_scope=scope or "",
        columns=len(names),
        bytes=export.bytes,
        view=view.label,
    )
    return output, raw


def build_view_asset(
    view: ViewSpec,
    settings: Aims360Settings,
    *,
    retry_policy: dg.RetryPolicy | None = HTTP_RETRY_POLICY,
) -> dg.AssetsDefinition:
    """The view's raw asset. ``retry_policy`` is the step retry for outages that outlast the
    client's own retries (tests pass ``None`` or a policy without delay)."""
    key = view_asset_key(view)

    @dg.asset(
        key=key,
        **raw_asset_defaults(GROUP, retry_policy),
        check_specs=[quarantine_check_spec(key)],
        description=(
            f"AIMS360 view {view.label} as exported by Aqua: one row per view row, typed "
            f"columns, the row as served in `payload`. Fed by the sensor {SENSOR_NAME}; each "
            "materialization replaces the table."
        ),
        metadata={"aims360/source": view.source, "aims360/view": view.view_name},
    )
    def _view_asset(
        context: dg.AssetExecutionContext, config: Aims360ExportConfig, aims360: Aims360Resource
    ):
        # Outages (429/502/503/504, timeouts, resets, truncated bodies after the client's
        # attempts, failed or stalled jobs) reach the step retry policy; refused credentials
        # or scopes, other 4xx/5xx answers, error envelopes, untrusted publishlink hosts and
        # bad settings fail at once: a retry would only be refused again.
        with permanent_errors_fail_fast():
            output, raw = export_view(context, config, aims360, view, settings)
        yield output
        yield quarantine_check_result(key, raw)

    return _view_asset


# --------------------------------------------------------------------------------------
# The sensor
# --------------------------------------------------------------------------------------
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
    return when.astimezone(timezone.utc).isoformat()


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
            run_config={
                "ops": {
                    op_name(self.view): {
                        "config": {
                            "job_id": job.job_id,
                            "publish_link": st.publish_link,
                            "scope": st.scope,
                            "completed_date": job.completed_date,
                        }
                    }
                }
            },
            tags={"aims360/view": self.view.label, "aims360/job_id": job.job_id},
        )
        return TickOutcome(
            f"{self.view.label}: job {job.job_id} completed at {job.completed_date}; requested run {run_key}",
            request,
        )

    def _maybe_refresh(self, st: ViewState) -> tuple[ViewState, TickOutcome]:
        label = self.view.label
        age = _seconds_since(st.data_refreshed_at, self.now)
        if age < self.settings.refresh_interval_seconds:
            due = parse_timestamp(st.data_refreshed_at) + timedelta(seconds=self.settings.refresh_interval_seconds)
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
        return st, TickOutcome(f"{label}: data is {age:.0f} s old and job {st.job_id} cannot be rerun ({why}); " + self._start(st, None))

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
        st.failure = (
            f"{reason} (after {st.attempts} failed job(s) and {st.errors} failed call(s) in a row)"
        )
        return st, TickOutcome(
            f"FAILED {self.view.label}: {st.failure}. The sensor reports an error from the next "
            "tick until the failure cool-down passes or its cursor is reset."
        )


def failure_report(failed: list[tuple[ViewSpec, ViewState]], settings: Aims360Settings) -> str:
    lines = []
    for view, st in failed:
        retry_at = parse_timestamp(st.failed_at) + timedelta(seconds=settings.failure_cooldown_seconds)
        lines.append(
            f"AIMS360 view {view.label} failed: {st.failure} (last job {st.job_id or 'none'}). "
            f"Retried automatically after {_iso(retry_at)}."
        )
    lines.append(
        f"To retry now: `dagster sensor cursor {SENSOR_NAME} --delete` (all views start new "
        "exports), or remove the view's entry from the cursor."
    )
    return "\n".join(lines)


def build_export_sensor(
    settings: Aims360Settings,
    now: Callable[[], datetime] | None = None,
) -> dg.SensorDefinition:
    clock = now or (lambda: datetime.now(timezone.utc))
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


# --------------------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------------------
def definitions(
    environ: Mapping[str, str] | None = None,
    now: Callable[[], datetime] | None = None,
) -> dg.Definitions:
    settings = Aims360Settings.from_env(environ)
    assets = [build_view_asset(view, settings) for view in settings.views]
    return dg.Definitions(
        assets=assets,
        sensors=[build_export_sensor(settings, now)],
        resources={GROUP: resource_from_env(environ)},
    )


__all__ = [
    "Aims360ExportConfig",
    "Aims360ExportFailed",
    "Aims360Settings",
    "SENSOR_NAME",
    "ViewState",
    "build_export_sensor",
    "build_view_asset",
    "definitions",
    "load_cursor",
    "resource_from_env",
    "view_asset_key",
    "view_frame",
]
