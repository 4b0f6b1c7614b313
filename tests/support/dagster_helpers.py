"""Running assets in tests: a partition range in one run, against a temp warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

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


def materialize_definitions(
    defs: dg.Definitions,
    warehouse: str,
    instance: dg.DagsterInstance,
    first: date,
    last: date,
    selection: Any = None,
) -> dg.ExecuteInProcessResult:
    """Every asset of ``defs`` (or those of ``selection``) in one run over ``first``..``last``,
    on ``warehouse``; a failure is returned, not raised."""
    resources = {**dict(defs.resources or {}), "io_manager": WarehouseIOManager(database=warehouse)}
    return dg.materialize(
        list(defs.assets or []),
        resources=resources,
        instance=instance,
        selection=selection,
        tags=range_tags(first, last),
        raise_on_error=False,
    )


def export_sandbox_env(sandboxes: Any, monkeypatch: Any) -> None:
    """Point every vendor's settings at its running sandbox (``serve_sandboxes``)."""
    for sandbox in sandboxes.values():
        for name, value in sandbox.env.items():
            monkeypatch.setenv(name, value)


def staging_tables(warehouse: str) -> list[str]:
    """The staging tables left in the warehouse (``storage/staging.py``)."""
    rows = query(warehouse, "SELECT table_name FROM information_schema.tables WHERE table_schema = '_staging'")
    return [name for (name,) in rows]


def is_postgres(warehouse: str) -> bool:
    return warehouse.startswith(("postgresql://", "postgres://"))


def _postgres(warehouse: str):
    """A driver connection to a PostgreSQL warehouse, opened the test's own way (not through
    the storage layer under test); password from the URL or TIMESHEET_WAREHOUSE_PASSWORD."""
    import psycopg2

    from timesheet_assets.settings import warehouse_password
    from timesheet_assets.storage import parse_target

    return psycopg2.connect(**parse_target(warehouse, warehouse_password()).connect_kwargs())


def query(warehouse: str, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """Rows of ``sql`` (``?`` placeholders) on either backend; statements that change rows
    are committed."""
    if not is_postgres(warehouse):
        with duckdb.connect(warehouse) as conn:
            result = conn.execute(sql, list(params))
            return result.fetchall() if result.description else []
    conn = _postgres(warehouse)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), list(params))
            rows = cursor.fetchall() if cursor.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


def column_types(warehouse: str, table: str) -> dict[str, str]:
    """Column name -> type as the backend's catalog spells it (DuckDB ``BIGINT``,
    PostgreSQL ``bigint``)."""
    schema, name = table.split(".")
    if not is_postgres(warehouse):
        sql = (
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ? ORDER BY ordinal_position"
        )
    else:
        sql = (
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND c.relname = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        )
    return dict(query(warehouse, sql, [schema, name]))


def read_table(warehouse: str, table: str) -> pd.DataFrame:
    """Every row of ``schema.table``. From PostgreSQL, dates and timestamps come back as pandas
    datetimes and numerics as floats, as DuckDB gives them, so tests compare alike."""
    if not is_postgres(warehouse):
        with duckdb.connect(warehouse, read_only=True) as conn:
            return conn.execute(f"SELECT * FROM {table}").fetchdf()
    types = column_types(warehouse, table)
    conn = _postgres(warehouse)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            frame = pd.DataFrame(cursor.fetchall(), columns=names)
    finally:
        conn.close()
    for name, sql_type in types.items():
        if sql_type in ("date", "timestamp without time zone"):
            frame[name] = pd.to_datetime(frame[name])
        elif sql_type == "timestamp with time zone":
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif sql_type.startswith("numeric"):
            frame[name] = frame[name].astype("float64")
    return frame


def materialization_metadata(result: dg.ExecuteInProcessResult, key: Sequence[str]) -> dict[str, Any]:
    """Metadata of the (last) materialization of asset ``key`` in ``result``, as plain values."""
    events = result.asset_materializations_for_node(
        next(
            node
            for node in {e.node_name for e in result.all_node_events}
            if any(m.asset_key == dg.AssetKey(list(key)) for m in result.asset_materializations_for_node(node))
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
