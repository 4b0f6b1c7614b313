"""Subprocess for the crash test: materializes a probe partition range into a warehouse (a
DuckDB path or a PostgreSQL URL) and, when told to, kills itself (SIGKILL, no cleanup)
half-way through the warehouse write."""

import os
import signal
import sys

import dagster as dg

from tests.support.probe_assets import lines, probe_lines_asset
from timesheet_assets.storage import WarehouseIOManager
from timesheet_assets.storage import warehouse as module

probe_lines = probe_lines_asset(lambda days: lines(days, 50, version=int(os.environ["PROBE_VERSION"])))


def main() -> None:
    warehouse, first, last, mode = sys.argv[1:5]
    if mode == "kill":
        original = module.ByNamePandasTypeHandler.handle_output

        def die_mid_insert(self, context, table_slice, obj, connection):
            # The old slice is deleted and half the new rows are inserted in this transaction.
            half = obj.head(25)
            rows = ", ".join(f"('{r.record_key}', DATE '{r.work_date}', {int(r.version)})" for r in half.itertuples())
            connection.execute(f"INSERT INTO probe.lines (record_key, work_date, version) VALUES {rows}")
            os.kill(os.getpid(), signal.SIGKILL)
            return original(self, context, table_slice, obj, connection)

        module.ByNamePandasTypeHandler.handle_output = die_mid_insert
    dg.materialize(
        [probe_lines],
        resources={"io_manager": WarehouseIOManager(database=warehouse)},
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
    )
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
