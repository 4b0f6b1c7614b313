"""The production deployment as separate processes, as an operator runs it: a code server, the
webserver and ``dagster-daemon``, each in its own process group, on the instance in
``DAGSTER_HOME`` (a copy of the root dagster.yaml, pointed at a PostgreSQL server)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = "timesheet_assets"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what: str, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 - not up yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Service:
    name: str
    command: list[str]
    log: Path
    env: Mapping[str, str]
    process: subprocess.Popen | None = None

    def start(self) -> Service:
        handle = open(self.log, "ab")  # noqa: SIM115 - the service writes to it until stopped
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=dict(self.env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        return self

    def kill(self) -> None:
        """SIGKILL the service and every process it started: a machine losing it."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            if self.process is not None:
                _signal_group(self.process.pid, signal.SIGKILL)  # children it left
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Deployment:
    home: Path
    env: dict[str, str]
    code_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def workspace(self) -> Path:
        return self.home / "workspace.yaml"

    def prepare(self) -> None:
        """The instance as deployed: the root dagster.yaml unchanged, a workspace naming the
        code server."""
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "dagster.yaml", self.home / "dagster.yaml")
        self.workspace.write_text(
            "load_from:\n  - grpc_server:\n"
            f"      host: 127.0.0.1\n      port: {self.code_port}\n      location_name: {LOCATION}\n"
        )

    def start_code_server(self) -> Service:
        service = Service(
            "code-server",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-m",
                "timesheet_assets.definitions",
                "-a",
                "defs",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.code_port),
                "--location-name",
                LOCATION,
            ],
            self.home / "code-server.log",
            self.env,
        ).start()
        self.services["code-server"] = service
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=self.code_port, host="127.0.0.1")
        wait_for(lambda: client.ping("up") is not None, "the code server", timeout=300)
        return service

    def start_webserver(self) -> Service:
        service = Service(
            "webserver",
            [str(BIN / "dagster-webserver"), "-w", str(self.workspace), "-h", "127.0.0.1", "-p", str(self.web_port)],
            self.home / "webserver.log",
            self.env,
        ).start()
        self.services["webserver"] = service
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{self.web_port}/server_info", timeout=5).status_code == 200,
            "the webserver",
            timeout=300,
        )
        return service

    def start_daemon(self) -> Service:
        service = Service(
            "daemon",
            [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)],
            self.home / "daemon.log",
            self.env,
        ).start()
        self.services["daemon"] = service
        return service

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(
            f"http://127.0.0.1:{self.web_port}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=120,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]

    def start_schedule(self, name: str) -> str:
        """Turn the schedule on, as the UI's toggle does; returns its state id."""
        data = self.graphql(
            """mutation($selector: ScheduleSelector!) {
                 startSchedule(scheduleSelector: $selector) {
                   __typename
                   ... on ScheduleStateResult { scheduleState { id status } }
                   ... on PythonError { message }
                 }
               }""",
            {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                    "scheduleName": name,
                }
            },
        )
        result = data["startSchedule"]
        if result["__typename"] != "ScheduleStateResult":
            raise RuntimeError(f"could not start {name}: {result}")
        return result["scheduleState"]["id"]

    def stop_schedule(self, state_id: str) -> None:
        data = self.graphql(
            """mutation($id: String!) {
                 stopRunningSchedule(id: $id) {
                   __typename
                   ... on ScheduleStateResult { scheduleState { status } }
                   ... on PythonError { message }
                 }
               }""",
            {"id": state_id},
        )
        result = data["stopRunningSchedule"]
        if result["__typename"] != "ScheduleStateResult" or result["scheduleState"]["status"] != "STOPPED":
            raise RuntimeError(f"could not stop the schedule: {result}")

    def submit(self, job_name: str, tags: dict[str, str]) -> str:
        from dagster_graphql import DagsterGraphQLClient

        client = DagsterGraphQLClient("127.0.0.1", port_number=self.web_port)
        return client.submit_job_execution(
            job_name, repository_location_name=LOCATION, repository_name="__repository__", tags=tags
        )

    def terminate(self, run_id: str) -> None:
        """The UI's Terminate button."""
        from dagster_graphql import DagsterGraphQLClient

        DagsterGraphQLClient("127.0.0.1", port_number=self.web_port).terminate_run(run_id)

    def stop(self) -> None:
        for name in ("daemon", "webserver", "code-server"):
            if name in self.services:
                self.services[name].stop()


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
