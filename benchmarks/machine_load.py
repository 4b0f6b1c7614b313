"""What the machine is doing around a measured run: CPU hogs to make it busy on purpose, and
the peak memory of the run worker processes.

Hogs are ``nice -n 19`` Python loops, each under ``timeout`` so they end by themselves even if
this process dies; they are stopped by their own process ids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOG_LIFETIME_S = 1800


@contextmanager
def cpu_hogs(count: int = 3) -> Iterator[list[int]]:
    """``count`` busy loops at the lowest priority (``nice -n 19``) while the block runs."""
    procs = [
        subprocess.Popen(
            ["timeout", str(HOG_LIFETIME_S), "nice", "-n", "19", sys.executable, "-c", "while True: pass"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    try:
        time.sleep(0.5)  # let them reach the CPU before the clock starts
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # their own session: timeout, nice, python
            except ProcessLookupError:
                pass
        for proc in procs:
            proc.wait(timeout=10)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        for child in _children(todo.pop()):
            seen.append(child)
            todo.append(child)
    return seen


def _peak_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _is_run_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    # Dagster's default launcher has the code server start each run worker with
    # multiprocessing's spawn; the production launcher (timesheet_assets.runs.launcher) runs
    # ``python -m dagster api execute_run``.
    return (b"multiprocessing" in cmdline and b"spawn_main" in cmdline) or b"dagster api execute_run" in cmdline


class WorkerPeakMemory:
    """Samples the peak resident memory (VmHWM) of run workers below this process."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="worker-rss", daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for pid in _descendants(me):
                if pid in self.peak_kb or _is_run_worker(pid):
                    peak = _peak_kb(pid)
                    if peak is not None:
                        self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), peak)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> WorkerPeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_mb(self) -> float | None:
        return round(max(self.peak_kb.values()) / 1024, 1) if self.peak_kb else None


def interpreter_import_seconds(module: str = "dagster", runs: int = 3) -> float:
    """Median wall time of a fresh interpreter importing ``module``: how fast the machine is
    at the moment, in the unit every launch pays (the run worker starts this way). The same
    machine measured 0.77 s in a run whose timings matched its quiet runs and 1.0–2.4 s when
    its host was busy, when every launch and step slowed alike; a report states it so its
    seconds can be read."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - started)
    return round(sorted(times)[len(times) // 2], 2)
