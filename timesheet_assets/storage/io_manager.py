"""The warehouse IO manager Dagster runs use: Dagster's ``DbIOManager`` over one of the
warehouse backends, chosen by the ``database`` setting (a DuckDB path or a PostgreSQL URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from dagster._config.pythonic_config import ConfigurableIOManagerFactory
from dagster._core.storage.db_io_manager import DbClient, DbIOManager, TablePartitionDimension, TableSlice
from pydantic import Field

from ..settings import warehouse_password, warehouse_path
from .backend import Session, WarehouseBackend, backend_for
from .sql import (
    count_outside_statement,
    delete_slice_statement,
    repeated_keys_outside_statement,
    select_statement,
    table_name,
)
from .staging import StagedRows, StagedRowsTypeHandler, StagingTable, staging_table_name
from .target import parse_target
from .warehouse import ByNamePandasTypeHandler, ensure_primary_key, read_slice, read_slice_without, write_mode


class WarehouseDbClient(DbClient):
    """Dagster's database client protocol over a warehouse backend: each write is one
    transaction (``connect``), ending in the type handler's insert."""

    def __init__(self, backend: WarehouseBackend):
        self.backend = backend

    # Dagster's protocol declares these static; this client holds its backend, so they are methods.
    @contextmanager
    def connect(self, context, table_slice: TableSlice) -> Iterator[Session]:  # type: ignore[override]
        log = getattr(context, "log", None)
        if isinstance(context, dg.InputContext):
            with self.backend.reader(log) as session:
                yield session
            return
        with self.backend.transaction(log) as session:
            yield session

    def ensure_schema_exists(self, context, table_slice: TableSlice, connection: Session) -> None:  # type: ignore[override]
        self.backend.ensure_schema(connection, table_slice)

    def delete_table_slice(  # type: ignore[override]
        self, context: dg.OutputContext, table_slice: TableSlice, connection: Session
    ) -> None:
        ensure_primary_key(context, connection, table_slice)
        if write_mode(context) == "upsert" or not self.backend.table_exists(connection, table_slice):
            return
        connection.execute(delete_slice_statement(table_slice))

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        return select_statement(table_slice)

    @staticmethod
    def get_table_name(table_slice: TableSlice) -> str:
        return table_name(table_slice)


class WarehouseDbIOManager(DbIOManager):
    """The IO manager a run uses, plus whole-table reads for checks that look past the run's
    partitions (``context.resources.io_manager`` in an asset that requires ``io_manager``)."""

    def __init__(self, *, backend: WarehouseBackend, **kwargs: Any):
        super().__init__(db_client=WarehouseDbClient(backend), **kwargs)
        self.backend = backend

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        try:
            super().handle_output(context, obj)
        except BaseException:
            # The write rolled back: the staged rows went nowhere, and their table goes too.
            if isinstance(obj, StagedRows):
                obj.staging.discard()
            raise

    def _table_slice(self, asset_key: dg.AssetKey, **parts: Any) -> TableSlice:
        """The whole table of ``asset_key`` (``parts``: a window, columns)."""
        return TableSlice(
            table=asset_key.path[-1],
            schema=asset_key.path[-2] if len(asset_key.path) > 1 else (self._schema or "public"),
            database=self._database,
            **{"partition_dimensions": [], **parts},
        )

    def read_table(self, asset_key: dg.AssetKey, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every row of the asset's table (all partitions); empty when it was never written."""
        table_slice = self._table_slice(asset_key, columns=list(columns) if columns else None)
        with self.backend.reader() as session:
            return read_slice(session, table_slice, columns)

    def read_windows(
        self,
        asset_keys: Mapping[str, dg.AssetKey],
        first: date,
        last: date,
        skip_columns: Sequence[str] = (),
        partition_expr: str = "work_date",
    ) -> dict[str, pd.DataFrame]:
        """For each named asset, the rows of its table whose ``partition_expr`` lies in
        ``first``..``last`` (both inclusive), without ``skip_columns``: what an input of that
        partition range loads, a piece of a long range at a time, every table through one
        reader connection. Empty for a table that was never written."""
        window = _day_window(first, last, partition_expr)
        with self.backend.reader() as session:
            return {
                name: read_slice_without(session, self._table_slice(key, partition_dimensions=[window]), skip_columns)
                for name, key in asset_keys.items()
            }

    def repeated_keys_outside(
        self, asset_key: dg.AssetKey, keys: Sequence[str], first: date, last: date, partition_expr: str = "work_date"
    ) -> tuple[int, pd.DataFrame]:
        """How many stored rows of ``asset_key`` lie outside ``first``..``last``, and the keys of
        those rows whose key occurs there more than once: what a write of that window leaves in
        place, as a primary-key check needs it, counted where the table is instead of read."""
        table_slice = self._table_slice(asset_key, partition_dimensions=[_day_window(first, last, partition_expr)])
        with self.backend.reader() as session:
            if not self.backend.table_exists(session, table_slice):
                return 0, pd.DataFrame(columns=list(keys))
            count = session.execute(count_outside_statement(table_slice)).fetchone()
            repeated = session.execute(repeated_keys_outside_statement(table_slice, keys)).fetchall()
        return int(count[0]) if count else 0, pd.DataFrame(repeated, columns=list(keys))

    def staging_table(self, asset_key: dg.AssetKey, run_id: str, log: Any = None) -> StagingTable:
        """A staging table for ``asset_key``'s output in this run: filled a chunk at a time,
        returned as ``StagedRows`` and swapped in by this IO manager's write (``staging.py``)."""
        return StagingTable(self.backend, staging_table_name(asset_key, run_id), log)


def _day_window(first: date, last: date, partition_expr: str) -> TablePartitionDimension:
    """The days ``first``..``last`` (both inclusive) as a partition window on ``partition_expr``."""
    start = datetime.combine(first, time(), tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    return TablePartitionDimension(partition_expr, dg.TimeWindow(start, end))


class WarehouseIOManager(ConfigurableIOManagerFactory):
    """Transactional, schema-tolerant warehouse IO manager on DuckDB or PostgreSQL (see
    ``warehouse.py``)."""

    database: str = Field(
        description="A DuckDB file path, or a postgresql://user@host:5432/db URL (its password may "
        "be in the URL or in TIMESHEET_WAREHOUSE_PASSWORD)."
    )
    password: str | None = Field(
        default=None,
        description="PostgreSQL password when the URL has none; defaults to TIMESHEET_WAREHOUSE_PASSWORD.",
    )
    connection_config: dict[str, Any] = Field(
        default={}, description="DuckDB settings for each connection (overrides the memory budget)."
    )
    schema_: str | None = Field(default=None, alias="schema", description="Schema for every table.")

    def backend(self) -> WarehouseBackend:
        # Here, not at module level: loading the code location does not need DuckDB.
        from .duckdb_backend import connection_settings

        target = parse_target(self.database, self.password or warehouse_password())
        return backend_for(target, connection_settings({"connection_config": self.connection_config}))

    def create_io_manager(self, context) -> DbIOManager:
        backend = self.backend()
        return WarehouseDbIOManager(
            backend=backend,
            # What Dagster keeps in table slices and may show: never the password.
            database=backend.target.display,
            schema=self.schema_,
            type_handlers=[ByNamePandasTypeHandler(), StagedRowsTypeHandler()],
            default_load_type=pd.DataFrame,
            io_manager_name="WarehouseIOManager",
        )


def warehouse_io_manager(database: str | None = None) -> WarehouseIOManager:
    """The IO manager from the environment. ``TIMESHEET_WAREHOUSE`` is passed as ``EnvVar``:
    the resource configuration Dagster stores and shows names the variable, not its value (a
    URL's password), and each run reads the value it is launched with. The value is checked
    now, so a bad one fails loading with a clear message."""
    if database is not None:
        return WarehouseIOManager(database=database)
    parse_target(warehouse_path(), warehouse_password())
    if "TIMESHEET_WAREHOUSE" not in os.environ:
        return WarehouseIOManager(database=warehouse_path())
    return WarehouseIOManager(database=dg.EnvVar("TIMESHEET_WAREHOUSE"))
