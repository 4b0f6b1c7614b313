"""The summary of a finished run, for someone seeing the pipeline for the first time: what
each asset fetched and what the warehouse now holds, totals, which vendors feed which
conformed table, and the words a second run needs (an incremental 0 is not a failure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import DagsterEventType as E
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
from tabulate import tabulate

from .progress import step_label

CONFORMED = "conformed"


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


@dataclass
class AssetLine:
    key: dg.AssetKey
    metadata: dict[str, Any] = field(default_factory=dict)  # the run's first materialization
    partitions: int = 0
    step_key: str | None = None
    checks: list[tuple[str, bool, bool]] = field(default_factory=list)  # name, passed, blocking
    in_window: int | None = None
    in_table: int | None = None

    @property
    def layer(self) -> str:
        return self.key.path[0]

    @property
    def vendor(self) -> str:
        return self.key.path[1] if self.layer == "raw" else CONFORMED

    @property
    def incremental(self) -> bool:
        return self.metadata.get("write_mode") == "upsert"

    def _first_number(self, *names: str) -> int | None:
        for name in names:
            value = self.metadata.get(name)
            if isinstance(value, (int, float)):
                return int(value)
        return None

    @property
    def fetched(self) -> int | None:
        # A range run's partitions carry their own day's rows; the run's totals have names of
        # their own (docs/operations.md, "one vocabulary").
        return self._first_number("records_served", "rows_in_run", "rows")

    @property
    def quarantined(self) -> int | None:
        return self._first_number("quarantined_in_run", "quarantined")


@dataclass
class RunFacts:
    run: dg.DagsterRun
    lines: dict[dg.AssetKey, AssetLine]
    step_seconds: dict[str, float]
    failed_steps: dict[str, str]


def collect(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunFacts:
    lines: dict[dg.AssetKey, AssetLine] = {}
    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    records = instance.get_records_for_run(
        run.run_id,
        of_type={E.ASSET_MATERIALIZATION, E.ASSET_CHECK_EVALUATION, E.STEP_START, E.STEP_SUCCESS, E.STEP_FAILURE},
    ).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        step_key = event.step_key or ""
        if event.event_type == E.STEP_START:
            starts[step_key] = entry.timestamp
        elif event.event_type in (E.STEP_SUCCESS, E.STEP_FAILURE):
            seconds[step_key] = entry.timestamp - starts.get(step_key, entry.timestamp)
            if event.event_type == E.STEP_FAILURE:
                failed[step_key] = event.message or "failed"
        elif event.event_type == E.ASSET_MATERIALIZATION:
            materialization = entry.asset_materialization
            assert materialization is not None  # every materialization event carries one
            line = lines.setdefault(materialization.asset_key, AssetLine(materialization.asset_key))
            if not line.partitions:
                line.metadata = {k: _plain(v) for k, v in materialization.metadata.items()}
                line.step_key = event.step_key
            line.partitions += 1
        elif event.event_type == E.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            assert isinstance(evaluation, AssetCheckEvaluation)
            line = lines.setdefault(evaluation.asset_key, AssetLine(evaluation.asset_key))
            line.checks.append(
                (evaluation.check_name, evaluation.passed, evaluation.severity == dg.AssetCheckSeverity.ERROR)
            )
    return RunFacts(run=run, lines=lines, step_seconds=seconds, failed_steps=failed)


def count_rows(warehouse: str, facts: RunFacts, asset_graph, first: date, last: date) -> dict[str, dict[str, int]]:
    """Fill in what the warehouse holds (whole table, and the run's window for partitioned
    tables); return conformed rows per vendor in the window, per conformed table."""
    from ..settings import warehouse_password
    from ..storage import parse_target
    from ..storage.backend import backend_for

    by_vendor: dict[str, dict[str, int]] = {}
    target = parse_target(warehouse, warehouse_password())
    if target.kind == "duckdb" and not Path(warehouse).exists():
        return by_vendor
    with backend_for(target).reader() as session:
        for key, line in facts.lines.items():
            table = line.metadata.get("dagster/table_name")
            if not table or not asset_graph.has(key):
                continue
            qualified = ".".join(f'"{part}"' for part in str(table).split("."))
            line.in_table = session.execute(f"SELECT count(*) FROM {qualified}").fetchone()[0]
            column = _plain(asset_graph.get(key).metadata.get("partition_expr"))
            partitioned = column and asset_graph.get(key).is_partitioned
            window = f" WHERE CAST(({column}) AS DATE) BETWEEN ? AND ?" if partitioned else ""
            if window:
                line.in_window = session.execute(f"SELECT count(*) FROM {qualified}{window}", [first, last]).fetchone()[
                    0
                ]
            if line.layer == CONFORMED:
                rows = session.execute(
                    f"SELECT source_system, count(*) FROM {qualified}{window} GROUP BY 1 ORDER BY 1",
                    [first, last] if window else [],
                ).fetchall()
                by_vendor[key.to_user_string()] = {str(vendor): int(n) for vendor, n in rows}
    return by_vendor


def _number(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def feeds(asset_graph, keys: Iterable[dg.AssetKey]) -> tuple[dict[str, list[str]], list[str]]:
    """Conformed table -> the raw assets feeding it; raw vendors feeding no conformed table."""
    fed: dict[str, list[str]] = {}
    feeding_vendors: set[str] = set()
    vendors: set[str] = set()
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        if key.path[0] == "raw":
            vendors.add(key.path[1])
        if key.path[0] != CONFORMED or not asset_graph.has(key):
            continue
        parents = sorted(
            (p for p in asset_graph.get(key).parent_keys if p.path[0] == "raw"), key=lambda k: k.to_user_string()
        )
        fed[key.to_user_string()] = [p.to_user_string() for p in parents]
        feeding_vendors |= {p.path[1] for p in parents}
    return fed, sorted(vendors - feeding_vendors)


def render(
    facts: RunFacts, asset_graph, first: date, last: date, by_vendor: dict[str, dict[str, int]], seconds: float
) -> str:
    run = facts.run
    rows = []
    totals = {"fetched": 0, "quarantined": 0, "requests": 0}
    checks_passed = checks_total = 0
    failed_checks: list[str] = []
    ordered = sorted(facts.lines.values(), key=lambda fact: (fact.layer == CONFORMED, fact.key.to_user_string()))
    last_vendor = None
    for line in ordered:
        passed = sum(1 for _, ok, _ in line.checks if ok)
        checks_passed += passed
        checks_total += len(line.checks)
        failed_checks += [f"{line.key.to_user_string()} {name}" for name, ok, _ in line.checks if not ok]
        fetched = line.fetched if line.layer == "raw" else None
        if line.layer == "raw":
            for name, value in (
                ("fetched", fetched),
                ("quarantined", line.quarantined),
                ("requests", line.metadata.get("requests")),
            ):
                totals[name] += int(value or 0)
        step_seconds = facts.step_seconds.get(line.step_key or "", None)
        rows.append(
            [
                line.vendor if line.vendor != last_vendor else "",
                line.key.to_user_string(),
                (_number(fetched) + (" *" if line.incremental else "")) if line.layer == "raw" else "",
                _number(line.in_window) if line.in_window is not None else "-",
                _number(line.in_table),
                _number(line.quarantined) if line.layer == "raw" else "",
                _number(line.metadata.get("requests")),
                f"{step_seconds:.1f}" if step_seconds is not None else "",
                f"{passed}/{len(line.checks)}" if line.checks else "",
            ]
        )
        last_vendor = line.vendor
    status = {dg.DagsterRunStatus.SUCCESS: "succeeded"}.get(run.status, run.status.value.lower())
    days = (last - first).days + 1
    out = [
        f"Run {run.run_id[:8]} of {run.job_name} {status} in {seconds:.0f} s, work dates {first} .. {last} "
        f"({days} days).",
        "",
        tabulate(
            rows,
            headers=[
                "vendor",
                "asset",
                "fetched",
                "in window",
                "in table",
                "quarantined",
                "requests",
                "seconds",
                "checks",
            ],
            disable_numparse=True,
            colalign=("left", "left", "right", "right", "right", "right", "right", "right", "right"),
        ),
        "",
        f"Totals: {totals['fetched']:,} records fetched from the vendors, {totals['quarantined']:,} quarantined, "
        f"{totals['requests']:,} requests; checks {checks_passed} of {checks_total} passed"
        + (f" (not passed: {', '.join(failed_checks)})" if failed_checks else "")
        + ".",
    ]
    for table, counts in by_vendor.items():
        if counts:
            parts = ", ".join(f"{vendor} {n:,}" for vendor, n in counts.items())
            scope = "in the window" if table.endswith("timesheets") else "in all"
            out.append(f"{table} {scope}, by vendor: {parts} ({sum(counts.values()):,}).")
    fed, feeding_none = feeds(asset_graph, facts.lines)
    out += ["", "Which vendors feed which conformed table:"]
    for table, parents in fed.items():
        out.append(f"  {table} <- {', '.join(parents) if parents else 'no raw asset'}")
    for vendor in feeding_none:
        out.append(
            f"  {vendor} feeds no conformed table: its raw tables are the product (see docs/vendors/{vendor}.md)"
        )
    out += [
        "",
        "How to read it:",
        "  fetched    records the vendor served in this run. * = incremental: only records",
        "             changed since the last run are fetched, so 0 on a second run means nothing",
        "             changed at the vendor; the table keeps every earlier record.",
        "  in window  rows the warehouse holds for the run's work dates; in table: all rows.",
        "  A record can become several raw rows (an Ajera weekly timesheet is one row per day",
        "  worked), and conformed/timesheets keeps one line per employee, work date and",
        "  project/task in the window, without quarantined or deleted records: so fetched, raw",
        "  and conformed counts differ. Compare a vendor's raw 'in window' with its conformed",
        "  count above.",
    ]
    if facts.failed_steps:
        out += ["", "Failed steps:"] + [f"  {step_label(s)}: {m}" for s, m in facts.failed_steps.items()]
    return "\n".join(out)
