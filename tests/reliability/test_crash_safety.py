"""A run killed (SIGKILL) in the middle of its warehouse write leaves the old partition
data: never a mix, never duplicates — on both warehouse backends."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dagster_helpers import query
from tests.support.postgres import WAREHOUSE_BACKENDS, make_warehouse

ROOT = Path(__file__).resolve().parents[2]


def run_writer(warehouse: str, first: str, last: str, mode: str, version: int, tmp_path: Path):
    env = {**os.environ, "PROBE_VERSION": str(version), "DAGSTER_HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_writer", warehouse, first, last, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def table(warehouse: str):
    return query(warehouse, "SELECT record_key, work_date, version FROM probe.lines ORDER BY record_key")


@pytest.mark.parametrize("backend", WAREHOUSE_BACKENDS)
def test_killed_mid_write_keeps_the_previous_partition(tmp_path, monkeypatch, backend):
    warehouse = make_warehouse(backend, tmp_path, monkeypatch)
    ok = run_writer(warehouse, "2026-01-01", "2026-01-04", "normal", 1, tmp_path)
    assert ok.returncode == 0 and "DONE" in ok.stdout, ok.stderr[-2000:]
    before = table(warehouse)
    assert len(before) == 200 and {row[2] for row in before} == {1}

    killed = run_writer(warehouse, "2026-01-02", "2026-01-03", "kill", 2, tmp_path)
    assert killed.returncode == -signal.SIGKILL and "DONE" not in killed.stdout

    after = table(warehouse)
    assert after == before  # not a mix of versions, no duplicates, nothing missing

    # And the next healthy run of that range replaces it exactly.
    again = run_writer(warehouse, "2026-01-02", "2026-01-03", "normal", 3, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    final = table(warehouse)
    assert len(final) == 200 and len({r[0] for r in final}) == 200
    assert sorted({(str(r[1]), r[2]) for r in final if r[2] == 3}) == [("2026-01-02", 3), ("2026-01-03", 3)]
