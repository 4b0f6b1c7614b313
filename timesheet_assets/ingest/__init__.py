"""What every raw asset shares: partitions, payload-keeping validation with quarantine,
materialization metadata and run policies."""

from .conventions import raw_asset_defaults
from .failures import permanent_errors_fail_fast
from .metadata import (
    QUARANTINE_CHECK,
    frame_preview,
    quarantine_check_result,
    quarantine_check_spec,
    raw_output,
)
from .partitions import DATE_WINDOW_BACKFILL, daily_partitions, partition_window
from .policies import HTTP_RETRY_POLICY
from .records import FastPath, RawFrame, RawSpec, build_raw_frame, cyclic_gc_paused, quarantine_reason

__all__ = [
    "QUARANTINE_CHECK",
    "quarantine_check_result",
    "quarantine_check_spec",
    "DATE_WINDOW_BACKFILL",
    "HTTP_RETRY_POLICY",
    "FastPath",
    "RawFrame",
    "RawSpec",
    "build_raw_frame",
    "cyclic_gc_paused",
    "daily_partitions",
    "frame_preview",
    "partition_window",
    "permanent_errors_fail_fast",
    "quarantine_reason",
    "raw_asset_defaults",
    "raw_output",
]
