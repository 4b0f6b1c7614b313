"""Run retries (the root dagster.yaml's ``run_retries``) take runs whose worker died, never runs
a blocking data check failed. Runs go through the production launcher into real worker
processes; the retry decision is Dagster's daemon's own (``should_retry``), with the
production settings."""

import logging
import os
import signal

import dagster as dg
import pytest
import yaml
from dagster._core.storage.tags import RUN_FAILURE_REASON_TAG, WILL_RETRY_TAG
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from tests.reliability.supervision import ROOT, launch, messages, run_record, status, wait_until, write_instance_yaml
from timesheet_assets.runs.launcher import WORKER_TAG
from timesheet_assets.runs.processes import WorkerProcess

LOGGER = logging.getLogger("tests.run_retries")
PRODUCTION = yaml.safe_load((ROOT / "dagster.yaml").read_text())


def test_production_retries_dead_workers_twice_and_never_step_failures():
    assert PRODUCTION["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}


@pytest.fixture
def instance(tmp_path, monkeypatch):
    # The worker process builds the code location from its environment, as the parent did:
    # both must see one warehouse, and none in the working directory.
    monkeypatch.setenv("TIMESHEET_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    extra = yaml.safe_dump({"run_retries": PRODUCTION["run_retries"], "run_monitoring": {"enabled": True}})
    home = write_instance_yaml(tmp_path / "home", extra=extra)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        yield instance


def test_a_run_whose_worker_died_is_retried(instance):
    run = launch(instance, "hang")
    wait_until(lambda: any("will not finish" in m for m in messages(instance, run.run_id)), "the step to start")
    worker = WorkerProcess.from_tag(instance.get_run_by_id(run.run_id).tags[WORKER_TAG])
    os.kill(worker.pid, signal.SIGKILL)
    wait_until(lambda: not worker.is_alive(), "the worker to die")
    monitor_started_run(instance, None, run_record(instance, run.run_id), LOGGER)

    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    assert should_retry(failed, instance)
    assert instance.get_run_by_id(run.run_id).tags[WILL_RETRY_TAG] == "true"


def test_a_run_a_blocking_check_failed_is_not_retried(instance):
    run = launch(instance, "checked_probe_job")
    wait_until(lambda: status(instance, run.run_id).value in ("FAILURE", "SUCCESS", "CANCELED"), "the run to end")

    failed = instance.get_run_by_id(run.run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    checks = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    assert [c.dagster_event.event_specific_data.passed for c in checks] == [False]
    assert failed.tags[RUN_FAILURE_REASON_TAG] == "STEP_FAILURE"
    assert not should_retry(failed, instance)
    assert any(
        "Not retrying run since it failed due to an asset or op failure" in m for m in messages(instance, run.run_id)
    )
