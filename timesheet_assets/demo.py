"""`timesheet-assets demo` and `dev`: the whole pipeline against the local sandboxes.

The demo launches the named job ``refresh_all`` through the code location, as the UI does, so
its run can be re-executed from ``make dev``; it prints each step as it goes and a summary at
the end. Both commands start the partitions where the sandbox data starts (the catalog shows
every day the demo loaded as materialized) and share the Dagster home ``.dagster_home/``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .commands.local import (
    DEFAULT_DAYS,
    DEFAULT_RECORDS,
    LOCAL_HOME,
    DevLock,
    LocalSetupError,
    LocalWindow,
    ensure_port_free,
    prepare_home,
)
from .storage import redact_url

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
DEMO_TAG = "timesheet_assets/refresh"
# The run's own log stays in the instance (and the UI); the terminal gets the progress lines.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _start_sandboxes(stack, window: LocalWindow):
    from .sandbox.registry import serve_sandboxes
    from .settings import enabled_vendors

    running = stack.enter_context(serve_sandboxes(enabled_vendors(), window.sandbox_config()))
    for sandbox in running.values():
        os.environ.update(sandbox.env)
    return running


def run_demo(days: int = DEFAULT_DAYS, records: int = DEFAULT_RECORDS, home: Path = LOCAL_HOME) -> int:
    from contextlib import ExitStack

    import dagster as dg

    from .commands.progress import RunFollower
    from .commands.summary import collect, count_rows, render
    from .jobs import REFRESH_ALL
    from .location import create_run, launch, open_workspace

    started = time.monotonic()
    window = LocalWindow.ending_today(days, records)
    home = prepare_home(home)
    window.apply_to_environment()
    try:
        load = window.clamped_to_partitions()
    except LocalSetupError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        running = _start_sandboxes(stack, window)
        print(f"sandboxes on loopback: {', '.join(f'{v} {s.server.url}' for v, s in running.items())}")
        print(
            f"Dagster home {home}; warehouse {redact_url(os.environ['TIMESHEET_WAREHOUSE'])}; partitions from "
            f"{os.environ['TIMESHEET_START_DATE']}"
        )
        print("loading the code location (its own process, as the UI runs it) ...", flush=True)
        instance = stack.enter_context(dg.DagsterInstance.get())
        workspace = stack.enter_context(open_workspace(instance))
        run = create_run(
            workspace,
            REFRESH_ALL,
            tags={RANGE_START: load.first.isoformat(), RANGE_END: load.last.isoformat(), DEMO_TAG: "demo"},
            run_config=QUIET_CONSOLE,
        )
        print(f"run {run.run_id} of {REFRESH_ALL}: every asset for work dates {load.first} .. {load.last}", flush=True)
        launch(workspace, run)
        finished = RunFollower(instance, run.run_id, write=lambda line: print(line, flush=True)).follow()
        facts = collect(instance, finished)
        by_vendor = count_rows(os.environ["TIMESHEET_WAREHOUSE"], facts, workspace.asset_graph, load.first, load.last)
        print()
        print(render(facts, workspace.asset_graph, load.first, load.last, by_vendor, time.monotonic() - started))
    print()
    print(
        f"Open the run in the UI: make dev, then http://127.0.0.1:3000/runs/{finished.run_id} "
        "(Re-execute works there; the dev sandboxes serve the same data)."
    )
    failed_checks = any(not ok and blocking for line in facts.lines.values() for _, ok, blocking in line.checks)
    return 0 if finished.status == dg.DagsterRunStatus.SUCCESS and not failed_checks else 1


def run_dev(port: int = 3000, days: int = DEFAULT_DAYS, records: int = DEFAULT_RECORDS, home: Path = LOCAL_HOME) -> int:
    from contextlib import ExitStack

    window = LocalWindow.ending_today(days, records)
    home = prepare_home(home)
    window.apply_to_environment()
    lock = DevLock(home)
    try:
        lock.acquire(port)
        ensure_port_free(port)
    except LocalSetupError as exc:
        lock.release()
        print(f"dev: {exc}", file=sys.stderr)
        return 2
    with lock, ExitStack() as stack:
        running = _start_sandboxes(stack, window)
        print(f"sandboxes on loopback: {', '.join(f'{v} {s.server.url}' for v, s in running.items())}")
        print(
            f"Dagster home {home}; warehouse {redact_url(os.environ['TIMESHEET_WAREHOUSE'])}; partitions from "
            f"{os.environ['TIMESHEET_START_DATE']}; UI on http://127.0.0.1:{port}",
            flush=True,
        )
        command = [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            str(home / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        return _serve_until_stopped(command)


def _serve_until_stopped(command: list[str], grace_seconds: float = 60.0) -> int:
    """Run ``dagster dev`` in a process group of its own and pass it Ctrl-C, SIGTERM or
    SIGHUP as its graceful Ctrl-C (a second signal kills it): however this process is stopped,
    the UI, the daemon and the code server stop with it, and the home stays locked until they
    have."""
    signals_seen: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def stop(signum, _frame) -> None:
        signals_seen.append(signum)
        if child is not None and child.poll() is None:
            os.killpg(child.pid, signal.SIGINT if len(signals_seen) == 1 else signal.SIGKILL)

    # The handlers go in before dagster dev starts: a process inherits a signal its parent
    # ignores (Ctrl-C in a script's background job, for one), never a handler, so dagster dev
    # starts with Ctrl-C working and the SIGINT passed on below stops it.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        child = subprocess.Popen(command, env=dict(os.environ), start_new_session=True)
        if signals_seen:  # stopped while it was starting
            os.killpg(child.pid, signal.SIGINT)
        child.wait()
    finally:
        if child is not None:
            try:
                child.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if child is None:
        return 1
    return 0 if child.returncode in (0, -signal.SIGINT) else child.returncode
