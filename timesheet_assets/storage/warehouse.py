"""The DuckDB warehouse IO manager.

It is Dagster's ``DuckDBPandasIOManager`` with three changes a production pipeline needs:

* every write is one transaction: delete-the-slice and insert commit together or not at all,
  so a crash mid-write leaves the old partition, never a mix or an empty hole;
* inserts go ``BY NAME`` and new columns are added, so a vendor payload that grows a field
  does not break the next write (positional inserts would silently shift columns);
* an upsert mode (output metadata ``write_mode="upsert"``, key columns from the asset's
  ``primary_key`` metadata) for incremental loads: rows with the same key are replaced, all
  others kept.

Partition replacement uses the asset's ``partition_expr`` and the run's whole partition
range, so a single-run backfill of 30 days replaces exactly those 30 days.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TablePartitionDimension, TableSlice
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager

from ..runs.status import refuse_write_unless_run_in_progress
from ..settings import warehouse_memory_limit, warehouse_path

WRITE_MODE = "write_mode"
PRIMARY_KEY = "primary_key"


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _qualified(table_slice: TableSlice) -> str:
    return f"{_quote(table_slice.schema)}.{_quote(table_slice.table)}"


def _window_clause(dimension: TablePartitionDimension) -> str:
    partitions = dimension.partitions
    if isinstance(partitions, dg.TimeWindow):
        start = partitions.start.strftime("%Y-%m-%d %H:%M:%S")
        end = partitions.end.strftime("%Y-%m-%d %H:%M:%S")
        expr = dimension.partition_expr
        return f"{expr} >= TIMESTAMP '{start}' AND {expr} < TIMESTAMP '{end}'"
    keys = ", ".join("'" + str(k).replace("'", "''") + "'" for k in partitions)
    return f"{dimension.partition_expr} IN ({keys})"


def _where(table_slice: TableSlice) -> str:
    return " AND ".join(_window_clause(d) for d in table_slice.partition_dimensions)


def _table_exists(conn: duckdb.DuckDBPyConnection, table_slice: TableSlice) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [table_slice.schema, table_slice.table],
    ).fetchone()
    return bool(row and row[0])


def _write_mode(context: dg.OutputContext) -> str:
    runtime = _plain((context.output_metadata or {}).get(WRITE_MODE))
    declared = _plain((context.definition_metadata or {}).get(WRITE_MODE))
    return str(runtime or declared or "replace")


def _declares_primary_key(context: dg.OutputContext) -> bool:
    return bool(_plain((context.definition_metadata or {}).get(PRIMARY_KEY)))


def _primary_key(context: dg.OutputContext) -> list[str]:
    key = _plain((context.definition_metadata or {}).get(PRIMARY_KEY))
    if not key:
        raise dg.DagsterInvariantViolationError(
            f"Asset {context.asset_key.to_user_string()} is written in upsert mode but declares no "
            f"'{PRIMARY_KEY}' metadata"
        )
    return [key] if isinstance(key, str) else list(key)


def _common_type(connection: duckdb.DuckDBPyConnection, stored: str, incoming: str) -> str:
    """The type DuckDB gives a column holding values of both types (its union rule:
    BIGINT and DOUBLE give DOUBLE, DATE and TIMESTAMP give TIMESTAMP, a number and text give
    VARCHAR)."""
    row = connection.execute(
        f"SELECT typeof(v) FROM (SELECT CAST(NULL AS {stored}) AS v UNION ALL SELECT CAST(NULL AS {incoming}) AS v) LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else incoming


LOCK_WAIT_SECONDS = 120.0


def connection_settings(resource_config: Mapping[str, Any]) -> dict[str, Any]:
    """DuckDB settings for a warehouse connection: the memory budget from the environment,
    overridden by anything the resource's ``connection_config`` sets."""
    return {"memory_limit": warehouse_memory_limit(), **(resource_config.get("connection_config") or {})}


def _connect_waiting_for_lock(database: str, settings: Mapping[str, Any]) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting while another process holds DuckDB's file lock.

    Runs of different vendors are in different pools and may finish at the same moment;
    each write is one short transaction, so waiting for the lock is enough to serialise them.
    """
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.05
    while True:
        try:
            return duckdb.connect(database, read_only=False, config=dict(settings))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 2.0)


class TransactionalDuckDbClient(DuckDbClient):
    @staticmethod
    def delete_table_slice(context: dg.OutputContext, table_slice: TableSlice, connection) -> None:
        if not _table_exists(connection, table_slice) or _write_mode(context) == "upsert":
            return
        statement = f"DELETE FROM {_qualified(table_slice)}"
        if table_slice.partition_dimensions:
            statement += " WHERE " + _where(table_slice)
        connection.execute(statement)

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        cols = ", ".join(_quote(c) for c in table_slice.columns) if table_slice.columns else "*"
        query = f"SELECT {cols} FROM {_qualified(table_slice)}"
        if table_slice.partition_dimensions:
            query += " WHERE " + _where(table_slice)
        return query

    @staticmethod
    @contextmanager
    def connect(context, _table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        config = context.resource_config
        conn = _connect_waiting_for_lock(config["database"], connection_settings(config))
        try:
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute("BEGIN TRANSACTION")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()


class ByNamePandasTypeHandler(DbTypeHandler[pd.DataFrame]):
    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection
    ) -> Mapping[str, Any]:
        target = _qualified(table_slice)
        frame = obj  # the name the SQL below scans
        widened = {}
        if not _table_exists(connection, table_slice):
            connection.execute(f"CREATE TABLE {target} AS SELECT * FROM frame LIMIT 0")
        else:
            existing = dict(
                connection.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = ? AND table_name = ?",
                    [table_slice.schema, table_slice.table],
                ).fetchall()
            )
            incoming = dict(
                (name, sql_type)
                for name, sql_type, *_ in connection.execute("DESCRIBE SELECT * FROM frame").fetchall()
            )
            # An unpartitioned, non-upsert write replaces the whole table (its rows were deleted
            # in this transaction): columns take the types of the new values. Inserting them
            # into the old types would fail ('twelve' into BIGINT) or silently change them
            # (12.5 into BIGINT becomes 12, a timestamp into DATE loses its time).
            replaces_table = not context.has_asset_partitions and _write_mode(context) != "upsert"
            widened: dict[str, str] = {}
            for name, sql_type in incoming.items():
                if name not in existing:
                    connection.execute(f"ALTER TABLE {target} ADD COLUMN {_quote(name)} {sql_type}")
                elif replaces_table and sql_type.strip('"') != "NULL" and existing[name] != sql_type:
                    # USING NULL: DuckDB would still cast the rows deleted in this transaction.
                    connection.execute(
                        f"ALTER TABLE {target} ALTER COLUMN {_quote(name)} SET DATA TYPE {sql_type} "
                        f"USING CAST(NULL AS {sql_type})"
                    )
                elif existing[name].strip('"') == "NULL" and sql_type.strip('"') != "NULL":
                    # A first write whose column held only nulls gave it no type; the first
                    # real values decide it (e.g. a date column of an all-quarantined batch).
                    connection.execute(
                        f"ALTER TABLE {target} ALTER COLUMN {_quote(name)} SET DATA TYPE {sql_type}"
                    )
                elif sql_type.strip('"') != "NULL" and existing[name] != sql_type:
                    # Other partitions (or rows) keep the old type. Inserting into it would
                    # silently lose what the new values carry (12.5 into BIGINT is 13, a
                    # timestamp into DATE loses its time); widen the column to the type that
                    # holds both instead, which keeps every stored value as it was.
                    wider = _common_type(connection, existing[name], sql_type)
                    if wider != existing[name]:
                        connection.execute(
                            f"ALTER TABLE {target} ALTER COLUMN {_quote(name)} SET DATA TYPE {wider}"
                        )
                        widened[name] = f"{existing[name]} -> {wider}"
        moved_away = 0
        if len(frame) and (_write_mode(context) == "upsert" or _declares_primary_key(context)):
            # Upsert: rows with an incoming key are replaced. Partition replace: the window's
            # rows are already gone, so what still matches an incoming key lives on another
            # day — a record whose work date moved. A key lives on one day only, so it leaves
            # its old day in this same transaction.
            keys = _primary_key(context)
            match = " AND ".join(f"t.{_quote(k)} = f.{_quote(k)}" for k in keys)
            moved_away = connection.execute(
                f"DELETE FROM {target} t WHERE EXISTS (SELECT 1 FROM frame f WHERE {match})"
            ).fetchone()[0]
        if len(frame):
            connection.execute(f"INSERT INTO {target} BY NAME SELECT * FROM frame")
        total = connection.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        meta: dict[str, Any] = {"dagster/table_name": f"{table_slice.schema}.{table_slice.table}"}
        if context.has_asset_partitions:
            meta["dagster/partition_row_count"] = len(frame)
        else:
            meta["dagster/row_count"] = int(total)
        meta["table_rows_after_write"] = int(total)
        if context.has_asset_partitions and _declares_primary_key(context):
            meta["rows_moved_from_other_days"] = int(moved_away)
        if widened:
            meta["columns_widened"] = dg.MetadataValue.json(widened)
            context.log.warning(
                f"{table_slice.schema}.{table_slice.table}: column types widened to hold the new "
                f"values: {', '.join(f'{k} {v}' for k, v in widened.items())}"
            )
        # Last statement before the transaction commits: a run that ended keeps the old data.
        refuse_write_unless_run_in_progress(context)
        return meta

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection) -> pd.DataFrame:
        if not _table_exists(connection, table_slice):
            # An upstream that never produced rows (e.g. an empty first partition) reads as empty.
            return pd.DataFrame()
        return connection.execute(TransactionalDuckDbClient.get_select_statement(table_slice)).fetchdf()

    @property
    def supported_types(self) -> Sequence[type]:
        return [pd.DataFrame]


class WarehouseDbIOManager(DbIOManager):
    """The IO manager a run uses, plus whole-table reads for checks that look past the run's
    partitions (``context.resources.io_manager`` in an asset that requires ``io_manager``)."""

    def read_table(self, asset_key: dg.AssetKey, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every row of the asset's table (all partitions); empty when it was never written."""
        table_slice = TableSlice(
            table=asset_key.path[-1],
            schema=asset_key.path[-2] if len(asset_key.path) > 1 else (self._schema or "public"),
            database=self._database,
            partition_dimensions=[],
            columns=list(columns) if columns else None,
        )
        conn = _connect_waiting_for_lock(self._database, {"memory_limit": warehouse_memory_limit()})
        try:
            if not _table_exists(conn, table_slice):
                return pd.DataFrame(columns=list(columns or []))
            return conn.execute(TransactionalDuckDbClient.get_select_statement(table_slice)).fetchdf()
        finally:
            conn.close()


class WarehouseIOManager(DuckDBPandasIOManager):
    """Transactional, schema-tolerant DuckDB IO manager (see module docstring)."""

    def create_io_manager(self, context) -> DbIOManager:
        return WarehouseDbIOManager(
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=[ByNamePandasTypeHandler()],
            default_load_type=pd.DataFrame,
            io_manager_name="WarehouseIOManager",
        )


def warehouse_io_manager(database: str | None = None) -> WarehouseIOManager:
    return WarehouseIOManager(database=database or warehouse_path())
