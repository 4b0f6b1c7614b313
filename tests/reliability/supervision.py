"""Runs as a deployment launches them, for the run supervision tests: an instance with the
production run launcher (``LocalProcessRunLauncher``), runs of ``probe_location``'s jobs
launched into worker processes of their own, and waits on conditions with deadlines."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

ROOT = Path(__file__).resolve().parents[2]
LOCATION_MODULE = "tests.reliability.probe_location"
LOGGER = logging.getLogger("tests.supervision")

LAUNCHER_YAML = """
run_launcher:
  module: timesheet_assets.runs.launcher
  class: LocalProcessRunLauncher
  config:
    terminate_grace_seconds: {grace}
"""


def write_instance_yaml(home: Path, *, grace: int = 5, extra: str = "") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + LAUNCHER_YAML.format(grace=grace) + extra)
    return home


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 180.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after
    ``timeout`` seconds (generous: a busy machine starts a run worker in 5-20 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def launch(
    instance: dg.DagsterInstance,
    job_name: str,
    *,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> dg.DagsterRun:
    """Create a run of ``job_name`` from the probe location and hand it to the instance's run
    launcher, as the run queue does."""
    # Built afresh in the environment the run is launched with, as its worker will build it:
    # a copy imported by an earlier test (say with TIMESHEET_WAREHOUSE set, which makes the
    # IO manager read that variable) would hand the worker a configuration its environment
    # cannot satisfy.
    sys.modules.pop(LOCATION_MODULE, None)
    repository = ReconstructableRepository.for_module(LOCATION_MODULE, "defs", working_directory=str(ROOT))
    job = repository.get_reconstructable_job(job_name)
    run = instance.create_run_for_job(
        job_def=job.get_definition(),
        job_code_origin=job.get_python_origin(),
        tags=dict(tags or {}),
        run_config=dict(run_config or {}),
    )
    instance.launch_run(run.run_id, workspace=None)  # the launcher needs no workspace
    return run


def status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Every message of the run's event log as the UI shows it."""
    texts = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        texts.append(" ".join(t for t in (record.user_message, event.message if event else None) if t))
    return texts


def step_failures(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    texts = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        error = record.dagster_event.step_failure_data.error
        texts.append(error.to_string() if error else record.user_message)
    return texts


def run_record(instance: dg.DagsterInstance, run_id: str):
    return instance.get_run_record_by_id(run_id)
