"""What the production launcher tells run monitoring about a run's worker, from the run's tags
and ``/proc``: alive, gone, a recycled pid, another host, no worker recorded, and a code
server that must answer before a run with a dead worker is failed."""

import json
import os
import socket
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus

from tests.reliability.supervision import wait_until
from timesheet_assets.runs.launcher import CODE_SERVER_TAG, WORKER_TAG, LocalProcessRunLauncher
from timesheet_assets.runs.processes import WorkerProcess, boot_id, process_start_ticks


def run_with(**tags) -> dg.DagsterRun:
    return dg.DagsterRun(job_name="refresh_blikk", run_id="r1", tags=tags)


@pytest.fixture
def dead_worker() -> WorkerProcess:
    process = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    worker = WorkerProcess.of(process.pid)
    process.wait()
    assert not worker.is_alive()
    return worker


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_live_worker_is_running():
    launcher = LocalProcessRunLauncher()
    result = launcher.check_run_worker_health(run_with(**{WORKER_TAG: WorkerProcess.of(os.getpid()).to_tag()}))
    assert result.status == WorkerStatus.RUNNING


def test_a_gone_worker_has_failed(dead_worker):
    result = LocalProcessRunLauncher().check_run_worker_health(run_with(**{WORKER_TAG: dead_worker.to_tag()}))
    assert result.status == WorkerStatus.FAILED
    assert f"run worker process {dead_worker.pid}" in result.msg and "is gone" in result.msg


def test_a_recycled_pid_is_not_the_worker():
    # This very process, but started at another time: the worker that had this pid is gone.
    impostor = WorkerProcess(socket.gethostname(), boot_id(), os.getpid(), process_start_ticks(os.getpid()) - 1)
    assert not impostor.is_alive()
    assert impostor.leftover_processes() == []  # its group is someone else's: never killed
    result = LocalProcessRunLauncher().check_run_worker_health(run_with(**{WORKER_TAG: impostor.to_tag()}))
    assert result.status == WorkerStatus.FAILED


def test_a_worker_from_before_a_restart_is_gone():
    old_boot = WorkerProcess(socket.gethostname(), "another-boot", os.getpid(), process_start_ticks(os.getpid()))
    assert not old_boot.is_alive()


def test_what_cannot_be_seen_is_left_to_the_max_runtime(dead_worker):
    launcher = LocalProcessRunLauncher()
    elsewhere = WorkerProcess("another-host", dead_worker.boot, dead_worker.pid, dead_worker.start_ticks)
    assert launcher.check_run_worker_health(run_with(**{WORKER_TAG: elsewhere.to_tag()})).status == WorkerStatus.RUNNING
    assert launcher.check_run_worker_health(run_with()).status == WorkerStatus.RUNNING


def test_a_dead_worker_waits_for_its_code_server_before_failing(dead_worker):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here yet
    clock = Clock()
    launcher = LocalProcessRunLauncher(code_server_wait_seconds=300, monotonic=clock)
    run = run_with(
        **{WORKER_TAG: dead_worker.to_tag(), CODE_SERVER_TAG: json.dumps({"host": "127.0.0.1", "port": port})}
    )

    waiting = launcher.check_run_worker_health(run)
    assert waiting.status == WorkerStatus.RUNNING and "code server does not answer" in waiting.msg
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED


def test_a_code_server_that_never_comes_back_only_delays_the_failure(dead_worker):
    clock = Clock()
    launcher = LocalProcessRunLauncher(code_server_wait_seconds=300, monotonic=clock)
    run = run_with(**{WORKER_TAG: dead_worker.to_tag(), CODE_SERVER_TAG: json.dumps({"host": "127.0.0.1", "port": 9})})
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    clock.now = 299.0
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    clock.now = 300.0
    assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED


def test_step_processes_a_dead_worker_left_are_killed_when_it_is_reported():
    # A "worker" that starts a child in its group and dies, leaving the child behind.
    script = "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); print(p.pid, flush=True)"
    worker_process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    worker = WorkerProcess.of(worker_process.pid)
    child = int(worker_process.stdout.readline())
    worker_process.wait()
    child_ticks = process_start_ticks(child)
    assert child_ticks is not None and worker.leftover_processes() == [child]

    result = LocalProcessRunLauncher().check_run_worker_health(run_with(**{WORKER_TAG: worker.to_tag()}))
    assert result.status == WorkerStatus.FAILED
    assert f"killed 1 step process(es) it left behind: [{child}]" in result.msg
    left = WorkerProcess(worker.host, worker.boot, child, child_ticks)
    wait_until(lambda: not left.is_alive(), "the left-behind step process to die", timeout=30)
