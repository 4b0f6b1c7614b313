"""The demo's summary counts a range run by the run's totals, not by one day's partition."""

import dagster as dg

from timesheet_assets.commands.summary import AssetLine


def test_a_range_runs_line_counts_the_run_not_its_first_day():
    line = AssetLine(dg.AssetKey(["raw", "ibuildapp", "time_entry_side_tables"]))
    line.metadata = {"rows": 36, "rows_in_run": 538, "quarantined": 0, "quarantined_in_run": 4}
    assert (line.fetched, line.quarantined) == (538, 4)


def test_what_the_vendor_served_comes_before_the_rows_written():
    line = AssetLine(dg.AssetKey(["raw", "blikk", "time_reports"]))
    line.metadata = {"records_served": 300, "rows_in_run": 298, "rows": 20, "quarantined": 1}
    assert (line.fetched, line.quarantined) == (300, 1)


def test_an_unpartitioned_line_reads_its_own_counts():
    line = AssetLine(dg.AssetKey(["raw", "aims360", "orders_open_orders"]))
    line.metadata = {"rows": 300}
    assert (line.fetched, line.quarantined) == (300, None)
