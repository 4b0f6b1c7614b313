"""`timesheet-assets dev` (what `make dev` runs) serves the UI, and its GraphQL API lists
every asset of the code location, each with its freshness policy, and the conformed tables'
checks and columns with their descriptions and warehouse types."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from timesheet_assets.definitions import build_definitions

QUERY = """{ assetNodes { assetKey { path }
  internalFreshnessPolicy { __typename ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } }
  assetChecksOrError { __typename ... on AssetChecks { checks { name description blocking } } }
  metadataEntries { label ... on TableSchemaMetadataEntry { schema { columns { name type description } } } } } }"""


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
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
                    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        assert keys is not None, "the UI never answered GraphQL"
        expected = {key.to_user_string() for key in build_definitions().resolve_all_asset_keys()}
        assert expected <= keys
        assert {"conformed/timesheets", "conformed/projects", "raw/blikk/time_reports"} <= keys
        for key, node in by_key.items():
            policy = node["internalFreshnessPolicy"]
            assert policy == {
                "__typename": "TimeWindowFreshnessPolicy",
                "failWindowSeconds": 26 * 3600,
                "warnWindowSeconds": 25 * 3600,
            }, key
        for key in ("conformed/timesheets", "conformed/projects"):
            checks = by_key[key]["assetChecksOrError"]["checks"]
            assert checks and all(c["description"] for c in checks), key
            schema = next(e["schema"] for e in by_key[key]["metadataEntries"] if e["label"] == "dagster/column_schema")
            assert all(c["description"] for c in schema["columns"]), key
            types = {c["name"]: c["type"] for c in schema["columns"]}
            assert types["source_system"] == "VARCHAR" and types["ingested_at"] == "TIMESTAMP WITH TIME ZONE", key
        types = {
            c["name"]: c["type"]
            for e in by_key["conformed/timesheets"]["metadataEntries"]
            if e["label"] == "dagster/column_schema"
            for c in e["schema"]["columns"]
        }
        assert (types["work_date"], types["total_hours"]) == ("DATE", "DOUBLE")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
