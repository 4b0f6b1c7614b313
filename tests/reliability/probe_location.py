"""A code location for the run supervision tests: Blikk's real assets and refresh job, a copy
of its time reports job on the multiprocess executor (its step is a process of its own that
outlives a killed worker), a step that never finishes, and an asset whose blocking check
fails."""

import time

import dagster as dg
import pandas as pd

from timesheet_assets.definitions import build_definitions

BLIKK_TIME_REPORTS = dg.AssetKey(["raw", "blikk", "time_reports"])


@dg.op(pool="probe")
def never_finishes(context: dg.OpExecutionContext) -> None:
    """A step stuck outside any vendor call (a C call, a lock): only killing stops it."""
    context.log.info("step started and will not finish")
    while True:
        time.sleep(0.2)


@dg.job(executor_def=dg.in_process_executor)
def hang():
    never_finishes()


@dg.asset(key=["probe", "checked"], group_name="probe")
def checked_probe() -> pd.DataFrame:
    return pd.DataFrame({"record_key": ["a", "a"], "hours": [1.0, 2.0]})


@dg.asset_check(asset=checked_probe, blocking=True)
def record_keys_unique(checked: pd.DataFrame) -> dg.AssetCheckResult:
    duplicated = int(checked["record_key"].duplicated().sum())
    return dg.AssetCheckResult(passed=duplicated == 0, metadata={"duplicates": duplicated})


@dg.asset(key=["probe", "after_checked"], deps=[checked_probe], group_name="probe")
def after_checked() -> pd.DataFrame:
    return pd.DataFrame({"n": [1]})


probe_multiprocess = dg.define_asset_job(
    "blikk_time_reports_multiprocess",
    selection=dg.AssetSelection.assets(BLIKK_TIME_REPORTS),
    executor_def=dg.multiprocess_executor,
)
checked_job = dg.define_asset_job("checked_probe_job", selection=dg.AssetSelection.assets(checked_probe, after_checked))

defs = dg.Definitions.merge(
    build_definitions(("blikk",)),
    dg.Definitions(
        assets=[checked_probe, after_checked],
        asset_checks=[record_keys_unique],
        jobs=[hang, probe_multiprocess, checked_job],
    ),
)
