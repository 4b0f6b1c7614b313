"""A data team's day in the UI, through the webserver's GraphQL API (what the browser asks):
`make demo`, then `make dev` on the same home. The demo's run is re-executed from the UI and
succeeds; the catalog shows every partition the demo loaded as materialized; a second `dev`
on the same home refuses to start; a failed run leads with the vendor call that broke and
reaches the chat webhook through the daemon's run-failure sensor.

Blikk alone keeps it quick; `test_dev_ui.py` covers the whole code location in the UI."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.webhook import WebhookReceiver
from timesheet_assets.definitions import build_definitions
from timesheet_assets.location import CODE_LOCATION, REPOSITORY

DAYS = 3
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
REPORTS = ["raw", "blikk", "time_reports"]

RUNS = """query($job: String!) { runsOrError(filter: {pipelineName: $job}) { __typename
  ... on Runs { results { runId status tags { key value } } } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { status parentRunId rootRunId jobName } } }"""
REEXECUTE = """mutation($parent: String!) {
  launchPipelineReexecution(reexecutionParams: {parentRunId: $parent, strategy: ALL_STEPS}) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on InvalidSubsetError { message } ... on PipelineNotFoundError { message } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
PARTITIONS = """query($key: AssetKeyInput!) { assetNodes(assetKeys: [$key]) {
  partitionStats { numMaterialized numPartitions numFailed }
  assetPartitionStatuses { __typename ... on TimePartitionStatuses { ranges { status startKey endKey } } } } }"""
STEP_FAILURES = """query($id: ID!) { runOrError(runId: $id) { ... on Run { eventConnection { events {
  __typename ... on ExecutionStepFailureEvent { stepKey error { message }
    failureMetadata { description metadataEntries { label } } } } } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dev:
    """`timesheet-assets dev` in a process group of its own, its output collected."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "timesheet_assets.cli", "dev", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def graphql(port: int, query: str, **variables):
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables}, timeout=60)
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_until(what: str, check, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


def finished_status(port: int, run_id: str) -> str | None:
    status = graphql(port, RUN, id=run_id)["runOrError"]["status"]
    return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None


@pytest.fixture
def day(tmp_path):
    with WebhookReceiver() as hook:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "TIMESHEET_", "BLIKK_"))}
        env.update(
            TIMESHEET_VENDORS="blikk",
            TIMESHEET_ALERT_WEBHOOK_URL=hook.url,
            TIMESHEET_UI_URL="http://127.0.0.1:3000",
            PYTHONUNBUFFERED="1",
        )
        yield tmp_path, env, hook


def test_a_day_in_the_ui(day):
    cwd, env, hook = day
    today = datetime.now(UTC).date()
    first = today - timedelta(days=DAYS - 1)

    # -- make demo: progress while it runs, a summary a newcomer reads right --------------------
    demo = subprocess.run(
        [sys.executable, "-m", "timesheet_assets.cli", "demo", "--days", str(DAYS), "--records", "30"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    assert f"partitions from {first}" in out
    assert re.search(r"\[\s*\d+ s\]   started  raw/blikk/time_reports", out)
    assert re.search(rf"\[\s*\d+ s\]   done     raw/blikk/time_reports in [\d.]+ s \({DAYS} days written", out)
    assert "of refresh_all succeeded in" in out and f"work dates {first} .. {today} ({DAYS} days)" in out
    projects = int(re.search(r"raw/blikk/projects\s+(\d+)", out).group(1))
    assert re.search(r"raw/blikk/time_reports\s+30\s+30\s+30\s+0\s", out)  # fetched, window, table, quarantined
    assert f"Totals: {30 + projects} records fetched from the vendors, 0 quarantined" in out
    checks = len(build_definitions(("blikk",)).resolve_asset_graph().asset_check_keys)
    assert f"checks {checks} of {checks} passed" in out
    assert "conformed/timesheets <- raw/blikk/time_reports" in out
    assert "conformed/timesheets in the window, by vendor: blikk 30 (30)." in out
    assert "* = incremental" in out
    demo_run = re.search(r"^run ([0-9a-f-]{36}) of refresh_all", out, re.M).group(1)

    port = free_port()
    dev = Dev(cwd, env, "--port", str(port), "--days", str(DAYS), "--records", "30")
    try:
        wait_until("the UI", lambda: _answers(port, dev), timeout=240)

        # -- one dev per home; a busy port is named ------------------------------------------
        second = subprocess.run(
            [sys.executable, "-m", "timesheet_assets.cli", "dev", "--port", str(free_port())],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2
        assert "is already serving the Dagster home" in second.stderr and f"pid {dev.process.pid}" in second.stderr
        busy = subprocess.run(
            [sys.executable, "-m", "timesheet_assets.cli", "dev", "--port", str(port), "--home", str(cwd / "other")],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert busy.returncode == 2 and f"port {port} on 127.0.0.1 is already in use" in busy.stderr

        # -- the catalog: every day the demo loaded is materialized ---------------------------
        node = graphql(port, PARTITIONS, key={"path": REPORTS})["assetNodes"][0]
        assert node["partitionStats"] == {"numMaterialized": DAYS, "numPartitions": DAYS, "numFailed": 0}
        assert node["assetPartitionStatuses"]["ranges"] == [
            {"status": "MATERIALIZED", "startKey": first.isoformat(), "endKey": today.isoformat()}
        ]

        # -- the demo's run is re-executed from the UI ----------------------------------------
        runs = graphql(port, RUNS, job="refresh_all")["runsOrError"]["results"]
        assert demo_run in {r["runId"] for r in runs}
        launched = graphql(port, REEXECUTE, parent=demo_run)["launchPipelineReexecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        again = launched["run"]["runId"]
        status = wait_until("the re-execution", lambda: finished_status(port, again), timeout=300)
        assert status == "SUCCESS", dev.output()[-4000:]
        run = graphql(port, RUN, id=again)["runOrError"]
        assert (run["parentRunId"], run["jobName"]) == (demo_run, "refresh_all")

        # -- a failed run: its step leads with the vendor call, and the webhook hears of it ---
        sandbox = re.search(r"blikk (http://127\.0\.0\.1:\d+)", dev.output()).group(1)
        httpx.post(f"{sandbox}/_sandbox/faults", json={"status_rates": {"400": 1.0}}, timeout=10).raise_for_status()
        params = {
            "selector": {
                "repositoryLocationName": CODE_LOCATION,
                "repositoryName": REPOSITORY,
                "pipelineName": "refresh_blikk",
            },
            "executionMetadata": {
                "tags": [
                    {"key": RANGE_START, "value": today.isoformat()},
                    {"key": RANGE_END, "value": today.isoformat()},
                ]
            },
        }
        launched = graphql(port, LAUNCH, params=params)["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        failed = launched["run"]["runId"]
        assert wait_until("the failing run", lambda: finished_status(port, failed), timeout=300) == "FAILURE"
        events = graphql(port, STEP_FAILURES, id=failed)["runOrError"]["eventConnection"]["events"]
        failures = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
        assert failures
        for failure in failures:
            assert "Exceeded max_retries" not in failure["error"]["message"]
            assert failure["failureMetadata"]["description"].startswith("Blikk "), failure
            assert "failed with HTTP 400 after 1 attempt" in failure["failureMetadata"]["description"]
            labels = {entry["label"] for entry in failure["failureMetadata"]["metadataEntries"]}
            assert {"vendor", "endpoint", "status", "requests", "step_attempt"} <= labels

        assert hook.wait_for(lambda posts: any(failed in str(p["body"]) for p in posts), timeout=180), hook.texts()
        text = next(t for t in hook.texts() if failed in t)
        assert "run of refresh_blikk" in text and "failed with HTTP 400" in text
        assert f"http://127.0.0.1:3000/runs/{failed}" in text
        assert WebhookReceiver.PATH not in dev.output()  # the webhook's secret path is never logged

        # -- stopping `dev` (SIGTERM to it alone) stops the UI and daemon it started ----------
        os.kill(dev.process.pid, signal.SIGTERM)
        assert dev.process.wait(timeout=120) == 0
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ version }"}, timeout=5)
    finally:
        dev.stop()


def _answers(port: int, dev: Dev) -> bool:
    if dev.process.poll() is not None:
        pytest.fail(f"dev exited early: {dev.output()[-3000:]}")
    try:
        data = graphql(port, "{ assetNodes { assetKey { path } } }")
    except (httpx.HTTPError, ValueError, AssertionError):
        return False
    return bool(data.get("assetNodes"))
