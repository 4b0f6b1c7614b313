"""`timesheet-assets dev` (what `make dev` runs) serves the UI, and its GraphQL API lists
every asset of the code location."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from timesheet_assets.definitions import build_definitions

pytestmark = pytest.mark.xdist_group("dev_ui")

QUERY = "{ assetNodes { assetKey { path } } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dev_serves_the_asset_graph(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env["TIMESHEET_WAREHOUSE"] = str(tmp_path / "w.duckdb")
    process = subprocess.Popen(
        [sys.executable, "-m", "timesheet_assets.cli", "dev", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        keys = None
        while time.monotonic() < deadline and keys is None:
            if process.poll() is not None:
                pytest.fail(f"dev exited early: {process.stdout.read().decode()[-3000:]}")
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=10)
                nodes = response.json().get("data", {}).get("assetNodes")
                if nodes:
                    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        assert keys is not None, "the UI never answered GraphQL"
        expected = {key.to_user_string() for key in build_definitions().resolve_all_asset_keys()}
        assert expected <= keys
        assert {"conformed/timesheets", "conformed/projects", "raw/blikk/time_reports"} <= keys
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
