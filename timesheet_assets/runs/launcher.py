"""A run launcher for a single-host deployment that run monitoring can rely on.

Dagster's ``DefaultRunLauncher`` asks the code server to start each run worker as the code
server's child and cannot say whether a worker is alive (``check_run_worker_health`` is not
implemented), so a run whose worker died with its code server stays STARTED and keeps its pool
slots. This launcher starts each run worker itself, ``dagster api execute_run`` in a process
group of its own (as the Docker and Kubernetes launchers start a container), records which
process it is in a run tag, and answers run monitoring from ``/proc``:

* the worker lives on when the code server dies or restarts (it loaded the code itself);
* ``check_run_worker_health`` says FAILED as soon as the worker process is gone, so run
  monitoring fails the run within one poll; step processes the dead worker left behind in its
  group are killed at that moment;
* ``terminate`` (cancel, ``dagster/max_runtime``) marks the run CANCELING, which stops its
  steps at their next vendor request or warehouse commit, and kills the worker's group with
  whatever is left after ``terminate_grace_seconds``;
* when the code server died with the worker, failing the run waits (at most
  ``code_server_wait_seconds``) until the code server answers again: the daemon creates a
  run's retry the moment the run fails and needs the code server for it, and a retry that
  could not be created is never tried again.

The daemon, the webserver and the run workers must share one host (one process namespace),
which is what the root ``dagster.yaml`` describes; ``deploy/`` has the multi-host launchers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from dagster import Field, IntSource
from dagster import _check as check
from dagster._core.launcher.base import (
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value

from .processes import WorkerProcess

WORKER_TAG = "timesheet_assets/run_worker"
CODE_SERVER_TAG = "timesheet_assets/code_server"
DEFAULT_TERMINATE_GRACE_SECONDS = 30
DEFAULT_CODE_SERVER_WAIT_SECONDS = 300


class LocalProcessRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        terminate_grace_seconds: int = DEFAULT_TERMINATE_GRACE_SECONDS,
        code_server_wait_seconds: int = DEFAULT_CODE_SERVER_WAIT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._inst_data = inst_data
        self.terminate_grace_seconds = terminate_grace_seconds
        self.code_server_wait_seconds = code_server_wait_seconds
        self._monotonic = monotonic
        self._exit_codes: dict[str, int] = {}
        self._gone_since: dict[str, float] = {}
        self._lock = threading.Lock()
        super().__init__()

    # -- configuration ---------------------------------------------------------------------
    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "terminate_grace_seconds": Field(
                IntSource,
                is_required=False,
                default_value=DEFAULT_TERMINATE_GRACE_SECONDS,
                description="Seconds a terminated run's worker has to stop before it is killed.",
            ),
            "code_server_wait_seconds": Field(
                IntSource,
                is_required=False,
                default_value=DEFAULT_CODE_SERVER_WAIT_SECONDS,
                description="How long a run whose worker is gone stays STARTED while its code "
                "server does not answer (so that its retry can be created); then it is failed.",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    # -- launching -------------------------------------------------------------------------
    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = check.not_none(run.job_code_origin, f"run {run.run_id} has no code origin")
        args = ExecuteRunArgs(
            job_origin=origin,
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        )
        # The code location's own interpreter (the origin's; a bare "dagster" entry point need
        # not be on the daemon's PATH). The arguments go through the environment, not the
        # command line other users can read.
        command = [origin.executable_path, "-m", "dagster", "api", "execute_run"]
        env = {**os.environ, "DAGSTER_EXECUTE_RUN_ARGS": serialize_value(args)}
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        worker = WorkerProcess.of(process.pid)
        tags = {WORKER_TAG: worker.to_tag()}
        code_server = _code_server_address(context)
        if code_server:
            tags[CODE_SERVER_TAG] = json.dumps(code_server, sort_keys=True)
        try:
            self._instance.add_run_tags(run.run_id, tags)
        except BaseException:
            # A worker nobody can find must not run: the run is failed by whoever called us.
            worker.kill_group()
            raise
        threading.Thread(target=self._reap, args=(run.run_id, process), name=f"reap-{process.pid}", daemon=True).start()
        self._instance.report_engine_event(
            f"Run worker started: process {worker.pid} on {worker.host}.", run, cls=self.__class__
        )

    def _reap(self, run_id: str, process: subprocess.Popen) -> None:
        code = process.wait()
        with self._lock:
            self._exit_codes[run_id] = code

    # -- monitoring ------------------------------------------------------------------------
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        tag = run.tags.get(WORKER_TAG)
        if not tag:
            # Executed in some other process (a script's execute_in_process): nothing to look
            # at; dagster/max_runtime bounds it.
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, msg="no run worker recorded: not started by this launcher"
            )
        worker = WorkerProcess.from_tag(tag)
        if not worker.on_this_host:
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                msg=f"run worker is on {worker.host}, which this process cannot see",
            )
        if worker.is_alive():
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(worker.pid))
        killed = worker.kill_group()
        gone_since = self._gone_since.setdefault(run.run_id, self._monotonic())
        waited = self._monotonic() - gone_since
        if waited < self.code_server_wait_seconds and not _code_server_answers(run.tags.get(CODE_SERVER_TAG)):
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                msg=f"run worker process {worker.pid} is gone and its code server does not answer: "
                f"failing the run once it does (or in {self.code_server_wait_seconds - waited:.0f} s), "
                "so that its retry can be created",
                run_worker_id=str(worker.pid),
            )
        self._gone_since.pop(run.run_id, None)
        message = f"run worker process {worker.pid} on {worker.host} is gone{self._exit_text(run.run_id)}"
        if killed:
            message += f"; killed {len(killed)} step process(es) it left behind: {sorted(killed)}"
        return CheckRunHealthResult(WorkerStatus.FAILED, msg=message, run_worker_id=str(worker.pid))

    def _exit_text(self, run_id: str) -> str:
        with self._lock:
            code = self._exit_codes.get(run_id)
        if code is None:
            return ""
        return f" (killed by signal {-code})" if code < 0 else f" (exit code {code})"

    def get_run_worker_debug_info(self, run: DagsterRun, include_container_logs: bool | None = True) -> str | None:
        tag = run.tags.get(WORKER_TAG)
        if not tag:
            return None
        worker = WorkerProcess.from_tag(tag)
        state = "alive" if worker.on_this_host and worker.is_alive() else "gone"
        return f"run worker: process {worker.pid} on {worker.host}, {state}{self._exit_text(run.run_id)}"

    # -- termination -----------------------------------------------------------------------
    def terminate(self, run_id: str) -> bool:
        """Stop a run (the UI's Terminate, ``dagster/max_runtime``).

        No signal first: the run is marked CANCELING, and its steps stop at their next vendor
        request or warehouse commit (``timesheet_assets.runs.status``), after which the worker
        reports the run CANCELED itself. A SIGTERM would be worse: Dagster turns the interrupt
        of a step that has a retry policy into a step retry (the vendor steps have one), so the
        run would wait out the retry delay instead of stopping. Whatever still runs after
        ``terminate_grace_seconds`` (a step stuck outside vendor calls) is killed."""
        check.str_param(run_id, "run_id")
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        if run.status != DagsterRunStatus.CANCELING:
            self._instance.report_run_canceling(run)
        tag = run.tags.get(WORKER_TAG)
        worker = WorkerProcess.from_tag(tag) if tag else None
        if worker is None or not worker.on_this_host:
            self._instance.report_engine_event(
                "No run worker this process can reach; its steps stop at their next vendor request, "
                "and run monitoring marks the run canceled after cancel_timeout_seconds.",
                run,
                cls=self.__class__,
            )
            return False
        if not worker.is_alive() and not worker.leftover_processes():
            self._instance.report_run_canceled(run, f"Run worker process {worker.pid} was already gone.")
            return True
        self._instance.report_engine_event(
            f"Run worker process {worker.pid} asked to stop: its steps stop at their next vendor "
            f"request or warehouse write; killed in {self.terminate_grace_seconds} s if still running.",
            run,
            cls=self.__class__,
        )
        timer = threading.Timer(self.terminate_grace_seconds, self._kill_if_left, args=(run_id, worker))
        timer.daemon = True
        timer.start()
        return True

    def _kill_if_left(self, run_id: str, worker: WorkerProcess) -> None:
        killed = worker.kill_group()
        if not killed or not self.has_instance:
            return
        run = self._instance.get_run_by_id(run_id)
        if run is None:
            return
        message = (
            f"Run worker did not stop within {self.terminate_grace_seconds} s of the termination "
            f"request: killed process(es) {sorted(killed)}."
        )
        if run.status == DagsterRunStatus.CANCELING:
            # Nothing is left to report the cancellation: say it now rather than after
            # run monitoring's cancel timeout.
            self._instance.report_run_canceled(run, message)
        else:
            self._instance.report_engine_event(message, run, cls=self.__class__)


def _code_server_address(context: LaunchRunContext) -> dict[str, Any] | None:
    """Where the run's code location is served (a gRPC code server), if the launch says."""
    origin = context.dagster_run.remote_job_origin
    if context.workspace is None or origin is None:
        return None
    try:
        location = context.workspace.get_code_location(origin.location_name)
    except Exception:  # noqa: BLE001 - an unloadable location just means no address to record
        return None
    client = getattr(location, "client", None)
    if client is None:
        return None
    if client.port:
        return {"host": client.host, "port": int(client.port)}
    return {"socket": client.socket} if client.socket else None


def _code_server_answers(tag: str | None, timeout: float = 3.0) -> bool:
    """Whether the code server the run was launched from accepts connections (a code server
    listens once its code is loaded). No recorded server: nothing to wait for."""
    if not tag:
        return True
    address = json.loads(tag)
    try:
        if "socket" in address:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(timeout)
                sock.connect(address["socket"])
        else:
            with socket.create_connection((address["host"], address["port"]), timeout=timeout):
                pass
    except OSError:
        return False
    return True
