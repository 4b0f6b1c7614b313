"""No run holds a pool slot forever.

Runs are launched by the production launcher into worker processes of their own, on a real
(SQLite) instance with a limit-1 pool, and Dagster's own run monitoring functions judge them
(``monitor_started_run``, ``execute_concurrency_slots_iteration``: what ``dagster-daemon``
runs every ``poll_interval_seconds``):

* a worker killed with its code server nowhere (these runs have none) is failed at the first
  monitoring pass, and its pool slot freed after ``free_slots_after_run_end_seconds``, so the
  next run's step takes it;
* a worker alive but stuck past ``dagster/max_runtime`` is failed, and killed after the
  launcher's grace period.
"""

import logging
import os
import signal
from types import SimpleNamespace

import dagster as dg
import pytest
from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from tests.reliability.supervision import launch, messages, run_record, status, wait_until, write_instance_yaml
from timesheet_assets.runs.launcher import WORKER_TAG
from timesheet_assets.runs.processes import WorkerProcess

LOGGER = logging.getLogger("tests.run_supervision")
POOL = "probe"
FREE_SLOTS_AFTER = 1
MONITORING = f"""
concurrency:
  pools:
    default_limit: 1
    granularity: op
run_monitoring:
  enabled: true
  poll_interval_seconds: 1
  free_slots_after_run_end_seconds: {FREE_SLOTS_AFTER}
"""


@pytest.fixture
def instance(tmp_path, monkeypatch):
    # The worker process builds the code location from its environment, as the parent did:
    # both must see one warehouse, and none in the working directory.
    monkeypatch.setenv("TIMESHEET_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    home = write_instance_yaml(tmp_path / "home", grace=2, extra=MONITORING)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.upgrade()
        instance.event_log_storage.initialize_concurrency_limit_to_default(POOL)
        yield instance


def hanging_run(instance, tags=None) -> tuple[dg.DagsterRun, WorkerProcess]:
    run = launch(instance, "hang", tags=tags)
    wait_until(lambda: any("will not finish" in m for m in messages(instance, run.run_id)), "the step to start")
    worker = WorkerProcess.from_tag(instance.get_run_by_id(run.run_id).tags[WORKER_TAG])
    return run, worker


def slot_holders(instance) -> set[str]:
    return instance.event_log_storage.get_concurrency_info(POOL).active_run_ids


def monitor(instance, run_id: str) -> None:
    monitor_started_run(instance, None, run_record(instance, run_id), LOGGER)


def test_a_run_whose_worker_died_is_failed_at_the_first_check_and_its_slot_freed(instance):
    run, worker = hanging_run(instance)
    assert slot_holders(instance) == {run.run_id}
    monitor(instance, run.run_id)
    assert status(instance, run.run_id) == dg.DagsterRunStatus.STARTED  # alive: left alone

    os.kill(worker.pid, signal.SIGKILL)
    wait_until(lambda: not worker.is_alive(), "the worker to die")
    assert status(instance, run.run_id) == dg.DagsterRunStatus.STARTED  # nobody said anything yet
    monitor(instance, run.run_id)
    assert status(instance, run.run_id) == dg.DagsterRunStatus.FAILURE
    assert any(f"run worker process {worker.pid}" in m and "is gone" in m for m in messages(instance, run.run_id)), (
        messages(instance, run.run_id)
    )

    # The slot stays with the dead run for free_slots_after_run_end_seconds, then is freed.
    assert slot_holders(instance) == {run.run_id}
    context = SimpleNamespace(instance=instance)

    def freed() -> bool:
        list(execute_concurrency_slots_iteration(context, LOGGER))
        return run.run_id not in slot_holders(instance)

    wait_until(freed, "the dead run's slot to be freed", timeout=60, interval=0.5)

    # The next run of the pool gets the slot and runs.
    second, second_worker = hanging_run(instance)
    assert slot_holders(instance) == {second.run_id}
    assert instance.run_launcher.terminate(second.run_id)
    wait_until(lambda: status(instance, second.run_id) == dg.DagsterRunStatus.CANCELED, "the cancel")
    wait_until(lambda: not second_worker.leftover_processes(), "the canceled worker to exit")


def test_a_stuck_run_past_its_max_runtime_is_failed_and_its_worker_killed(instance):
    run, worker = hanging_run(instance, tags={"dagster/max_runtime": "1"})
    wait_until(lambda: run_record(instance, run.run_id).start_time is not None, "the run to record its start")
    wait_until(
        lambda: monitor(instance, run.run_id) or status(instance, run.run_id).value != "STARTED",
        "run monitoring to act on the max runtime",
        interval=0.5,
    )
    assert status(instance, run.run_id) == dg.DagsterRunStatus.FAILURE
    assert any("Exceeded maximum runtime of 1 seconds" in m for m in messages(instance, run.run_id))
    # The step calls no vendor, so nothing in it notices: the worker is killed after the grace.
    wait_until(lambda: not worker.is_alive() and not worker.leftover_processes(), "the worker to be killed", timeout=60)
    # The launcher kills first and says so after: wait for its word rather than race it.
    wait_until(
        lambda: any("did not stop within 2 s of the termination request" in m for m in messages(instance, run.run_id)),
        "the launcher to report the kill",
        timeout=60,
    )
    wait_until(
        lambda: (
            list(execute_concurrency_slots_iteration(SimpleNamespace(instance=instance), LOGGER)) is not None
            and run.run_id not in slot_holders(instance)
        ),
        "the slot to be freed",
        timeout=60,
        interval=0.5,
    )
