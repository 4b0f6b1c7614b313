"""Following a run from the terminal: one line per step as it starts and ends, and a line
while a long step is still working, so a run is never silent for long."""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg
from dagster import DagsterEventType as E

FOLLOWED = {
    E.RUN_START,
    E.RUN_SUCCESS,
    E.RUN_FAILURE,
    E.RUN_CANCELED,
    E.STEP_START,
    E.STEP_SUCCESS,
    E.STEP_FAILURE,
    E.STEP_UP_FOR_RETRY,
    E.ASSET_MATERIALIZATION,
}
STILL_RUNNING_EVERY = 15.0


def step_label(step_key: str) -> str:
    """An asset step's key is its asset key joined by ``__``: show it as the asset key."""
    return step_key.replace("__", "/")


def _headline(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data if event.is_step_failure else None
    if data is not None and data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description.split("\n", 1)[0]
    error = getattr(event.event_specific_data, "error", None)
    while error is not None and error.cause is not None and error.message.startswith("Exceeded max_retries"):
        error = error.cause
    return error.message.split("\n", 1)[0] if error is not None else (event.message or "")


class RunFollower:
    def __init__(
        self,
        instance: dg.DagsterInstance,
        run_id: str,
        write: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.instance = instance
        self.run_id = run_id
        self.write = write
        self.clock = clock
        self.started = clock()
        self.cursor: str | None = None
        self.running: dict[str, float] = {}  # step key -> when it started
        self.partitions: dict[str, int] = {}  # step key -> partitions written
        self.requests: dict[str, object] = {}
        self.last_line = self.started

    def _say(self, text: str) -> None:
        self.write(f"[{self.clock() - self.started:5.0f} s] {text}")
        self.last_line = self.clock()

    def _handle(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        step = event.step_key
        kind = event.event_type
        if kind == E.STEP_START and step:
            self.running[step] = self.clock()
            self._say(f"  started  {step_label(step)}")
        elif kind == E.ASSET_MATERIALIZATION and step:
            self.partitions[step] = self.partitions.get(step, 0) + 1
            metadata = entry.asset_materialization.metadata if entry.asset_materialization else {}
            if "requests" in metadata and step not in self.requests:
                self.requests[step] = getattr(metadata["requests"], "value", metadata["requests"])
        elif kind == E.STEP_SUCCESS and step:
            seconds = self.clock() - self.running.pop(step, self.clock())
            details = []
            if self.partitions.get(step, 0) > 1:
                details.append(f"{self.partitions[step]} days written")
            if step in self.requests:
                details.append(f"{self.requests[step]} requests")
            self._say(
                f"  done     {step_label(step)} in {seconds:.1f} s" + (f" ({', '.join(details)})" if details else "")
            )
        elif kind == E.STEP_UP_FOR_RETRY and step:
            data = event.event_specific_data
            wait = getattr(data, "seconds_to_wait", None)
            self.running.pop(step, None)
            self._say(
                f"  retry    {step_label(step)}" + (f" in {wait:.0f} s" if wait else "") + f": {_headline(event)}"
            )
        elif kind == E.STEP_FAILURE and step:
            self.running.pop(step, None)
            self._say(f"  FAILED   {step_label(step)}: {_headline(event)}")

    def poll(self) -> dg.DagsterRun | None:
        """Print what happened since the last poll; the run as it is now."""
        run = self.instance.get_run_by_id(self.run_id)
        while True:
            connection = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, of_type=FOLLOWED)
            for record in connection.records:
                self._handle(record.event_log_entry)
            self.cursor = connection.cursor
            if not connection.has_more:
                break
        if self.running and self.clock() - self.last_line >= STILL_RUNNING_EVERY:
            names = ", ".join(f"{step_label(s)} ({self.clock() - t:.0f} s)" for s, t in self.running.items())
            self._say(f"  working  {names}")
        return run

    def follow(self, poll_seconds: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> dg.DagsterRun:
        """Poll until the run has finished and every event of it was printed."""
        while True:
            run = self.poll()
            if run is not None and run.is_finished:
                return self.poll() or run
            sleep(poll_seconds)
