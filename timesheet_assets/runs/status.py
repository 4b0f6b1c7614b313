"""A step stops when its run is over.

A run can end while one of its steps still runs: its worker was killed and run monitoring
failed it while a step process it started lives on, an operator canceled it, it passed its
maximum runtime. Dagster then starts the next run of the vendor's pool, and a step still
calling the vendor would be a second call stream beside it (and its write could land after
the run was failed). So a vendor resource asks the instance for the run's status between
requests (``RunStatusGuard``, at most every few seconds) and the warehouse asks once more
before it commits a write (``refuse_write_unless_run_in_progress``); both fail the step
without step retries once the run is canceling, canceled, failed or finished.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import dagster as dg

RUN_STATUS_CHECK_SECONDS = "TIMESHEET_RUN_STATUS_CHECK_SECONDS"
DEFAULT_CHECK_SECONDS = 5.0
# A step stops once its run is one of these. Anything else (starting, started, and the statuses
# a step should never see) lets it go on: the check must never stop a healthy run.
OVER = frozenset(
    {
        dg.DagsterRunStatus.CANCELING,
        dg.DagsterRunStatus.CANCELED,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.SUCCESS,
    }
)

LOGGER = logging.getLogger("timesheet_assets.runs")


class RunNoLongerInProgress(dg.Failure):
    """The step's run was failed, canceled or finished: the step stops here. Step retry policies
    do not apply (there is no run left to retry in)."""

    def __init__(self, run_id: str, status: dg.DagsterRunStatus, doing: str):
        super().__init__(
            description=f"run {run_id} is {status.value}, no longer in progress: {doing} refused",
            metadata={"run_status": status.value},
            allow_retries=False,
        )
        self.run_id = run_id
        self.status = status


def check_interval_seconds(environ: dict[str, str] | None = None) -> float:
    """``TIMESHEET_RUN_STATUS_CHECK_SECONDS`` (default 5): the longest a step keeps calling a
    vendor after its run ended, and how often each running step reads its run's status."""
    raw = (os.environ if environ is None else environ).get(RUN_STATUS_CHECK_SECONDS, "").strip()
    if not raw:
        return DEFAULT_CHECK_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        from ..settings import SettingError

        raise SettingError(f"{RUN_STATUS_CHECK_SECONDS} must be a number of seconds above 0, got {raw!r}")
    return value


def current_status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus | None:
    run = instance.get_run_by_id(run_id)
    return run.status if run is not None else None


def ensure_run_in_progress(instance: dg.DagsterInstance, run_id: str, doing: str) -> None:
    """Raise ``RunNoLongerInProgress`` once the run is over (``OVER``)."""
    status = current_status(instance, run_id)
    if status in OVER:
        raise RunNoLongerInProgress(run_id, status, doing)


class RunStatusGuard:
    """Reads the run's status at most every ``interval_seconds`` and raises once it is over
    (and on every call after). Thread-safe: a vendor's parallel requests share one guard.

    A failed status read (the instance database briefly unreachable) lets the step go on: the
    guard protects against steps outliving runs, it must not itself fail healthy runs."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        *,
        interval_seconds: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        doing: str = "vendor request",
    ):
        self.instance = instance
        self.run_id = run_id
        self.interval = check_interval_seconds() if interval_seconds is None else interval_seconds
        self.doing = doing
        self._monotonic = monotonic
        self._next_check = float("-inf")
        self._ended_as: dg.DagsterRunStatus | None = None
        self._lock = threading.Lock()
        self.reads = 0

    def __call__(self) -> None:
        self.check()

    def check(self) -> None:
        with self._lock:
            if self._ended_as is None and self._monotonic() >= self._next_check:
                self._next_check = self._monotonic() + self.interval
                self.reads += 1
                try:
                    status = current_status(self.instance, self.run_id)
                except Exception as exc:  # noqa: BLE001 - see the class docstring
                    LOGGER.warning("could not read the status of run %s: %s", self.run_id, exc)
                    status = None
                if status in OVER:
                    self._ended_as = status
            ended_as = self._ended_as
        if ended_as is not None:
            raise RunNoLongerInProgress(self.run_id, ended_as, self.doing)


def guard_for(context: Any, doing: str = "vendor request") -> RunStatusGuard | None:
    """The guard for a resource initialised inside a run (``InitResourceContext``); ``None``
    outside one (a sensor, a script)."""
    instance = getattr(context, "instance", None)
    run_id = getattr(context, "run_id", None)
    if instance is None or not run_id:
        return None
    return RunStatusGuard(instance, run_id, doing=doing)


def refuse_write_unless_run_in_progress(context: dg.OutputContext) -> None:
    """Called by the warehouse at its commit point: a write of a run that is no longer in
    progress is rolled back. Outside a run (an output context built in a test) there is no
    run to ask about."""
    step_context = getattr(context, "_step_context", None)
    if step_context is None:
        return
    ensure_run_in_progress(
        step_context.instance,
        context.run_id,
        f"write of {context.asset_key.to_user_string()}" if context.has_asset_key else "warehouse write",
    )
