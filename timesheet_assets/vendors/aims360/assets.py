"""AIMS360 Aqua views as sensor-driven raw assets (gathered with the sensor and the resource in
``definitions.py``).

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

The parts live in their own modules: ``settings`` (environment), ``frames`` (typing an
export), ``view_asset`` (the asset and its export flow), ``sensor`` (the state machine).
Their public names are importable from here too.
"""

from .frames import column_names, infer_kind, view_frame
from .sensor import (
    CURSOR_VERSION,
    Aims360ExportFailed,
    TickOutcome,
    ViewState,
    ViewTracker,
    build_export_sensor,
    dump_cursor,
    failure_report,
    load_cursor,
)
from .settings import Aims360Settings, resource_from_env
from .view_asset import (
    GROUP,
    SENSOR_NAME,
    Aims360ExportConfig,
    build_view_asset,
    export_view,
    op_name,
    view_asset_key,
)

__all__ = [
    "Aims360ExportConfig",
    "Aims360ExportFailed",
    "Aims360Settings",
    "CURSOR_VERSION",
    "GROUP",
    "SENSOR_NAME",
    "TickOutcome",
    "ViewState",
    "ViewTracker",
    "build_export_sensor",
    "build_view_asset",
    "column_names",
    "dump_cursor",
    "export_view",
    "failure_report",
    "infer_kind",
    "load_cursor",
    "op_name",
    "resource_from_env",
    "view_asset_key",
    "view_frame",
]
