"""A step never outlives its run.

Canceling a refresh (the UI's Terminate, through the production launcher) stops its step at
the next request: the run ends CANCELED by itself, with no kill and nothing written.

A run of Blikk's time reports on the multiprocess executor (its step a process of its own, as
runs launched from the asset graph had before the in-process default) is launched into a
worker process by the production launcher on a real instance. Once the step is reading time
reports, the worker is killed with SIGKILL — the step process lives on, an orphan — and the run
is failed, as run monitoring fails a run whose worker is gone. The orphan must stop calling
Blikk within the run-status check interval and must not write: the sandbox's request log
counts what it sent after the run was failed.
"""

import os
import signal
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg
import duckdb

from tests.reliability.call_streams import CallLog
from tests.reliability.supervision import launch, messages, step_failures, wait_until, write_instance_yaml
from tests.support.dagster_helpers import range_tags
from timesheet_assets.runs.launcher import WORKER_TAG
from timesheet_assets.runs.processes import WorkerProcess, process_start_ticks
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.vendors.blikk import sandbox as blikk_sandbox

CONFIG = SandboxConfig(seed=5, time_records=6000, days=30, employees=12, projects=8)
CHECK_SECONDS = 1.0
# Blikk's client sends at most 3.85 requests/s with 2 in flight. Between the run's end and the
# step's next status read (one interval, plus up to ~3 s for a read on a busy machine) it can
# start about 3.85 × 4 + 2 ≈ 17; an orphan that kept going sends the rest of its ~60 pages.
MAX_CALLS_AFTER_FAILURE = 20


def _alive(pid: int, start_ticks: int) -> bool:
    return process_start_ticks(pid) == start_ticks and _state(pid) not in ("Z", "X", None)


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except FileNotFoundError:
        return None
    return text[text.rindex(")") + 2]


@contextmanager
def deployment(tmp_path, monkeypatch, calls: CallLog, *, grace: int = 5):
    """Blikk's sandbox (its calls logged) and an instance with the production launcher; the
    environment points the code location at both and at a warehouse in ``tmp_path``."""
    app = calls.wrap(blikk_sandbox.create_app(CONFIG), "blikk")
    home = write_instance_yaml(tmp_path / "home", grace=grace)
    with SandboxServer(app) as server, dg.DagsterInstance.from_config(str(home)) as instance:
        for name, value in blikk_sandbox.sandbox_env(server.url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TIMESHEET_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
        monkeypatch.setenv("TIMESHEET_RUN_STATUS_CHECK_SECONDS", str(CHECK_SECONDS))
        yield server, instance


def test_a_step_whose_run_was_failed_stops_calling_the_vendor_and_does_not_write(tmp_path, monkeypatch):
    calls = CallLog()
    warehouse = tmp_path / "warehouse.duckdb"
    with deployment(tmp_path, monkeypatch, calls) as (server, instance):
        first, last = CONFIG.anchor_date - timedelta(days=CONFIG.days - 1), CONFIG.anchor_date
        run = launch(instance, "blikk_time_reports_multiprocess", tags=range_tags(first, last))
        worker = WorkerProcess.from_tag(
            wait_until(lambda: instance.get_run_by_id(run.run_id).tags.get(WORKER_TAG), "the worker tag")
        )

        def step_reading() -> int | None:
            pids = {c.pid for c in calls.snapshot() if c.path.endswith("/TimeReports") and c.pid != worker.pid}
            return next(iter(pids), None)

        step_pid = wait_until(step_reading, "the step process to read time reports")
        step_ticks = process_start_ticks(step_pid)
        assert step_pid in worker.leftover_processes()  # the step is the worker's child

        os.kill(worker.pid, signal.SIGKILL)
        wait_until(lambda: not worker.is_alive(), "the worker to die")
        assert _alive(step_pid, step_ticks), "the step process should outlive the killed worker"
        instance.report_run_failed(instance.get_run_by_id(run.run_id), "run worker is gone")
        failed_at = calls_before = len(calls.snapshot())

        wait_until(lambda: not _alive(step_pid, step_ticks), "the orphaned step to stop", timeout=120)

        after = calls.snapshot()[failed_at:]
        assert len(after) <= MAX_CALLS_AFTER_FAILURE, (calls_before, len(after))
        full_read = -(-sum(1 for r in blikk_sandbox_reports(server)) // 100)
        assert calls_before + len(after) < full_read, "the orphan finished its read instead of stopping"
        failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        texts = step_failures(instance, run.run_id)
        assert any("no longer in progress" in text for text in texts), texts
        # Logged once the step's page threads were done: nothing was sent after it.
        stopped_at = min(record.timestamp for record in failures)
        assert not [c for c in after if c.started > stopped_at]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE

    if warehouse.exists():
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'time_reports'"
            ).fetchone()[0]
        assert tables == 0, "the orphan wrote time reports after its run was failed"


def blikk_sandbox_reports(server: SandboxServer):
    return server.sandbox.extra["data"].time_reports


def test_a_canceled_refresh_stops_at_the_next_request_and_ends_canceled(tmp_path, monkeypatch):
    calls = CallLog()
    warehouse = tmp_path / "warehouse.duckdb"
    with deployment(tmp_path, monkeypatch, calls, grace=120) as (server, instance):
        first, last = CONFIG.anchor_date - timedelta(days=CONFIG.days - 1), CONFIG.anchor_date
        run = launch(instance, "refresh_blikk", tags=range_tags(first, last))
        worker = WorkerProcess.from_tag(
            wait_until(lambda: instance.get_run_by_id(run.run_id).tags.get(WORKER_TAG), "the worker tag")
        )
        wait_until(
            lambda: any(c.pid == worker.pid and c.path.endswith("/TimeReports") for c in calls.snapshot()),
            "the run to read time reports",
        )
        assert instance.run_launcher.terminate(run.run_id)
        asked = len(calls.snapshot())
        wait_until(lambda: instance.get_run_by_id(run.run_id).is_finished, "the run to end", timeout=120)
        at_end = len(calls.snapshot())
        wait_until(lambda: not worker.is_alive(), "the worker to exit", timeout=60)

        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED
        assert not any("did not stop within" in m for m in messages(instance, run.run_id)), "it had to be killed"
        assert at_end - asked <= MAX_CALLS_AFTER_FAILURE
        assert len(calls.snapshot()) == at_end  # nothing after the run ended
        assert at_end < -(-len(blikk_sandbox_reports(server)) // 100)

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = {row[0] for row in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "time_reports" not in tables and "timesheets" not in tables
