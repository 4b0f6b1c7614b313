"""Rehearsal of the production deployment with a run worker killed (``make rehearse``).

A PostgreSQL server; the vendor sandboxes on loopback (each behind a request log that names
the process sending every call); ``DAGSTER_HOME`` holding the root dagster.yaml unchanged; a
code server, the webserver and ``dagster-daemon``; the schedule ``daily_refresh`` turned on
and ticking every minute (``TIMESHEET_REFRESH_CRON``), beside refreshes of earlier windows
queued through the webserver, all competing for the vendor pools. Once a run of
``plan.victim_vendor`` is calling its vendor, its worker is killed with SIGKILL together with
the code server, which then comes back as a supervisor would restart it. When everything has
settled the rehearsal checks:

* nothing is left queued, starting, started or canceling, and every run succeeded but the
  killed one, which run monitoring failed and run retries re-executed to success;
* no vendor's sandbox saw calls from two processes in flight at the same time;
* every vendor's data landed once: no key twice in a raw table or in ``conformed/timesheets``,
  and, where the sandbox can say what it serves (``expected_lines``), exactly those lines.

It prints the times it measured. ``python -m tests.reliability.rehearsal`` runs the full plan;
``test_rehearsal.py`` a shorter one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.tags import WILL_RETRY_TAG

from tests.reliability.call_streams import CallLog, overlapping_streams
from tests.reliability.deployment_processes import Deployment, patched_environ, wait_for
from tests.support.postgres import postgres_server
from timesheet_assets.runs.launcher import WORKER_TAG
from timesheet_assets.runs.processes import WorkerProcess
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.mutations import EXPECTED_COLUMNS
from timesheet_assets.sandbox.registry import sandbox_module
from timesheet_assets.sandbox.server import SandboxServer
from timesheet_assets.schedules import RANGE_END, RANGE_START, REFRESH_TAG, VENDOR_TAG
from timesheet_assets.vendors.registry import load_plugin

REHEARSAL_TAG = "rehearsal/window"
PARENT_TAG = "dagster/parent_run_id"
UNFINISHED = [
    s
    for s in dg.DagsterRunStatus
    if s not in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
]


@dataclass(frozen=True)
class Plan:
    # AIMS360 has no timesheets: daily_refresh launches no run for it.
    vendors: tuple[str, ...] = ("aimsio", "ajera", "blikk", "ibuildapp")
    victim_vendor: str = "blikk"
    lookback_days: int = 7
    schedule_ticks: int = 2  # then the schedule is turned off again, so the queue can drain
    extra_windows: int = 2  # earlier windows queued per vendor beside the schedule's runs
    records: int = 600
    cancel_one: bool = True  # at the end, cancel a run while it calls its vendor
    victim_records: int = 6000  # enough pages that the victim is caught calling its vendor
    settle_timeout: float = 1800.0

    def windows(self, today: date) -> list[tuple[date, date]]:
        days = self.lookback_days
        return [
            (today - timedelta(days=(k + 1) * days - 1), today - timedelta(days=k * days))
            for k in range(self.extra_windows + 1)
        ]


@dataclass
class Findings:
    plan: Plan
    runs: list = field(default_factory=list)
    victim: dg.DagsterRun | None = None
    retries: list[dg.DagsterRun] = field(default_factory=list)
    canceled: dg.DagsterRun | None = None
    calls_after_cancel: int = 0
    worker_starts: dict[str, float] = field(default_factory=dict)  # run id -> launch to RUN_START
    load: list[float] = field(default_factory=list)  # 1-minute load average, sampled during the run
    times: dict[str, float] = field(default_factory=dict)
    overlaps: list = field(default_factory=list)
    unattributed_calls: int = 0
    calls: int = 0
    data_problems: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = list(self.data_problems)
        unfinished = [r.dagster_run.run_id for r in self.runs if r.dagster_run.status in UNFINISHED]
        if unfinished:
            found.append(f"runs not finished: {unfinished}")
        victim_id = self.victim.run_id if self.victim else None
        canceled_id = self.canceled.run_id if self.canceled else None
        for record in self.runs:
            run = record.dagster_run
            if run.run_id not in (victim_id, canceled_id) and run.status != dg.DagsterRunStatus.SUCCESS:
                found.append(f"run {run.run_id} ({run.job_name}, {run.tags.get(VENDOR_TAG)}) ended {run.status.value}")
        if self.victim is None:
            found.append("no run worker was killed")
        else:
            if self.victim.status != dg.DagsterRunStatus.FAILURE:
                found.append(f"the killed run ended {self.victim.status.value}, not FAILURE")
            if not any(r.status == dg.DagsterRunStatus.SUCCESS for r in self.retries):
                found.append(f"the killed run was not retried to success: {[r.status.value for r in self.retries]}")
        if self.plan.cancel_one:
            if self.canceled is None or self.canceled.status != dg.DagsterRunStatus.CANCELED:
                found.append(f"the canceled run ended {self.canceled.status.value if self.canceled else 'nowhere'}")
            elif any(r.dagster_run.parent_run_id == canceled_id for r in self.runs):
                found.append("the canceled run was retried")
            if self.calls_after_cancel:
                found.append(f"the canceled run's worker sent {self.calls_after_cancel} calls after it was CANCELED")
        if self.overlaps:
            first, second = self.overlaps[0]
            found.append(
                f"{len(self.overlaps)} overlapping calls from two processes, e.g. {first.vendor}: pid {first.pid} "
                f"{first.path} and pid {second.pid} {second.path}"
            )
        if self.unattributed_calls:
            found.append(f"{self.unattributed_calls} calls whose sending process could not be found")
        return found

    def report(self) -> str:
        lines = [f"runs: {len(self.runs)}, vendor calls: {self.calls}"]
        if self.load:
            lines.append(
                f"machine: {os.cpu_count()} cores, 1-minute load average {min(self.load):.1f}-{max(self.load):.1f} "
                f"(median {sorted(self.load)[len(self.load) // 2]:.1f})"
            )
        for name, seconds in self.times.items():
            lines.append(f"  {name}: {seconds:.1f} s")
        if self.worker_starts:
            starts = sorted(self.worker_starts.values())
            lines.append(
                f"  run worker start (launched → RUN_START): median {starts[len(starts) // 2]:.1f} s, "
                f"max {starts[-1]:.1f} s over {len(starts)} runs"
            )
        for record in sorted(self.runs, key=lambda r: r.create_timestamp):
            run = record.dagster_run
            waited = (record.start_time or 0) - record.create_timestamp.timestamp() if record.start_time else None
            took = (record.end_time - record.start_time) if record.end_time and record.start_time else None
            lines.append(
                f"  {run.run_id[:8]} {run.job_name:18s} {run.tags.get(VENDOR_TAG, '-'):10s} "
                f"{run.tags.get(REFRESH_TAG) or run.tags.get(REHEARSAL_TAG) or ('retry' if run.parent_run_id else '-'):10s} "
                f"{run.status.value:8s} queued→started {_s(waited)} (worker start {_s(self.worker_starts.get(run.run_id))}) "
                f"started→ended {_s(took)}"
            )
        problems = self.problems()
        lines.append("PROBLEMS:\n  " + "\n  ".join(problems) if problems else "no problems found")
        return "\n".join(lines)


def _s(value: float | None) -> str:
    return f"{value:6.1f} s" if value is not None else "     - "


def rehearse(plan: Plan, workdir: Path, say=print) -> Findings:
    findings = Findings(plan)
    today = datetime.now(UTC).date()
    span = plan.lookback_days * (plan.extra_windows + 1) + 2
    calls = CallLog()
    with postgres_server() as postgres, ExitStack() as stack:
        env = {
            **os.environ,
            **postgres.env,
            "DAGSTER_HOME": str(workdir / "home"),
            "TIMESHEET_VENDORS": ",".join(plan.vendors),
            "TIMESHEET_WAREHOUSE": str(workdir / "warehouse.duckdb"),
            "TIMESHEET_REFRESH_CRON": "* * * * *",
            "TIMESHEET_LOOKBACK_DAYS": str(plan.lookback_days),
            "PYTHONUNBUFFERED": "1",
        }
        sandboxes = {}
        for vendor in plan.vendors:
            records = plan.victim_records if vendor == plan.victim_vendor else plan.records
            config = SandboxConfig(seed=7, time_records=records, days=span, anchor_date=today)
            module = sandbox_module(vendor)
            server = stack.enter_context(SandboxServer(calls.wrap(module.create_app(config), vendor)))
            sandboxes[vendor] = server
            env.update(module.sandbox_env(server.url))
        deployment = Deployment(workdir / "home", env)
        deployment.prepare()
        with patched_environ({**postgres.env, "DAGSTER_HOME": str(deployment.home)}):
            instance = stack.enter_context(dg.DagsterInstance.from_config(str(deployment.home)))
            # As docs/operations.md says a deployment does before its first runs.
            instance.upgrade()
            for pool in (*plan.vendors, "conformed"):
                instance.event_log_storage.initialize_concurrency_limit_to_default(pool)
            stack.callback(deployment.stop)
            stack.callback(_kill_run_workers, instance)  # runs first: workers are not the daemon's children
            started = time.monotonic()
            say("starting the code server, the webserver and dagster-daemon ...")
            deployment.start_code_server()
            deployment.start_webserver()
            deployment.start_daemon()
            findings.times["deployment up"] = time.monotonic() - started

            schedule = deployment.start_schedule("daily_refresh")
            for vendor in plan.vendors:
                for first, last in plan.windows(today)[1:]:
                    deployment.submit(
                        f"refresh_{vendor}",
                        {
                            RANGE_START: first.isoformat(),
                            RANGE_END: last.isoformat(),
                            REHEARSAL_TAG: f"{first}..{last}",
                        },
                    )
            say(f"daily_refresh on (every minute), {plan.extra_windows * len(plan.vendors)} refreshes queued")
            wait_for(
                lambda: len(instance.get_runs(dg.RunsFilter(tags={REFRESH_TAG: "daily"}))) >= len(plan.vendors),
                "the schedule's first runs",
                timeout=300,
            )
            findings.times["first schedule tick after start"] = (
                time.monotonic() - started - findings.times["deployment up"]
            )

            victim, worker = wait_for(
                lambda: _calling_run(instance, calls, plan.victim_vendor),
                "a run calling its vendor",
                timeout=600,
                interval=0.05,
            )
            say(f"killing run worker {worker.pid} of run {victim.run_id} ({plan.victim_vendor}) and the code server")
            os.kill(worker.pid, signal.SIGKILL)
            deployment.services["code-server"].kill()
            killed_at = time.time()
            stop_watching = threading.Event()
            watcher = threading.Thread(
                target=_watch_slots,
                args=(
                    instance,
                    victim.run_id,
                    (plan.victim_vendor, "conformed"),
                    killed_at,
                    stop_watching,
                    findings.times,
                ),
                daemon=True,
            )
            watcher.start()
            stack.callback(stop_watching.set)
            deployment.start_code_server()  # as its supervisor restarts it
            findings.times["code server back (after the kill)"] = time.time() - killed_at
            ticked = len(plan.vendors) * plan.schedule_ticks
            wait_for(
                lambda: len(instance.get_runs(dg.RunsFilter(tags={REFRESH_TAG: "daily"}))) >= ticked,
                f"{plan.schedule_ticks} schedule ticks",
                timeout=600,
            )
            deployment.stop_schedule(schedule)
            say(f"daily_refresh ticked {plan.schedule_ticks} times and is off again")
            _settle(instance, victim.run_id, plan, say, findings.load)
            _victim_times(instance, victim.run_id, killed_at, findings.times)
            if plan.cancel_one:
                _cancel_one(instance, deployment, calls, plan, today, findings, say)
            findings.victim = instance.get_run_by_id(victim.run_id)
            findings.retries = list(instance.get_runs(dg.RunsFilter(tags={PARENT_TAG: victim.run_id})))
            findings.runs = list(instance.get_run_records())
            for record in findings.runs:
                stats = instance.get_run_stats(record.dagster_run.run_id)
                if stats.launch_time and stats.start_time:
                    findings.worker_starts[record.dagster_run.run_id] = stats.start_time - stats.launch_time
            findings.times["whole rehearsal"] = time.monotonic() - started
        snapshot = calls.snapshot()
        findings.calls = len(snapshot)
        findings.overlaps = overlapping_streams(snapshot)
        findings.unattributed_calls = sum(1 for c in snapshot if c.pid is None)
        findings.data_problems = _data_problems(plan, today, env["TIMESHEET_WAREHOUSE"], sandboxes)
    return findings


def _kill_run_workers(instance: dg.DagsterInstance) -> None:
    """What a rehearsal stopped early leaves behind: run workers live in process groups of
    their own, on purpose."""
    for run in instance.get_runs():
        tag = run.tags.get(WORKER_TAG)
        if tag:
            WorkerProcess.from_tag(tag).kill_group()


def _calling_run(instance: dg.DagsterInstance, calls: CallLog, vendor: str, run_ids: list[str] | None = None):
    """A started run whose worker is calling ``vendor`` right now (a call within the last
    second)."""
    now = time.time()
    recent = {c.pid for c in calls.snapshot() if c.vendor == vendor and c.ended > now - 1.0}
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], run_ids=run_ids)):
        tag = run.tags.get(WORKER_TAG)
        if tag and run.tags.get(VENDOR_TAG) == vendor:
            worker = WorkerProcess.from_tag(tag)
            if worker.pid in recent and worker.is_alive():
                return run, worker
    return None


def _cancel_one(
    instance, deployment: Deployment, calls: CallLog, plan: Plan, today: date, findings: Findings, say
) -> None:
    """Cancel a run from the webserver while it calls its vendor, as an operator would."""
    first, last = plan.windows(today)[0]
    run_id = deployment.submit(
        f"refresh_{plan.victim_vendor}",
        {RANGE_START: first.isoformat(), RANGE_END: last.isoformat(), REHEARSAL_TAG: "canceled"},
    )
    _, worker = wait_for(
        lambda: _calling_run(instance, calls, plan.victim_vendor, [run_id]),
        "the run to call its vendor",
        timeout=600,
        interval=0.05,
    )
    asked = time.time()
    deployment.terminate(run_id)
    wait_for(lambda: instance.get_run_by_id(run_id).is_finished, "the canceled run to end", timeout=300)
    ended = instance.get_run_record_by_id(run_id).end_time
    findings.times["cancel: Terminate → run CANCELED"] = ended - asked
    wait_for(
        lambda: not worker.is_alive() and not worker.leftover_processes(), "the canceled worker to exit", timeout=120
    )
    findings.times["cancel: Terminate → worker process gone"] = time.time() - asked
    findings.calls_after_cancel = sum(1 for c in calls.snapshot() if c.pid == worker.pid and c.started > ended)
    findings.canceled = instance.get_run_by_id(run_id)
    say(f"canceled run {run_id}: {findings.canceled.status.value} {ended - asked:.1f} s after Terminate")


def _watch_slots(
    instance, run_id: str, pools: tuple[str, ...], since: float, stop: threading.Event, times: dict
) -> None:
    """Record when ``run_id`` stops holding slots in ``pools`` (the slot reaper's work)."""
    while not stop.is_set():
        holders = set().union(*(instance.event_log_storage.get_concurrency_info(p).active_run_ids for p in pools))
        if run_id not in holders:
            times["its pool slots freed (after the kill)"] = time.time() - since
            return
        stop.wait(0.25)


def _settle(instance, victim_id: str, plan: Plan, say, load: list[float]) -> None:
    """Wait until every run has ended, the killed run's retry with it."""
    deadline = time.monotonic() + plan.settle_timeout
    while True:
        load.append(os.getloadavg()[0])
        victim = instance.get_run_by_id(victim_id)
        retries = instance.get_runs(dg.RunsFilter(tags={PARENT_TAG: victim_id}))
        unfinished = instance.get_runs(dg.RunsFilter(statuses=UNFINISHED))
        retried = (
            victim.status != dg.DagsterRunStatus.FAILURE
            or victim.tags.get(WILL_RETRY_TAG) == "false"
            or (retries and all(r.is_finished for r in retries))
        )
        if not unfinished and victim.is_finished and retried:
            return
        if time.monotonic() > deadline:
            say(f"gave up waiting after {plan.settle_timeout:.0f} s: {len(unfinished)} runs unfinished")
            return
        time.sleep(0.5)


def _victim_times(instance, victim_id: str, killed_at: float, times: dict) -> None:
    record = instance.get_run_record_by_id(victim_id)
    if record.end_time:
        times["killed run failed by run monitoring (after the kill)"] = record.end_time - killed_at
    for retry in instance.get_run_records(dg.RunsFilter(tags={PARENT_TAG: victim_id})):
        times["retry created (after the kill)"] = retry.create_timestamp.timestamp() - killed_at
        if retry.start_time:
            times["retry started (after the kill)"] = retry.start_time - killed_at
        if retry.end_time:
            times["retry finished (after the kill)"] = retry.end_time - killed_at


def _data_problems(plan: Plan, today: date, warehouse: str, sandboxes: dict) -> list[str]:
    problems = []
    with duckdb.connect(warehouse, read_only=True) as conn:
        conformed = conn.execute("SELECT * FROM conformed.timesheets").fetchdf()
        for vendor in plan.vendors:
            raw_key = load_plugin(vendor).timesheets[0]
            raw = conn.execute(f"SELECT record_key FROM {raw_key.path[-2]}.{raw_key.path[-1]}").fetchdf()
            if raw["record_key"].duplicated().any():
                problems.append(f"{vendor}: a record key twice in {raw_key.to_user_string()}")
            lines = conformed[conformed["source_system"] == vendor].copy()
            if lines["entry_id"].duplicated().any():
                problems.append(f"{vendor}: an entry twice in conformed/timesheets")
            lines["work_date"] = pd.to_datetime(lines["work_date"]).dt.date
            mutations = sandboxes[vendor].sandbox.extra.get("mutations")
            for first, last in plan.windows(today):
                window = lines[(lines["work_date"] >= first) & (lines["work_date"] <= last)]
                if mutations is None:
                    if window.empty:
                        problems.append(f"{vendor}: no conformed lines for {first}..{last}")
                    continue
                difference = _differences(window, mutations.expected_lines(first, last))
                if len(difference):
                    problems.append(f"{vendor}: {len(difference)} lines differ from the source for {first}..{last}")
    return problems


def _differences(actual: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    def normal(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[list(EXPECTED_COLUMNS)].copy()
        frame["entry_id"] = frame["entry_id"].astype(str)
        frame["work_date"] = pd.to_datetime(frame["work_date"]).dt.date
        frame["total_hours"] = frame["total_hours"].astype(float).round(4)
        return frame

    merged = normal(actual).merge(normal(expected), on="entry_id", how="outer", suffixes=("_w", "_s"), indicator=True)
    same = merged["_merge"] == "both"
    for column in ("work_date", "total_hours", "status"):
        same &= merged[f"{column}_w"] == merged[f"{column}_s"]
    return merged[~same]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="keep logs, the instance home and the warehouse here")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rehearsal-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # A stopped rehearsal (Ctrl-C, timeout) cleans up after itself.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"rehearsal in {workdir} (logs: {workdir / 'home'}/*.log)", flush=True)
    findings = rehearse(Plan(), workdir, say=lambda text: print(text, flush=True))
    print(findings.report())
    return 1 if findings.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
