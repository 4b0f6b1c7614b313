"""Two vendors' runs writing into one warehouse at the same moment: both land, each its own
rows, on both backends. PostgreSQL lets the second write while the first is mid-write;
DuckDB makes it wait for the file (and says so in its log)."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.dagster_helpers import is_postgres, read_table

ROOT = Path(__file__).resolve().parents[2]


class Writer:
    def __init__(self, warehouse: str, vendor: str, day: str, hold: bool, signals: Path):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.storage.concurrent_writer",
                warehouse,
                vendor,
                day,
                "1" if hold else "0",
                str(signals),
            ],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True)
        self._reader.start()

    def finish(self) -> str:
        out, _ = self.process.communicate(timeout=180)
        self._reader.join(10)
        return out


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_two_vendors_write_at_once(warehouse, tmp_path):
    signals = tmp_path / "signals"
    signals.mkdir()
    first = Writer(warehouse, "alpha", "2026-01-01", True, signals)
    wait_for(lambda: (signals / "alpha.inside").exists() or first.process.poll() is not None, "alpha's write")
    assert (signals / "alpha.inside").exists(), "".join(first.stderr)[-3000:]

    # alpha is inside its write transaction, not committed; beta's run starts now.
    second = Writer(warehouse, "beta", "2026-01-02", False, signals)
    if is_postgres(warehouse):
        # Different tables: beta's run writes and commits while alpha is still mid-write.
        assert "SUCCESS" in second.finish(), "".join(second.stderr)[-3000:]
        assert first.process.poll() is None
    else:
        # One process at a time: beta waits for the file and says so.
        wait_for(lambda: any("is locked by another process" in line for line in second.stderr), "beta's lock notice")
        assert second.process.poll() is None
    (signals / "alpha.go").touch()
    assert "SUCCESS" in first.finish(), "".join(first.stderr)[-3000:]
    if not is_postgres(warehouse):
        assert "SUCCESS" in second.finish(), "".join(second.stderr)[-3000:]

    for vendor in ("alpha", "beta"):
        raw = read_table(warehouse, f"{vendor}.lines")
        assert len(raw) == 500 and raw["record_key"].str.startswith(f"{vendor}:").all()
    conformed = read_table(warehouse, "conformed.probe_timesheets")
    assert conformed.groupby("source_system").size().to_dict() == {"alpha": 500, "beta": 500}
    assert not conformed.duplicated(["source_system", "entry_id"]).any()
