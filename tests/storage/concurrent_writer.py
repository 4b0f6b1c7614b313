"""Subprocess for the two-vendors-at-once test: one vendor's run writing its raw table and its
day of a shared conformed table. With ``hold``, the raw write stops before its commit until
the test creates ``<signals>/<vendor>.go``, having created ``<signals>/<vendor>.inside``."""

import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from timesheet_assets.ingest import DATE_WINDOW_BACKFILL, daily_partitions, partition_window
from timesheet_assets.storage import WarehouseIOManager
from timesheet_assets.storage import warehouse as module


def build(vendor: str) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=["raw", vendor, "lines"],
        partitions_def=daily_partitions("2026-01-01"),
        backfill_policy=DATE_WINDOW_BACKFILL,
        metadata={"partition_expr": "work_date"},
    )
    def raw_lines(context: dg.AssetExecutionContext) -> pd.DataFrame:
        first, _ = partition_window(context)
        return pd.DataFrame(
            {"record_key": [f"{vendor}:{i}" for i in range(500)], "work_date": [first] * 500, "hours": [1.0] * 500}
        )

    @dg.asset(
        key=["conformed", "probe_timesheets"],
        ins={"raw_lines": dg.AssetIn(key=["raw", vendor, "lines"])},
        partitions_def=daily_partitions("2026-01-01"),
        backfill_policy=DATE_WINDOW_BACKFILL,
        metadata={"partition_expr": "work_date", "primary_key": ["source_system", "entry_id"]},
    )
    def conformed(raw_lines: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "source_system": vendor,
                "entry_id": raw_lines["record_key"],
                "work_date": raw_lines["work_date"],
                "total_hours": raw_lines["hours"],
            }
        )

    return [raw_lines, conformed]


def hold_raw_write(vendor: str, signals: Path) -> None:
    original = module.ByNamePandasTypeHandler.handle_output

    def held(self, context, table_slice, obj, connection):
        metadata = original(self, context, table_slice, obj, connection)
        if table_slice.schema == vendor:
            (signals / f"{vendor}.inside").touch()
            deadline = time.monotonic() + 120
            while not (signals / f"{vendor}.go").exists():
                if time.monotonic() > deadline:
                    raise SystemExit("no go from the test within 120 s")
                time.sleep(0.01)
        return metadata

    module.ByNamePandasTypeHandler.handle_output = held


def main() -> None:
    warehouse, vendor, day, hold, signals = sys.argv[1:6]
    if hold == "1":
        hold_raw_write(vendor, Path(signals))
    result = dg.materialize(
        build(vendor),
        resources={"io_manager": WarehouseIOManager(database=warehouse)},
        tags={"dagster/asset_partition_range_start": day, "dagster/asset_partition_range_end": day},
        raise_on_error=False,
    )
    print("SUCCESS" if result.success else "FAILED", flush=True)


if __name__ == "__main__":
    main()
