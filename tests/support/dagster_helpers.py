"""Running assets in tests: a partition range in one run, against a temp warehouse."""

from __future__ import annotations

from datetime import date
from typing import Any, Sequence

import dagster as dg
import duckdb
import pandas as pd

from timesheet_assets.storage import WarehouseIOManager

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def range_tags(first: date, last: date) -> dict[str, str]:
    return {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}


def materialize(
    assets: Sequence[Any],
    resources: dict[str, Any],
    warehouse: str,
    *,
    first: date | None = None,
    last: date | None = None,
    instance: dg.DagsterInstance | None = None,
    selection: Any = None,
    run_config: Any = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` (one run; a date range when ``first``/``last`` are given)."""
    return dg.materialize(
        assets,
        resources={"io_manager": WarehouseIOManager(database=warehouse), **resources},
        instance=instance,
        tags=range_tags(first, last) if first and last else None,
        selection=selection,
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def read_table(warehouse: str, table: str) -> pd.DataFrame:
    with duckdb.connect(warehouse, read_only=True) as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchdf()


def materialization_metadata(result: dg.ExecuteInProcessResult, key: Sequence[str]) -> dict[str, Any]:
    """Metadata of the (last) materialization of asset ``key`` in ``result``, as plain values."""
    events = result.asset_materializations_for_node(
        next(
            node
            for node in {e.node_name for e in result.all_node_events}
            if any(
                m.asset_key == dg.AssetKey(list(key)) for m in result.asset_materializations_for_node(node)
            )
        )
    )
    matching = [e for e in events if e.asset_key == dg.AssetKey(list(key))]
    return {k: getattr(v, "value", v) for k, v in matching[-1].metadata.items()}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure and retry request of the run, causes included, as the UI shows them."""
    texts = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if event.event_type_value in ("STEP_FAILURE", "STEP_UP_FOR_RETRY") and error is not None:
            texts.append(error.to_string())
    assert texts, "the run was expected to fail"
    return "\n".join(texts)


def step_retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")
