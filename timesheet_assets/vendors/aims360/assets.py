"""AIMS360 Aqua views as sensor-driven raw assets (gathered with the sensor and the resource in
``definitions.py``).

One asset per configured view (``AIMS360_VIEWS``), ``raw/aims360/<source>_<view name>``.
The sensor ``aims360_export_sensor`` owns the asynchronous part (export jobs created, polled,
rerun; its state machine is described in ``sensor``) and asks for one run of the view's asset
per completed job. The asset then only downloads and parses the output. Materialized by hand
(no run config) the asset does the whole flow itself: rerun the job of its last
materialization (or create one), poll with a timeout, download.

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
