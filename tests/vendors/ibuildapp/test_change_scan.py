"""Changes beyond the days a run reads: ``user/history`` since the last run's watermark, the
days the changed entries start on now reported as ``days_to_reread``, and what the schedules and
the sensor make of them (deletions are left to the weekly deep refresh)."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import materialization_metadata, read_table
from tests.support.deployment import Deployment
from tests.vendors.ibuildapp.conftest import resource_for, small_config
from timesheet_assets.schedules import DAYS_TO_REREAD, REFRESH_TAG
from timesheet_assets.storage import WarehouseIOManager
from timesheet_assets.vendors.ibuildapp import sandbox as sandbox_module
from timesheet_assets.vendors.ibuildapp.assets import time_entries
from timesheet_assets.vendors.ibuildapp.changes import WATERMARK, changed_since
from timesheet_assets.vendors.ibuildapp.sandbox import IBuildAppMutations, state_of

CONFIG = small_config(time_records=160, days=20, employees=5)
ANCHOR = CONFIG.anchor_date
TIME_ENTRIES = ["raw", "ibuildapp", "time_entries"]


def day(n: int) -> date:
    return ANCHOR - timedelta(days=n)


def run(server, warehouse, instance, first: date, last: date, tags: dict[str, str] | None = None, **options: Any):
    return dg.materialize(
        [time_entries],
        resources={"io_manager": WarehouseIOManager(database=warehouse), "ibuildapp": resource_for(server, **options)},
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
            **(tags or {}),
        },
    )


def days_of(result) -> list[str]:
    value = materialization_metadata(result, TIME_ENTRIES)[DAYS_TO_REREAD]
    return json.loads(value) if isinstance(value, str) else list(value)


def test_a_first_run_sets_the_watermark_and_asks_no_history(start_sandbox, warehouse, instance):
    server = start_sandbox(CONFIG)
    started = int(time.time())
    result = run(server, warehouse, instance, CONFIG.first_date, ANCHOR)
    metadata = materialization_metadata(result, TIME_ENTRIES)
    assert metadata["change_scan"].startswith("first run")
    assert started - 300 <= metadata[WATERMARK] <= int(time.time()) - 300
    assert days_of(result) == []
    assert server.sandbox.stats.count("/user/history") == 0 and server.sandbox.stats.count("/user/search") == 0


def _change_old_days(source: IBuildAppMutations) -> dict[str, Any]:
    """Edit, approve, add, move out of the window and delete, each on its own day outside the
    second run's window (day 0..4)."""
    taken: set[str] = set()

    def pick(n: int, unapproved: bool = False) -> str:
        lines = source.expected_lines(day(n), day(n))
        if unapproved:
            lines = lines[lines["status"] != "approved"]
        key = next(k for k in lines["entry_id"] if k not in taken)
        taken.add(key)
        return key

    source.edit_hours(pick(15), 1.0)
    source.approve(pick(14, unapproved=True))
    added = source.add_late(day(13))
    moved = source.move(pick(2), day(12))  # from inside the window out of it
    source.delete(pick(11))
    return {"added": added, "moved": moved}


@pytest.mark.parametrize(
    "reading, times",
    [("changed", "epoch"), ("all", "epoch"), ("changed", "text")],
    ids=["changed-entries", "whole-history", "server-local-text"],
)
def test_old_changes_become_days_to_reread(start_sandbox, warehouse, instance, reading, times, monkeypatch):
    server = start_sandbox(CONFIG)
    server.sandbox.extra.update(history_reading=reading, history_times=times)
    source: IBuildAppMutations = server.sandbox.extra["mutations"]
    first = run(server, warehouse, instance, CONFIG.first_date, ANCHOR)
    watermark = materialization_metadata(first, TIME_ENTRIES)[WATERMARK]

    # The edits and the second run come a minute later on the server's clock (the two runs may
    # fall within one second here, and the server's times have whole seconds).
    monkeypatch.setattr(sandbox_module, "clock", SimpleNamespace(time=lambda: time.time() + 60))
    changed = _change_old_days(source)
    server.sandbox.stats.reset()
    second = run(server, warehouse, instance, day(4), ANCHOR)

    assert days_of(second) == sorted(d.isoformat() for d in (day(15), day(14), day(13), day(12)))
    metadata = materialization_metadata(second, TIME_ENTRIES)
    assert metadata["change_scan"] == "scanned" and metadata["change_scan_since"] == watermark
    assert metadata["change_scan_users"] == CONFIG.employees + 1  # the employees and the account
    assert metadata["change_scan_changed_records"] == 4  # the deleted entry is in no history
    assert metadata[WATERMARK] > watermark
    stats = server.sandbox.stats
    assert stats.count("/user/search") == 1 and stats.count("/user/history") == CONFIG.employees + 1
    # The moved entry left the window (its old day was replaced without it) and the late one is
    # on an old day: neither is in the warehouse until the sensor re-reads the reported days.
    keys = set(read_table(warehouse, "ibuildapp.time_entries")["record_key"])
    assert changed["moved"] not in keys and changed["added"] not in keys


def test_runs_the_sensor_launched_do_not_scan_and_keep_the_watermark(start_sandbox, warehouse, instance):
    server = start_sandbox(CONFIG)
    first = run(server, warehouse, instance, CONFIG.first_date, ANCHOR)
    watermark = materialization_metadata(first, TIME_ENTRIES)[WATERMARK]
    IBuildAppMutations(state_of(server.app)).edit_hours(
        IBuildAppMutations(state_of(server.app)).entry_keys(day(15), day(15))[0], 0.5
    )
    server.sandbox.stats.reset()
    reread = run(server, warehouse, instance, day(15), day(15), tags={REFRESH_TAG: "changed-days"})
    metadata = materialization_metadata(reread, TIME_ENTRIES)
    assert metadata[WATERMARK] == watermark and metadata["change_scan"].startswith("re-read of changed days")
    assert days_of(reread) == []
    assert server.sandbox.stats.count("/user/history") == 0


def test_changed_since_reads_the_stamps_the_document_lists():
    since = 1_700_000_000
    assert changed_since({"updated": since + 5}, since)
    assert changed_since({"updated": since - 5, "approve_date": str(since + 1)}, since)
    assert not changed_since({"updated": since - 5, "created": since - 50}, since)
    # Text carries no offset (the doc's own example is three hours off): 14 h of slack.
    text = pd.Timestamp(since - 10 * 3600, unit="s").strftime("%Y-%m-%d %H:%M:%S")
    assert changed_since({"updated": text}, since)
    old_text = pd.Timestamp(since - 15 * 3600, unit="s").strftime("%Y-%m-%d %H:%M:%S")
    assert not changed_since({"updated": old_text}, since)
    # Nothing shows the entry did not change.
    assert changed_since({"id": 3}, since) and changed_since({"updated": "soon"}, since)


# -- with the schedules and the sensor ---------------------------------------------------------------
TODAY = date(2026, 3, 20)
SCHEDULED = dict(seed=5, time_records=200, projects=5, employees=6, days=35, anchor_date=TODAY)


def test_an_old_edit_is_re_read_by_the_sensor_and_an_old_deletion_by_the_deep_refresh(tmp_path, monkeypatch, instance):
    from timesheet_assets.definitions import build_definitions
    from timesheet_assets.sandbox.data import SandboxConfig
    from timesheet_assets.sandbox.registry import serve_sandboxes

    warehouse = str(tmp_path / "warehouse.duckdb")
    with serve_sandboxes(("ibuildapp",), SandboxConfig(**SCHEDULED)) as running:
        for name, value in running["ibuildapp"].env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TIMESHEET_WAREHOUSE", warehouse)
        monkeypatch.setenv("TIMESHEET_LOOKBACK_DAYS", "7")
        monkeypatch.setenv("TIMESHEET_DEEP_REFRESH_DAYS", "30")
        deployment = Deployment(build_definitions(("ibuildapp",)), instance)
        source: IBuildAppMutations = running["ibuildapp"].server.sandbox.extra["mutations"]

        def refresh(schedule: str) -> list[dg.ExecuteInProcessResult]:
            runs = deployment.tick_schedule(schedule, TODAY) + deployment.tick_sensor("reread_changed_days")
            assert runs and all(r.success for r in runs)
            return runs

        def conformed(n: int) -> pd.DataFrame:
            table = read_table(warehouse, "conformed.timesheets")
            table = table[pd.to_datetime(table["work_date"]).dt.date == TODAY - timedelta(days=n)]
            return table.set_index("entry_id")

        refresh("deep_refresh")
        refresh("daily_refresh")
        edited = source.entry_keys(TODAY - timedelta(days=10), TODAY - timedelta(days=10))[0]
        deleted = source.entry_keys(TODAY - timedelta(days=25), TODAY - timedelta(days=25))[0]
        hours_before = conformed(10).loc[edited, "total_hours"]
        source.edit_hours(edited, 1.25)
        source.delete(deleted)

        daily = refresh("daily_refresh")
        # The daily run found the edit and the sensor re-read exactly its day.
        assert [r.dagster_run.tags.get("dagster/asset_partition_range_start") for r in daily[1:]] == [
            (TODAY - timedelta(days=10)).isoformat()
        ]
        assert conformed(10).loc[edited, "total_hours"] == pytest.approx(hours_before + 1.25)
        assert deleted in conformed(25).index  # nothing points at a deletion

        refresh("deep_refresh")
        assert deleted not in conformed(25).index


def test_only_days_outside_the_run_with_a_partition_are_reported():
    from timesheet_assets.vendors.ibuildapp.assets import days_to_reread

    first, last = date(2025, 3, 10), date(2025, 3, 16)
    tomorrow_but_one = date.today() + timedelta(days=2)
    days = [date(2023, 12, 31), first - timedelta(days=1), first, last, last + timedelta(days=1), tomorrow_but_one]
    # Partitions start on TIMESHEET_START_DATE (2024-01-01 by default) and end with today's.
    assert days_to_reread(days, first, last) == [first - timedelta(days=1), last + timedelta(days=1)]
