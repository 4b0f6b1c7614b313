"""The warehouse follows the source after the first load, per vendor, over real HTTP.

Load the deep window, change the vendor the way its users do (edit hours, approve, delete,
add late, move between days inside the daily window, into it and out of it, and the same on
days older than the daily lookback), run exactly what the schedules and sensors would run, and
compare ``conformed/timesheets`` with what the sandbox serves, entry by entry, with no key
twice anywhere in the table.

``CAUGHT_BY`` is the vendor × change table of docs/reliability.md: which mechanism brings a
change older than the daily lookback into the warehouse (``change scan``: the daily run's own
change capture and the ``reread_changed_days`` sensor; ``weekly``: only ``deep_refresh``).
Changes inside the daily window are caught by the daily refresh for every vendor.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import read_table
from tests.support.deployment import Deployment, materialized_partitions
from timesheet_assets.conformed.assets import TIMESHEETS_KEY
from timesheet_assets.definitions import build_definitions
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.mutations import EXPECTED_COLUMNS, SourceMutations
from timesheet_assets.sandbox.registry import serve_sandboxes
from timesheet_assets.schedules import MERGE_GAP_DAYS
from timesheet_assets.vendors.registry import load_plugin

TODAY = date(2026, 3, 20)
LOOKBACK = 14
DEEP = 40
WINDOW = (TODAY - timedelta(days=LOOKBACK - 1), TODAY)
DEEP_WINDOW = (TODAY - timedelta(days=DEEP - 1), TODAY)
CONFIG = SandboxConfig(seed=11, time_records=240, projects=6, employees=8, days=DEEP + 5, anchor_date=TODAY)

OLD_CHANGES = ("old_edit", "old_approve", "old_delete", "old_add", "moved_out_of_window")
CAUGHT_BY: dict[str, dict[str, str]] = {
    # Blikk's scan sees edits and moves (updatedDate), late reports (createdDate) and attests
    # (attestedDate, sentToAttestDate); it cannot see deletions, which wait for the weekly
    # deep refresh (the deletion's day is further than MERGE_GAP_DAYS from every other change,
    # so no re-read of a neighbouring day catches it by chance).
    "blikk": {
        "old_edit": "change scan",
        "old_approve": "change scan",
        "old_delete": "weekly",
        "old_add": "change scan",
        "moved_out_of_window": "change scan",
    },
    # No deep refresh: every listed card's updatedAt is compared with the stored one each run,
    # so each old change is fetched by the daily run and its day rebuilt through the sensor.
    "aimsio": {change: "change scan" for change in OLD_CHANGES},
    # Ajera's status scan lists the weeks back to the deep window and compares their approval
    # flags and Timesheet Total with the warehouse: an edit, approval, deleted cell and late
    # timesheet each change the week's total or flags; hours moved out of the window land in
    # another week, whose total changes.
    "ajera": {change: "change scan" for change in OLD_CHANGES},
    # user/history finds edits, approvals, late entries and moves. It cannot see a deletion,
    # which waits for the weekly deep refresh.
    "ibuildapp": {
        "old_edit": "change scan",
        "old_approve": "change scan",
        "old_delete": "weekly",
        "old_add": "change scan",
        "moved_out_of_window": "change scan",
    },
}


def _frame(table: pd.DataFrame, vendor: str, first: date, last: date) -> pd.DataFrame:
    rows = table[table["source_system"] == vendor].copy()
    rows["work_date"] = pd.to_datetime(rows["work_date"]).dt.date
    rows = rows[(rows["work_date"] >= first) & (rows["work_date"] <= last)]
    rows["entry_id"] = rows["entry_id"].astype(str)
    rows["total_hours"] = rows["total_hours"].astype(float).round(4)
    return rows[list(EXPECTED_COLUMNS)].sort_values("entry_id").reset_index(drop=True)


def _differences(actual: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    expected = expected.copy()
    expected["entry_id"] = expected["entry_id"].astype(str)
    expected["total_hours"] = expected["total_hours"].astype(float).round(4)
    merged = actual.merge(expected, on="entry_id", how="outer", suffixes=("_warehouse", "_source"), indicator=True)
    same = merged["_merge"] == "both"
    for column in ("work_date", "total_hours", "status"):
        same &= merged[f"{column}_warehouse"] == merged[f"{column}_source"]
    return merged[~same]


class Lifecycle:
    def __init__(self, vendor: str, deployment: Deployment, mutations: SourceMutations, warehouse: str):
        self.vendor = vendor
        self.deployment = deployment
        self.mutations = mutations
        self.warehouse = warehouse

    def conformed(self) -> pd.DataFrame:
        return read_table(self.warehouse, "conformed.timesheets")

    def differences(self, first: date, last: date) -> pd.DataFrame:
        return _differences(
            _frame(self.conformed(), self.vendor, first, last), self.mutations.expected_lines(first, last)
        )

    def assert_no_key_twice(self) -> None:
        table = self.conformed()
        assert not table.duplicated(["source_system", "entry_id"]).any()
        raw_key = load_plugin(self.vendor).timesheets[0]
        raw = read_table(self.warehouse, ".".join(raw_key.path[-2:]))
        assert not raw.duplicated(["record_key"]).any()

    def refresh(self, schedule: str) -> list[dg.ExecuteInProcessResult]:
        runs = self.deployment.tick_schedule(schedule, TODAY)
        runs += self.deployment.tick_sensor("reread_changed_days")
        # deep_refresh launches nothing for a vendor whose raw table is not windowed (Aimsio).
        windowed = load_plugin(self.vendor).timesheets_daily_partitioned
        assert runs or (schedule == "deep_refresh" and not windowed), f"{schedule} launched no run"
        assert all(run.success for run in runs), [r.run_id for r in runs if not r.success]
        return runs


@pytest.fixture(params=sorted(CAUGHT_BY))
def lifecycle(request, tmp_path, monkeypatch, instance):
    vendor = request.param
    warehouse = str(tmp_path / "warehouse.duckdb")
    with serve_sandboxes((vendor,), CONFIG) as running:
        for name, value in running[vendor].env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TIMESHEET_WAREHOUSE", warehouse)
        monkeypatch.setenv("TIMESHEET_LOOKBACK_DAYS", str(LOOKBACK))
        monkeypatch.setenv("TIMESHEET_DEEP_REFRESH_DAYS", str(DEEP))
        defs = build_definitions((vendor,))
        mutations = running[vendor].server.sandbox.extra["mutations"]
        yield Lifecycle(vendor, Deployment(defs, instance), mutations, warehouse)


def _unapproved(source: SourceMutations, first: date, last: date) -> list[str]:
    lines = source.expected_lines(first, last)
    return [str(k) for k in lines.loc[lines["status"] != "approved", "entry_id"]]


def _pick(keys: list[str], taken: set[str]) -> str:
    key = next(k for k in keys if k not in taken)
    taken.add(key)
    return key


def test_the_warehouse_follows_every_kind_of_change(lifecycle: Lifecycle):
    lc, source = lifecycle, lifecycle.mutations
    first_load = lc.refresh("deep_refresh") + lc.refresh("daily_refresh")
    assert lc.differences(*DEEP_WINDOW).empty
    lc.assert_no_key_twice()

    # Inside the daily window.
    taken: set[str] = set()
    day = lambda n: TODAY - timedelta(days=n)  # noqa: E731
    in_window = lambda n: source.entry_keys(day(n), day(n))  # noqa: E731
    source.edit_hours(_pick(in_window(1), taken), 1.5)
    source.edit_hours(_pick(in_window(6), taken), -0.25)
    source.approve(_pick(_unapproved(source, *WINDOW), taken))
    source.delete(_pick(in_window(2), taken))
    source.add_late(day(3))
    source.move(_pick(in_window(5), taken), day(2))
    source.move(_pick(source.entry_keys(day(20), day(20)), taken), day(1))  # from outside into the window
    moved_out = source.move(_pick(in_window(4), taken), day(25))  # out of the window
    # Older than the daily lookback.
    old = {
        "old_edit": lambda: source.edit_hours(_pick(source.entry_keys(day(30), day(30)), taken), 2.0),
        "old_approve": lambda: source.approve(_pick(_unapproved(source, day(31), day(31)), taken)),
        # Day 16: more than MERGE_GAP_DAYS from the other old changes (days 25..33), so only a
        # mechanism that sees the deletion itself re-reads it.
        "old_delete": lambda: source.delete(_pick(source.entry_keys(day(16), day(16)), taken)),
        "old_add": lambda: source.add_late(day(33)),
    }
    old_days = {"old_edit": 30, "old_approve": 31, "old_delete": 16, "old_add": 33, "moved_out_of_window": 25}
    assert all(abs(n - old_days["old_delete"]) > MERGE_GAP_DAYS for c, n in old_days.items() if c != "old_delete")
    for change in old.values():
        change()

    daily = lc.refresh("daily_refresh")
    refreshed = [run for run in daily if TIMESHEETS_KEY in materialized_keys(run)]
    assert refreshed, "the daily refresh rebuilt no conformed day"
    expected_days = {(WINDOW[0] + timedelta(days=i)).isoformat() for i in range(LOOKBACK)}
    assert any(materialized_partitions(run, TIMESHEETS_KEY) >= expected_days for run in refreshed)
    assert lc.differences(*WINDOW).empty, lc.differences(*WINDOW).to_string()
    lc.assert_no_key_twice()
    table = lc.conformed()
    assert (table[table["source_system"] == lc.vendor]["entry_id"].astype(str) == moved_out).sum() <= 1

    caught = CAUGHT_BY[lc.vendor]
    for change, n in old_days.items():
        differs = not lc.differences(day(n), day(n)).empty
        if caught[change] == "change scan":
            assert not differs, f"{change} on {day(n)} should be caught by the daily refresh's change scan"
        else:
            assert differs, f"{change} on {day(n)} is caught by the daily refresh: CAUGHT_BY is out of date"

    lc.refresh("deep_refresh")
    assert lc.differences(*DEEP_WINDOW).empty, lc.differences(*DEEP_WINDOW).to_string()
    lc.assert_no_key_twice()
    assert first_load


def materialized_keys(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events()}
