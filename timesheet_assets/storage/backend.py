"""What a warehouse backend provides to the one storage layer: a transaction, its catalog,
its column types and its bulk paths. The rules (write modes, key on one day, schema
evolution, metadata) live in ``warehouse.py`` and use only this interface."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from dagster._core.storage.db_io_manager import TableSlice

from .sql import qualified, quote, select_statement
from .target import WarehouseTarget

LOG = logging.getLogger("timesheet_assets.warehouse")

# Tables whose declared primary key becomes a real constraint. Conformed tables are unique by
# their blocking primary_key_unique check, so the constraint only backs it up and tells readers
# the key; raw tables keep whatever the vendor sent, including a record it listed twice.
CONSTRAINED_SCHEMAS = ("conformed",)


@dataclass(frozen=True)
class StoredColumn:
    physical: str
    untyped: bool  # created while the column held only nulls: its first values decide its type


class Session(ABC):
    """One warehouse connection inside one open transaction."""

    backend: WarehouseBackend

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """Run ``sql`` (``?`` placeholders); the result has ``fetchone``/``fetchall``."""

    @abstractmethod
    def execute_count(self, sql: str) -> int:
        """Run a DELETE or UPDATE and return how many rows it changed."""


class WarehouseBackend(ABC):
    name: str
    target: WarehouseTarget

    @abstractmethod
    def transaction(self, log: Any = None) -> AbstractContextManager[Session]:
        """A session whose statements commit together when the block ends, or not at all."""

    @abstractmethod
    def reader(self, log: Any = None) -> AbstractContextManager[Session]:
        """A session for reads only."""

    # -- catalog --------------------------------------------------------------------------
    def table_exists(self, session: Session, table_slice: TableSlice) -> bool:
        row = session.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchone()
        return bool(row and row[0])

    def has_primary_key(self, session: Session, table_slice: TableSlice) -> bool:
        row = session.execute(
            "SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = ? "
            "AND table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [table_slice.schema, table_slice.table],
        ).fetchone()
        return bool(row and row[0])

    @abstractmethod
    def columns(self, session: Session, table_slice: TableSlice) -> dict[str, StoredColumn]: ...

    @abstractmethod
    def ensure_schema(self, session: Session, table_slice: TableSlice) -> None:
        """The table's schema exists, and no other writer writes this table until commit."""

    # -- types ----------------------------------------------------------------------------
    @abstractmethod
    def physical_type(self, logical: str) -> str:
        """This backend's column type for a logical (DuckDB) type, spelled as its catalog shows it."""

    @abstractmethod
    def logical_type(self, physical: str) -> str: ...

    # -- DDL ------------------------------------------------------------------------------
    @abstractmethod
    def create_table(
        self, session: Session, table_slice: TableSlice, types: Mapping[str, str], primary_key: Sequence[str] | None
    ) -> None: ...

    @abstractmethod
    def add_column(self, session: Session, table_slice: TableSlice, name: str, logical: str) -> None: ...

    @abstractmethod
    def change_column_type(
        self, session: Session, table_slice: TableSlice, name: str, logical: str, keep_values: bool
    ) -> None:
        """Give a column a new type; ``keep_values=False`` when its rows are gone (deleted in
        this transaction) or all null, so nothing is cast."""

    def add_primary_key(self, session: Session, table_slice: TableSlice, keys: Sequence[str]) -> None:
        session.execute(f"ALTER TABLE {qualified(table_slice)} ADD PRIMARY KEY ({', '.join(quote(k) for k in keys)})")

    # -- data -----------------------------------------------------------------------------
    @abstractmethod
    def stage(self, session: Session, table_slice: TableSlice, frame: pd.DataFrame) -> str:
        """Make ``frame`` readable as a relation in this transaction (typed as the target
        table's columns) and return its name."""

    @abstractmethod
    def insert_frame(self, session: Session, table_slice: TableSlice, frame: pd.DataFrame) -> None:
        """Bulk-insert ``frame`` into the table, columns matched by name."""

    @abstractmethod
    def read(self, session: Session, table_slice: TableSlice) -> pd.DataFrame:
        """The slice's rows as a frame; the same pandas types on every backend."""

    def select(self, table_slice: TableSlice) -> str:
        return select_statement(table_slice)


def backend_for(target: WarehouseTarget, settings: Mapping[str, Any] | None = None) -> WarehouseBackend:
    if target.kind == "postgresql":
        from .postgres_backend import PostgresBackend

        return PostgresBackend(target)
    from .duckdb_backend import DuckDBBackend

    return DuckDBBackend(target, settings or {})
