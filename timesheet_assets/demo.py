"""`timesheet-assets demo` and `dev`: the whole pipeline against the local sandboxes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DEMO_HOME = Path(".dagster_home")
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def _prepare_home(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # SQLite storage (the default) under this folder; pools as in production.
        config.write_text(
            "telemetry:\n  enabled: false\n"
            "concurrency:\n  pools:\n    default_limit: 1\n"
        )
    os.environ["DAGSTER_HOME"] = str(home.resolve())


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def _summary_rows(result, instance) -> tuple[list[list[Any]], bool]:
    import dagster as dg

    durations: dict[str, float] = {}
    starts: dict[str, float] = {}
    for record in instance.all_logs(result.run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            durations[event.step_key] = record.timestamp - starts.get(event.step_key, record.timestamp)
    checks: dict[str, list[str]] = {}
    all_passed = True
    for evaluation in result.get_asset_check_evaluations():
        mark = "ok" if evaluation.passed else ("FAIL" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "warn")
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            all_passed = False
        checks.setdefault(evaluation.asset_key.to_user_string(), []).append(f"{evaluation.check_name}:{mark}")
    rows = []
    seen: set[str] = set()
    for node in sorted({e.node_name for e in result.all_node_events if e.node_name}):
        for materialization in result.asset_materializations_for_node(node):
            key = materialization.asset_key.to_user_string()
            # A range run records one materialization per partition, all with the run's metadata.
            if key in seen:
                continue
            seen.add(key)
            meta = {k: _value(v) for k, v in materialization.metadata.items()}
            passed = checks.get(key, [])
            rows.append(
                [
                    key,
                    meta.get("rows", meta.get("dagster/row_count", meta.get("dagster/partition_row_count", ""))),
                    meta.get("requests", ""),
                    meta.get("retries", ""),
                    meta.get("quarantined", ""),
                    f"{durations.get(node, 0.0):.1f}",
                    f"{sum(c.endswith(':ok') for c in passed)}/{len(passed)} passed" if passed else "",
                ]
            )
    return rows, all_passed


def _warehouse_shown() -> str:
    """The warehouse as it may be printed: a URL's password masked."""
    from .storage import redact_url

    return redact_url(os.environ["TIMESHEET_WAREHOUSE"])


def run_demo(days: int = 14, records: int = 300) -> int:
    # Dagster flags BackfillPolicy and friends as beta on every definition; not news to a demo.
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
    _prepare_home(DEMO_HOME)
    os.environ.setdefault("TIMESHEET_WAREHOUSE", "warehouse.duckdb")
    import dagster as dg
    from tabulate import tabulate

    from .definitions import build_definitions
    from .sandbox.data import SandboxConfig
    from .sandbox.registry import serve_sandboxes
    from .settings import enabled_vendors

    today = date.today()
    first = today - timedelta(days=days - 1)
    vendors = enabled_vendors()
    config = SandboxConfig(time_records=records, days=max(days, 30), anchor_date=today)
    started = time.monotonic()
    with serve_sandboxes(vendors, config) as running:
        for sandbox in running.values():
            os.environ.update(sandbox.env)
        print(f"sandboxes on loopback: {', '.join(f'{v} {s.server.url}' for v, s in running.items())}")
        defs = build_definitions(vendors)
        instance = dg.DagsterInstance.get()
        print(f"materializing every asset for work dates {first} .. {today} (one run) ...", flush=True)
        result = dg.materialize(
            list(defs.assets or []),
            resources=dict(defs.resources or {}),
            instance=instance,
            tags={RANGE_START: first.isoformat(), RANGE_END: today.isoformat()},
            # The full event log is in the instance (and the UI); the terminal gets the summary.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
        )
        rows, checks_ok = _summary_rows(result, instance)
    print()
    print(tabulate(rows, headers=["asset", "rows", "requests", "retries", "quarantined", "seconds", "checks"]))
    print()
    status = "succeeded" if result.success and checks_ok else "FAILED"
    print(
        f"run {result.run_id} {status} in {time.monotonic() - started:.1f} s; warehouse: "
        f"{_warehouse_shown()}; Dagster home: {DEMO_HOME}/ (open it with `make dev`)"
    )
    return 0 if result.success and checks_ok else 1


def run_dev(port: int = 3000) -> int:
    _prepare_home(Path(".dagster_home"))
    os.environ.setdefault("TIMESHEET_WAREHOUSE", "warehouse.duckdb")
    from .sandbox.data import SandboxConfig
    from .sandbox.registry import serve_sandboxes
    from .settings import enabled_vendors

    with serve_sandboxes(enabled_vendors(), SandboxConfig()) as running:
        env = dict(os.environ)
        for sandbox in running.values():
            env.update(sandbox.env)
        print(f"sandboxes on loopback: {', '.join(f'{v} {s.server.url}' for v, s in running.items())}")
        command = [
            sys.executable, "-m", "dagster", "dev", "-m", "timesheet_assets.definitions",
            "-h", "127.0.0.1", "-p", str(port),
        ]
        try:
            return subprocess.call(command, env=env)
        except KeyboardInterrupt:
            return 0
