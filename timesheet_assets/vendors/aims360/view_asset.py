"""The raw asset of one AIMS360 view, ``raw/aims360/<source>_<view name>``.

Run by ``aims360_export_sensor`` with a completed job in its run config, the asset only
downloads the publishlink and reads it as the format the job was created with. Materialized
by hand (no run config) it does the whole flow itself: rerun the job of its last
materialization (or create one), poll with a timeout, download. Each materialization
replaces the table; a download that fails — or answers something that is not the requested
format — fails the run and leaves the previous table as it was.
"""

# No ``from __future__ import annotations`` here: Dagster reads the asset's ``Config``
# parameter annotation when the asset is defined, and a string annotation defeats that.

import dagster as dg
from pydantic import Field

from ...ingest import (
    HTTP_RETRY_POLICY,
    RawFrame,
    permanent_errors_fail_fast,
    quarantine_check_result,
    quarantine_check_spec,
    raw_asset_defaults,
    raw_output,
)
from ...ingest.metadata import COLUMN_SCHEMA, declared_schema
from .errors import Aims360ConfigError, ExportJobFailed, PublishlinkGone
from .exports import ExportFile, output_format_name
from .frames import VIEW_FIXED_COLUMN_DESCRIPTIONS, view_frame
from .models import BackgroundJob, normalise_scope
from .resource import Aims360Resource
from .settings import Aims360Settings
from .views import ViewSpec

SENSOR_NAME = "aims360_export_sensor"
GROUP = "aims360"


class Aims360ExportConfig(dg.Config):
    """Filled by ``aims360_export_sensor``; leave empty to run the whole export here."""

    job_id: str | None = Field(default=None, description="Completed export job to load.")
    publish_link: str | None = Field(default=None, description="The job's publishlink.")
    scope: str | None = Field(default=None, description="The publishlink's access scope.")
    completed_date: str | None = Field(default=None, description="The job's completedDate.")
    output_format: str | None = Field(
        default=None,
        description="The outputFormat the job was created with; the download is "
        "read as this format (default: the resource's AIMS360_OUTPUT_FORMAT).",
    )
    poll_timeout_seconds: float | None = Field(
        default=None,
        description="Without a completed job: how long to wait for one (default AIMS360_POLL_TIMEOUT_SECONDS).",
    )
    first_poll_seconds: float = Field(default=1.0, description="First wait between status polls (grows to 30 s).")


def download_run_config(view: ViewSpec, config: Aims360ExportConfig) -> dict:
    """The run config of a run that loads a completed job (what the sensor requests): the
    fields ``config`` was given, for the view's op."""
    return {"ops": {op_name(view): {"config": config.model_dump(exclude_unset=True)}}}


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


def _job_format(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return output_format_name(value)
    except ValueError:
        raise Aims360ConfigError(f"run config output_format must be one of JSON, CSV, Excel, got {value!r}") from None


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
    # A job's output keeps the format it was created with; the sensor passes it along.
    job_format = _job_format(config.output_format) or aims360.output_format
    export: ExportFile | None = None
    if link:
        try:
            export = aims360.download_publishlink(link, scope, job_id=job_id or "", output_format=job_format)
        except PublishlinkGone as exc:
            context.log.warning(f"{exc}; exporting the view again")
    if export is None:
        previous_job, previous_completed = _previous_job(context, key, aims360)
        rerun_id = job_id or previous_job
        started = aims360.start_export(view, rerun_job_id=rerun_id, log=context.log)
        reran = rerun_id is not None and started.job_id == rerun_id
        if not (reran and rerun_id == job_id):
            # A new job, or the rerun of the last materialization's job (only rerun when its
            # format is the current setting): either way the resource's format.
            job_format = aims360.output_format
        context.log.info(f"AIMS360 {'reran' if reran else 'created'} export job {started.job_id} for {view.label}")
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
        scope = finished.publish_link_access_scope or started.publish_link_access_scope or aims360.publishlink_scope
        completed = finished.completed_date
        if not link:
            raise ExportJobFailed(aims360.vendor_label, f"AIMS360 job {job_id} completed without a publishlink")
        export = aims360.download_publishlink(link, scope, job_id=job_id, output_format=job_format)
    raw, names = view_frame(export.records)
    output = raw_output(
        context,
        raw,
        aims360.metrics.snapshot() - before,
        job_id=job_id or "",
        completed_date=completed or "",
        output_format=export.output_format,
        publishlink_scope=scope or "",
        columns=len(names),
        bytes=export.bytes,
        file_type=export.file_type,
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
        metadata={
            "aims360/source": view.source,
            "aims360/view": view.view_name,
            # The view's own columns join these in each materialization's schema.
            COLUMN_SCHEMA: declared_schema({}, VIEW_FIXED_COLUMN_DESCRIPTIONS),
        },
    )
    def _view_asset(context: dg.AssetExecutionContext, config: Aims360ExportConfig, aims360: Aims360Resource):
        # Outages (429/502/503/504, timeouts, resets, truncated bodies after the client's
        # attempts, failed or stalled jobs) reach the step retry policy; refused credentials
        # or scopes, other 4xx/5xx answers, error envelopes, untrusted publishlink hosts and
        # bad settings fail at once: a retry would only be refused again.
        with permanent_errors_fail_fast():
            output, raw = export_view(context, config, aims360, view, settings)
        yield output
        yield quarantine_check_result(key, raw)

    return _view_asset
