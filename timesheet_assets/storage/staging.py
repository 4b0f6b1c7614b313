"""A staging table a step fills a chunk at a time, swapped into its asset's table by one write.

A long read (a year of Blikk time reports: hundreds of pages) would otherwise hold every page,
then every row, in the run worker until the IO manager's single write; its memory grew with the
pages. Instead the step appends each chunk of rows to a staging table of the warehouse, each
chunk in its own short transaction (DuckDB's file lock is taken per chunk, not for the whole
read), and returns a ``StagedRows`` handle as its output. The warehouse IO manager's write then
replaces the window from the staging table with one ``INSERT ... SELECT`` inside the window's
transaction — the rules of a frame write (key on one day, schema evolution, metadata) — and
drops the staging table in that same transaction. Until then the asset's table is untouched:
a run that fails mid-read keeps the old rows (and drops its staging table on the way out).

Staging tables live in the schema ``_staging``, one per run and asset; the internal column
``_staged_seq`` (the record's place in the read) is never written to the asset's table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice

from .backend import LOG, Session, WarehouseBackend
from .sql import qualified, quote
from .types import NULL, frame_types
from .warehouse import evolve_columns, read_slice, write_rows

STAGING_SCHEMA = "_staging"
SEQUENCE_COLUMN = "_staged_seq"
STAGED_VIEW = "staged_rows"


def staging_table_name(asset_key: dg.AssetKey, run_id: str) -> str:
    """One staging table per asset and run (``raw__blikk__time_reports__1a2b3c4d``)."""
    name = "__".join([*asset_key.path, run_id.replace("-", "")[:12]])
    return re.sub(r"[^A-Za-z0-9_]", "_", name).lower()


@dataclass
class StagingTable:
    """Rows appended a chunk at a time, each chunk committed on its own."""

    backend: WarehouseBackend
    name: str
    log: Any = None
    # The first chunk's columns and pandas types, without rows: the columns a frame of these
    # rows would have (for the catalog's column schema), whatever later chunks widen.
    template: pd.DataFrame | None = None

    @property
    def table_slice(self) -> TableSlice:
        return TableSlice(table=self.name, schema=STAGING_SCHEMA, database=None, partition_dimensions=[])

    @property
    def relation(self) -> str:
        return qualified(self.table_slice)

    def append(self, frame: pd.DataFrame) -> None:
        """Commit ``frame``'s rows to the staging table (created by the first chunk, even an
        empty one, so that the write knows the columns)."""
        if self.template is not None and not len(frame):
            return
        with self.backend.transaction(self.log) as session:
            self.backend.ensure_schema(session, self.table_slice)
            incoming = frame_types(frame)
            if self.template is None:
                # A step retried in the same run starts again from an empty table.
                session.execute(f"DROP TABLE IF EXISTS {self.relation}")
            if not self.backend.table_exists(session, self.table_slice):
                self.backend.create_table(session, self.table_slice, incoming, None)
            else:
                evolve_columns(self.backend, session, self.table_slice, incoming, replaces_table=False)
            if len(frame):
                self.backend.insert_frame(session, self.table_slice, frame)
        if self.template is None:
            self.template = frame.head(0).drop(columns=[SEQUENCE_COLUMN], errors="ignore")

    def keep_only(self, column: str, values: Sequence[Any]) -> int:
        """Delete the rows whose ``column`` is not among ``values``; how many went."""
        with self.backend.transaction(self.log) as session:
            relation = self.backend.stage(session, self.table_slice, pd.DataFrame({column: pd.Series(values)}))
            return session.execute_count(
                f"DELETE FROM {self.relation} AS t WHERE NOT EXISTS "
                f"(SELECT 1 FROM {relation} AS f WHERE f.{quote(column)} = t.{quote(column)})"
            )

    def fill_missing(self, key: str, column: str, values: pd.DataFrame, only_where: str = "TRUE") -> int:
        """Set ``column`` where it is null (and ``only_where`` holds) from ``values``' row with
        the same ``key`` (``values`` has the columns ``key`` and ``column``); rows updated."""
        if not len(values):
            return 0
        with self.backend.transaction(self.log) as session:
            relation = self.backend.stage(session, self.table_slice, values[[key, column]])
            return session.execute_count(
                f"UPDATE {self.relation} AS t SET {quote(column)} = f.{quote(column)} FROM {relation} AS f "
                f"WHERE f.{quote(key)} = t.{quote(key)} AND t.{quote(column)} IS NULL AND ({only_where})"
            )

    def fetch(self, select: str) -> list[tuple]:
        """Rows of a query over the staging table, written with ``{table}`` for its name."""
        with self.backend.reader(self.log) as session:
            return session.execute(select.format(table=self.relation)).fetchall()

    def drop(self) -> None:
        with self.backend.transaction(self.log) as session:
            session.execute(f"DROP TABLE IF EXISTS {self.relation}")

    def discard(self) -> None:
        """``drop`` for a step that is failing: a staging table that cannot be dropped now
        (the warehouse unreachable) is said in the log, not raised over the step's error."""
        try:
            self.drop()
        except Exception as exc:  # noqa: BLE001 - the step's own error is the one to report
            (self.log or LOG).warning(
                f"staging table {self.relation} could not be dropped ({type(exc).__name__}); "
                "it holds no data of any asset and may be dropped by hand"
            )


@dataclass
class StagedRows:
    """A step's output held in a staging table (see the module docstring)."""

    staging: StagingTable


def _staged_types(backend: WarehouseBackend, session: Session, staging: StagingTable) -> dict[str, str]:
    stored = backend.columns(session, staging.table_slice)
    return {
        name: NULL if column.untyped else backend.logical_type(column.physical)
        for name, column in stored.items()
        if name != SEQUENCE_COLUMN
    }


class StagedRowsTypeHandler(DbTypeHandler[StagedRows]):
    """Writes a ``StagedRows`` output: the window replaced from the staging table, which is
    dropped in the same transaction."""

    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: StagedRows, connection: Session
    ) -> Mapping[str, Any]:
        backend = connection.backend
        staging = obj.staging
        if not backend.table_exists(connection, staging.table_slice):
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()}: its staging table {staging.relation} is gone; "
                "nothing was written (rerun the step)"
            )
        types = _staged_types(backend, connection, staging)
        rows = int(connection.execute(f"SELECT count(*) FROM {staging.relation}").fetchone()[0])

        def as_stored() -> str:
            # The staged columns cast to the table's types (PostgreSQL casts no text to a
            # number on insert), read through a view of this connection only.
            stored = backend.columns(connection, table_slice)
            select = ", ".join(
                quote(name)
                if stored[name].untyped
                else f"CAST({quote(name)} AS {stored[name].physical}) AS {quote(name)}"
                for name in types
            )
            connection.execute(f"CREATE OR REPLACE TEMP VIEW {STAGED_VIEW} AS SELECT {select} FROM {staging.relation}")
            return STAGED_VIEW

        metadata = write_rows(context, table_slice, connection, types, rows, as_stored)
        connection.execute(f"DROP VIEW IF EXISTS {STAGED_VIEW}")
        connection.execute(f"DROP TABLE {staging.relation}")
        return metadata

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection: Session) -> Any:
        return read_slice(connection, table_slice)

    @property
    def supported_types(self) -> Sequence[type]:
        return [StagedRows]
