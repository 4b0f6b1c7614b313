"""Run a vendor's refresh the way a deployment does, and time where the seconds go.

What the user waits for is the time from "launch" to "the conformed table holds the new data".
This module reproduces that path: a Dagster instance of its own (SQLite, pools as in
production), the code location loaded by a code server from ``workspace.yaml`` (as
``dagster dev`` and the webserver do: a ``dagster api grpc`` process), and the run launched
through the GraphQL ``launchPipelineExecution`` mutation the UI sends — the instance's run
launcher then has the code server spawn a run worker process that loads the code location
and executes the job (in-process executor: raw and conformed steps in that one process).

The clock starts when the mutation is sent (the click), with the code server already up, as
it is when a user clicks in a running UI or the daemon fires a schedule. The sandbox serving
the vendor runs in this process; its arrival stamps (``time.monotonic()``, one clock for all
processes on the machine) give the first request, the request count and the rate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = REPO_ROOT / "workspace.yaml"
LOCATION = "timesheet_assets"

# Instances the refresh is timed on. ``production``: the repository's ``dagster.yaml``
# (Postgres storage, pools, run monitoring) with one change: runs launch as soon as they are
# submitted, where production queues them for the daemon (its dequeue interval, 5 s by
# default, is a setting of the deployment and is reported apart). ``dev``: the SQLite
# instance ``make dev`` and the demo use.
DEV_INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""


def instance_yaml(kind: str) -> str:
    import yaml

    if kind == "dev":
        return DEV_INSTANCE_YAML
    if kind != "production":
        raise ValueError(f"unknown instance kind {kind!r}")
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    config["run_coordinator"] = {"module": "dagster.core.run_coordinator", "class": "DefaultRunCoordinator"}
    return yaml.safe_dump(config, sort_keys=False)


LAUNCH_MUTATION = """
mutation($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


@dataclass
class RunTiming:
    """Seconds from the launch click (``launched_at``, monotonic) to each milestone."""

    run_id: str
    status: str
    launched_at: float
    milestones: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)  # step key -> seconds it ran
    failure: str | None = None

    @property
    def wall_s(self) -> float:
        return self.milestones.get("run_finished", float("nan"))


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def prepare_home(workdir: Path, kind: str = "dev") -> Path:
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml(kind))
    return home


class CodeLocation:
    """The instance and a code server for ``workspace.yaml``, up before any clock starts."""

    def __init__(self, workdir: Path, env: Mapping[str, str], instance: str = "dev") -> None:
        """``env``: the vendor's variables (and for the production instance the
        ``DAGSTER_PG_*`` ones of a Postgres server)."""
        self.workdir = workdir
        self.env = {
            "DAGSTER_HOME": str(prepare_home(workdir, instance)),
            "TIMESHEET_WAREHOUSE": str(workdir / "warehouse.duckdb"),
            **env,
        }
        self._stack: list[Any] = []

    def __enter__(self) -> CodeLocation:
        import dagster as dg
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import WorkspaceFileTarget

        env_cm = patched_environ(self.env)
        env_cm.__enter__()
        self._stack.append(env_cm)
        started = time.monotonic()
        self.instance = dg.DagsterInstance.get()
        self._stack.append(self.instance)
        self.process_context = WorkspaceProcessContext(
            self.instance, WorkspaceFileTarget(paths=[str(WORKSPACE)]), code_server_log_level="WARNING"
        )
        self._stack.append(self.process_context)
        self.context = self.process_context.create_request_context()
        errors = self.context.code_location_errors()
        if errors:
            raise RuntimeError(f"code location failed to load: {errors[0].to_string()}")
        self.code_server_load_s = time.monotonic() - started
        return self

    def __exit__(self, *exc: object) -> None:
        while self._stack:
            item = self._stack.pop()
            if hasattr(item, "dispose"):
                item.dispose()
            else:
                item.__exit__(None, None, None)

    def launch(self, job_name: str, tags: Mapping[str, str]) -> tuple[str, float]:
        """Send the UI's launch mutation; return the run id and the click time (monotonic)."""
        from dagster_graphql.test.utils import execute_dagster_graphql

        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": "__repository__",
                "jobName": job_name,
            },
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        context = self.process_context.create_request_context()
        clicked = time.monotonic()
        result = execute_dagster_graphql(context, LAUNCH_MUTATION, {"executionParams": params})
        answer = result.data["launchPipelineExecution"]
        if answer["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launch refused: {answer}")
        return answer["run"]["runId"], clicked

    def wait(self, run_id: str, clicked: float, timeout_s: float = 3600.0, poll_s: float = 0.05) -> RunTiming:
        from dagster import DagsterRunStatus

        deadline = time.monotonic() + timeout_s
        terminal = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
        while True:
            run = self.instance.get_run_by_id(run_id)
            if run is not None and run.status in terminal:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} did not finish in {timeout_s:.0f} s")
            time.sleep(poll_s)
        return run_timing(self.instance, run_id, clicked, run.status.value)


def run_timing(instance: Any, run_id: str, clicked: float, status: str) -> RunTiming:
    """Milestones from the run's event log (wall-clock stamps turned into the monotonic clock)."""
    from dagster import DagsterEventType

    offset = time.time() - time.monotonic()
    timing = RunTiming(run_id=run_id, status=status, launched_at=clicked)
    step_started: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        at = record.timestamp - offset - clicked
        if event is None:
            continue
        kind = event.event_type
        if kind == DagsterEventType.RUN_STARTING:
            timing.milestones.setdefault("run_starting", at)
        elif kind == DagsterEventType.ENGINE_EVENT and "Started process for run" in (record.user_message or ""):
            timing.milestones.setdefault("worker_started", at)
        elif kind == DagsterEventType.RUN_START:
            timing.milestones.setdefault("run_start", at)
        elif kind == DagsterEventType.STEP_START and event.step_key:
            step_started[event.step_key] = at
            timing.milestones.setdefault("first_step_start", at)
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE) and event.step_key:
            timing.steps[event.step_key] = at - step_started.get(event.step_key, at)
            timing.milestones[f"step_end:{event.step_key}"] = at
            if kind == DagsterEventType.STEP_FAILURE and timing.failure is None:
                error = getattr(event.event_specific_data, "error", None)
                timing.failure = error.to_string() if error is not None else "step failed"
        elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED):
            timing.milestones["run_finished"] = at
            if kind == DagsterEventType.RUN_FAILURE and timing.failure is None:
                timing.failure = record.user_message
    return timing


def refresh_tags(vendor: str, first: date, last: date, kind: str = "daily") -> dict[str, str]:
    """The tags the refresh schedules put on a vendor's run (partition range included)."""
    from timesheet_assets.schedules import REFRESH_TAG, VENDOR_TAG, range_tags

    return {REFRESH_TAG: kind, VENDOR_TAG: vendor, **range_tags(first, last)}
