"""Run supervision: steps stop when their run is over (``status``), and a launcher whose run
workers run monitoring can check (``launcher``)."""

from .status import (
    RUN_STATUS_CHECK_SECONDS,
    RunNoLongerInProgress,
    RunStatusGuard,
    ensure_run_in_progress,
    guard_for,
    refuse_write_unless_run_in_progress,
)

__all__ = [
    "RUN_STATUS_CHECK_SECONDS",
    "RunNoLongerInProgress",
    "RunStatusGuard",
    "ensure_run_in_progress",
    "guard_for",
    "refuse_write_unless_run_in_progress",
]
