"""Two runs of the same vendor at once stay inside the vendor's documented limit in total:
the vendor pool (limit 1, as in dagster.yaml) serialises their steps. Without the pool the
same two runs overrun the limit — the sandbox counts it.

Without the pool, the overrun is arranged, not raced for: a gate at the sandbox's door holds
the runs' list-page calls until both runs have calls waiting and more than the limit's worth
are held, then lets them in together. On a busy machine two runs can be slow enough that
their combined rate stays under the limit by chance; the gate takes the chance out."""

import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.gate import ArrivalGate
from timesheet_assets.sandbox.registry import serve_sandboxes
from timesheet_assets.vendors.blikk.resource import TIME_REPORTS_PATH
from timesheet_assets.vendors.blikk.sandbox import REQUESTS_PER_SECOND

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = date(2026, 2, 28)
# Each run reads about 15 pages: enough for three calls in flight after the first page.
CONFIG = SandboxConfig(seed=3, time_records=3000, days=30, anchor_date=ANCHOR, employees=8, projects=6)
# Calls in flight per run: two runs can then hold more than the per-second limit between them.
IN_FLIGHT = 3


def launch(
    home: Path, env: dict, first: date, last: date, warehouse: Path, barrier: Path, index: int
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability.pool_runner",
            "blikk",
            "raw/blikk/time_reports",
            first.isoformat(),
            last.isoformat(),
            str(warehouse),
            str(barrier),
            str(index),
            str(IN_FLIGHT),
        ],
        cwd=ROOT,
        env={**env, "DAGSTER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def prepare_instance(home: Path, pool: str) -> None:
    """Set the instance up as a deployment does before runs share it (docs/operations.md):
    its tables (`dagster instance migrate`) and the vendor's pool at the configured default
    (`dagster instance concurrency set`). Both are otherwise created by whichever run comes
    first, and runs arriving together race to create them (SQLite: a second CREATE TABLE
    fails the run)."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        instance.upgrade()
        assert instance.event_log_storage.initialize_concurrency_limit_to_default(pool)


def wait_until(condition, runs: list[subprocess.Popen], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or any(run.poll() is not None for run in runs):
            return  # the runs' own outcome says what went wrong
        time.sleep(0.01)


def is_later_list_page(request) -> bool:
    """A time-report list call after the first page: the calls a run makes IN_FLIGHT at once."""
    return request.url.path.endswith(TIME_REPORTS_PATH) and int(request.query_params.get("page", "1")) > 1


def more_than_the_limit_from_both_runs(held) -> bool:
    return len(held) > REQUESTS_PER_SECOND and len({r.headers.get("authorization") for r in held}) == 2


def two_concurrent_runs(tmp_path: Path, pool_limit: int, gate: ArrivalGate | None = None):
    home = tmp_path / f"home-{pool_limit}"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f"telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: {pool_limit}\n"
    )
    prepare_instance(home, "blikk")
    with serve_sandboxes(("blikk",), CONFIG) as running:
        sandbox = running["blikk"]
        # Blikk documents its limit per access token and two runs hold two tokens; count
        # every token against one budget so the test shows what the pool adds.
        sandbox.server.sandbox.extra["data"].rate_limit_scope = "application"
        sandbox.server.sandbox.gate = gate
        env = {**os.environ, **sandbox.env}
        first_half = (ANCHOR - timedelta(days=29), ANCHOR - timedelta(days=15))
        second_half = (ANCHOR - timedelta(days=14), ANCHOR)
        barrier = tmp_path / f"barrier-{pool_limit}"
        barrier.mkdir()
        runs = [
            launch(home, env, *first_half, tmp_path / f"a-{pool_limit}.duckdb", barrier, 0),
            launch(home, env, *second_half, tmp_path / f"b-{pool_limit}.duckdb", barrier, 1),
        ]
        # Once both processes are up (imports take seconds on a busy machine), start them.
        wait_until(lambda: all((barrier / f"{i}.ready").exists() for i in range(len(runs))), runs)
        (barrier / "0.go").touch()
        if gate is None:
            # With the pool: the second run asks for the pool while the first holds it (two
            # claims in the same millisecond are not what this test is about).
            wait_until(lambda: sandbox.server.sandbox.stats.requests > 0, runs)
        (barrier / "1.go").touch()
        outcomes = []
        for run in runs:
            out, err = run.communicate(timeout=240)
            assert run.returncode == 0, err[-3000:]
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
        stats = sandbox.server.sandbox.stats
        return outcomes, stats.rate_exceeded, stats.requests


def test_vendor_pool_keeps_two_runs_within_the_documented_rate(tmp_path):
    outcomes, exceeded, requests = two_concurrent_runs(tmp_path, pool_limit=1)
    assert all(o["success"] for o in outcomes)
    assert requests >= 20
    assert exceeded == 0


def test_without_the_pool_the_same_runs_overrun_the_limit(tmp_path):
    gate = ArrivalGate(holds=is_later_list_page, opens_when=more_than_the_limit_from_both_runs)
    outcomes, exceeded, _ = two_concurrent_runs(tmp_path, pool_limit=10, gate=gate)
    # Both runs had list calls waiting at the vendor at once: nothing kept them apart.
    assert gate.opened == "condition"
    # Both still finish (the client honours the 429s), but the vendor saw too many calls:
    # at least those beyond the limit among the calls let in together.
    assert all(o["success"] for o in outcomes)
    assert exceeded >= len(gate.held) - REQUESTS_PER_SECOND > 0
