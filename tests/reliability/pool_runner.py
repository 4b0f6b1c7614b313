"""Subprocess for the cross-run concurrency test: one run of a vendor's date-windowed raw
asset against a sandbox, on the Dagster instance in DAGSTER_HOME. The vendor's resource is
the deployed one (its environment variables) with ``IN_FLIGHT`` calls at once, and a read
timeout long enough for a sandbox that holds requests at its door (sandbox/gate.py)."""

import json
import os
import sys
import time
from pathlib import Path

import dagster as dg

from timesheet_assets.definitions import build_definitions
from timesheet_assets.storage import WarehouseIOManager


def wait_for_go(barrier: Path, index: str) -> None:
    """Say this process is ready, then wait for the test's go for this run: the test starts
    the runs when it chooses, whatever each process's start-up took."""
    (barrier / f"{index}.ready").touch()
    deadline = time.monotonic() + 120
    while not (barrier / f"{index}.go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go from the test within 120 s")
        time.sleep(0.01)


def main() -> None:
    vendor, asset_path, first, last, warehouse, barrier, index, in_flight = sys.argv[1:9]
    defs = build_definitions((vendor,))
    resource = type(defs.resources[vendor]).from_values(os.environ, max_in_flight=int(in_flight), timeout_seconds=150.0)
    key = dg.AssetKey(asset_path.split("/"))
    asset = next(a for a in defs.assets if key in a.keys)
    wait_for_go(Path(barrier), index)
    started = time.time()
    result = dg.materialize(
        [asset],
        resources={**dict(defs.resources), vendor: resource, "io_manager": WarehouseIOManager(database=warehouse)},
        instance=dg.DagsterInstance.get(),
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        raise_on_error=False,
    )
    print(json.dumps({"success": result.success, "started": started, "ended": time.time()}), flush=True)


if __name__ == "__main__":
    main()
