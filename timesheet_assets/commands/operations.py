"""Everyday operations on an instance: re-read a vendor's work dates, backfill a date range,
list what the code location holds.

The instance is ``--home``, else ``DAGSTER_HOME``, else the local ``.dagster_home/`` of
``make dev`` — never the repository's ``dagster.yaml`` by accident (that file is the
production instance and wants Postgres settings).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from .local import LOCAL_HOME, LocalSetupError, prepare_home

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
ORIGIN_TAG = "timesheet_assets/refresh"
DAEMON_HEARTBEAT_SECONDS = 120


def resolve_home(home: str | None) -> Path:
    """``--home``, else ``DAGSTER_HOME``, else the local home (created if missing)."""
    if home:
        path = Path(home)
        if not (path / "dagster.yaml").exists():
            raise LocalSetupError(f"{path} holds no dagster.yaml: not a Dagster home")
        os.environ["DAGSTER_HOME"] = str(path.resolve())
        return path.resolve()
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"]).resolve()
    return prepare_home(LOCAL_HOME)


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise LocalSetupError(f"{option} must be a date as YYYY-MM-DD, got {text!r}") from None


def date_range(first: date, last: date) -> list[str]:
    if last < first:
        raise LocalSetupError(f"--to {last} is before --from {first}")
    from ..settings import partitions_start_date

    start = date.fromisoformat(partitions_start_date())
    if first < start:
        raise LocalSetupError(
            f"--from {first} is before the first partition, TIMESHEET_START_DATE {start}: "
            f"start at {start} or set TIMESHEET_START_DATE earlier"
        )
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def daemon_running(instance: dg.DagsterInstance) -> bool:
    now = time.time()
    return any(
        now - heartbeat.timestamp < DAEMON_HEARTBEAT_SECONDS for heartbeat in instance.get_daemon_heartbeats().values()
    )


def _ui_hint(path: str) -> str:
    return f"open it in the UI: http://127.0.0.1:3000/{path} (make dev), or the production UI"


def refresh(
    vendor: str,
    first: date | None,
    last: date | None,
    *,
    home: str | None,
    wait: bool,
    write: Callable[[str], None] = print,
) -> int:
    """One run of ``refresh_<vendor>`` (``all``: ``refresh_all``) over the work dates, as the
    daily schedule launches it."""
    from ..jobs import REFRESH_ALL, refresh_job_name
    from ..location import create_run, job_names, launch, open_workspace, submit
    from ..schedules import lookback_days

    path = resolve_home(home)
    last = last or datetime.now(UTC).date()
    first = first or last - timedelta(days=lookback_days(vendor if vendor != "all" else "timesheet") - 1)
    date_range(first, last)
    job = REFRESH_ALL if vendor == "all" else refresh_job_name(vendor)
    with dg.DagsterInstance.get() as instance, open_workspace(instance) as workspace:
        if job not in job_names(workspace):
            raise LocalSetupError(
                f"no job {job} in this code location (jobs: {', '.join(job_names(workspace))}); "
                "a vendor without timesheets or projects (aims360) is loaded by its sensor"
            )
        run = create_run(
            workspace,
            job,
            tags={RANGE_START: first.isoformat(), RANGE_END: last.isoformat(), ORIGIN_TAG: "command"},
        )
        write(f"instance {path}: run {run.run_id} of {job}, work dates {first} .. {last}")
        if not wait:
            submit(workspace, run)
            if not daemon_running(instance):
                write(
                    "no dagster-daemon is running for this instance: the run waits in the queue "
                    "until one starts (make dev starts one), or use --wait to run it here"
                )
            write(_ui_hint(f"runs/{run.run_id}"))
            return 0
        from .progress import RunFollower

        launch(workspace, run)
        finished = RunFollower(instance, run.run_id, write=write).follow()
        write(f"run {finished.run_id} {finished.status.value.lower()}; {_ui_hint(f'runs/{finished.run_id}')}")
        return 0 if finished.status == dg.DagsterRunStatus.SUCCESS else 1


def backfill(
    first: date,
    last: date,
    *,
    vendors: Sequence[str],
    assets: Sequence[str],
    home: str | None,
    write: Callable[[str], None] = print,
) -> int:
    """A Dagster backfill of the daily-partitioned assets over the work dates (the UI's
    Backfills tab shows it; the daemon runs it, one run per range with the single-run policy)."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from ..location import open_workspace

    path = resolve_home(home)
    partitions = date_range(first, last)
    with dg.DagsterInstance.get() as instance, open_workspace(instance) as workspace:
        graph = workspace.asset_graph
        every = {key.to_user_string(): key for key in graph.get_all_asset_keys()}
        if assets:
            unknown = sorted(set(assets) - set(every))
            if unknown:
                raise LocalSetupError(f"unknown asset(s) {', '.join(unknown)}; see: timesheet-assets list assets")
            chosen = [every[name] for name in assets]
        else:
            chosen = [
                key for key in every.values() if key.path[0] == "conformed" or not vendors or key.path[1] in vendors
            ]
        partitioned = [key for key in chosen if graph.get(key).is_partitioned]
        skipped = sorted(k.to_user_string() for k in chosen if k not in partitioned)
        if not partitioned:
            raise LocalSetupError("none of the selected assets is partitioned by work date; use refresh")
        record = PartitionBackfill.from_asset_partitions(
            backfill_id=make_new_backfill_id(),
            asset_graph=graph,
            partition_names=partitions,
            asset_selection=sorted(partitioned, key=lambda k: k.to_user_string()),
            backfill_timestamp=time.time(),
            tags={ORIGIN_TAG: "backfill"},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=f"work dates {first} .. {last}",
            description=None,
            run_config=None,
        )
        instance.add_backfill(record)
        write(
            f"instance {path}: backfill {record.backfill_id} of "
            f"{', '.join(k.to_user_string() for k in record.asset_selection or ())} for {first} .. {last}"
        )
        if skipped:
            write(f"not partitioned, so not in the backfill (re-read them with refresh): {', '.join(skipped)}")
        if not daemon_running(instance):
            write(
                "no dagster-daemon is running for this instance: the backfill starts when one "
                "does (make dev starts one)"
            )
        write(_ui_hint(f"runs/b/{record.backfill_id}"))
    return 0


def list_definitions(what: str, write: Callable[[str], None] = print) -> int:
    """Assets, jobs, schedules and sensors of the code location (no instance needed)."""
    from tabulate import tabulate

    from ..definitions import build_definitions

    defs = build_definitions()
    repository = defs.get_repository_def()
    if what in ("assets", "all"):
        graph = repository.asset_graph
        rows: list[list[Any]] = []
        for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
            node = graph.get(key)
            policy = node.freshness_policy
            overdue = getattr(policy, "fail_window", None)
            rows.append(
                [
                    key.to_user_string(),
                    node.group_name,
                    "daily" if node.is_partitioned else "",
                    len(node.check_keys),
                    f"{overdue.to_timedelta().total_seconds() / 3600:g} h" if overdue else "",
                ]
            )
        write(tabulate(rows, headers=["asset", "group", "partitions", "checks", "overdue after"]))
    if what in ("jobs", "all"):
        jobs = [j for j in repository.get_all_jobs() if not j.name.startswith("__")]
        write(
            tabulate(
                [[j.name, j.description or ""] for j in jobs], headers=["job", "what it runs"], maxcolwidths=[None, 90]
            )
        )
    if what in ("schedules", "sensors", "all"):
        rows = (
            [[s.name, "schedule", s.cron_schedule, s.default_status.value.lower()] for s in repository.schedule_defs]
            if what != "sensors"
            else []
        )
        if what != "schedules":
            rows += [[s.name, "sensor", "", s.default_status.value.lower()] for s in repository.sensor_defs]
        write(tabulate(rows, headers=["name", "kind", "cron", "default"]))
    return 0
