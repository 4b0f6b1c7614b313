"""The PostgreSQL warehouse: one server shared by every run, readers never blocked by writes.

Frames go in and out through ``COPY`` in CSV, written and read by DuckDB: the values are
rendered by the same engine that decides the logical types (``types.py``), and a frame read
back has the pandas types a DuckDB warehouse gives.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd
import psycopg2
from dagster._core.storage.db_io_manager import TableSlice

from .backend import Session, StoredColumn, WarehouseBackend
from .sql import qualified, quote, table_name
from .target import WarehouseTarget
from .types import is_null_type

# In the session's own temporary schema: never a table of the warehouse.
INCOMING = "pg_temp.incoming_rows"
# A column created while it held only nulls is text until its first values decide its type;
# the comment marks it (PostgreSQL has no column type for "no values yet").
UNTYPED_COMMENT = "timesheet_assets: untyped (only nulls so far)"
COPY_CHUNK_BYTES = 1 << 20
# Rows rendered per slice: large enough that a slice's COPY dwarfs its statement overhead,
# small enough that rendering the next overlaps copying this one.
COPY_SLICE_ROWS = 100_000

_SIMPLE = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "UTINYINT": "smallint",
    "INTEGER": "integer",
    "USMALLINT": "integer",
    "BIGINT": "bigint",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric",
    "HUGEINT": "numeric",
    "UHUGEINT": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time without time zone",
    "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMP_S": "timestamp without time zone",
    "TIMESTAMP_MS": "timestamp without time zone",
    "TIMESTAMP_NS": "timestamp without time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "INTERVAL": "interval",
    "UUID": "uuid",
    "BLOB": "bytea",
    "JSON": "jsonb",
}
_BACK = {
    "boolean": "BOOLEAN",
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "numeric": "DOUBLE",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "text": "VARCHAR",
    "date": "DATE",
    "time without time zone": "TIME",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "interval": "INTERVAL",
    "uuid": "UUID",
}


def _is_nested(logical: str) -> bool:
    return logical.endswith("]") or logical.upper().startswith(("STRUCT", "MAP", "UNION"))


class PostgresSession(Session):
    def __init__(self, backend: PostgresBackend, connection: Any):
        self.backend = backend
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        cursor = self.connection.cursor()
        if params is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql.replace("?", "%s"), list(params))
        return cursor

    def execute_count(self, sql: str) -> int:
        return int(self.execute(sql).rowcount)


class WarehouseConnectionError(RuntimeError):
    """The PostgreSQL warehouse could not be reached; the message never holds the password."""


class PostgresBackend(WarehouseBackend):
    name = "postgresql"

    def __init__(self, target: WarehouseTarget):
        self.target = target

    @contextmanager
    def _connection(self, readonly: bool = False) -> Iterator[Any]:
        try:
            conn = psycopg2.connect(**self.target.connect_kwargs(), application_name="timesheet_assets")
        except psycopg2.Error as exc:
            # ``from None``: the driver's exception is not chained into what Dagster records.
            raise WarehouseConnectionError(
                f"could not connect to the warehouse {self.target.display}: {self.target.mask(str(exc)).strip()}"
            ) from None
        try:
            if readonly:
                conn.set_session(readonly=True)
            with conn.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'UTC'")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self, log: Any = None) -> Iterator[Session]:
        with self._connection() as conn:
            try:
                yield PostgresSession(self, conn)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    @contextmanager
    def reader(self, log: Any = None) -> Iterator[Session]:
        with self._connection(readonly=True) as conn:
            try:
                yield PostgresSession(self, conn)
            finally:
                conn.rollback()

    # -- catalog --------------------------------------------------------------------------
    def columns(self, session: Session, table_slice: TableSlice) -> dict[str, StoredColumn]:
        rows = session.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND c.relname = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [table_slice.schema, table_slice.table],
        ).fetchall()
        return {
            name: StoredColumn(physical=physical, untyped=comment == UNTYPED_COMMENT)
            for name, physical, comment in rows
        }

    def ensure_schema(self, session: Session, table_slice: TableSlice) -> None:
        # Writers of the same table take turns (as DuckDB's file lock makes them): two
        # window replaces interleaved under MVCC could each miss the other's new rows.
        # Readers take no such lock and are never blocked by it.
        session.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", [f"table:{table_name(table_slice)}"])
        exists = session.execute("SELECT count(*) FROM pg_namespace WHERE nspname = ?", [table_slice.schema]).fetchone()
        if not exists[0]:
            # Two first writes into a new schema would race on its creation.
            session.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", [f"schema:{table_slice.schema}"])
            session.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(table_slice.schema)}")

    # -- types ----------------------------------------------------------------------------
    def physical_type(self, logical: str) -> str:
        if is_null_type(logical):
            return "text"
        upper = logical.upper()
        if upper in _SIMPLE:
            return _SIMPLE[upper]
        decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper)
        if decimal:
            return f"numeric({decimal.group(1)},{decimal.group(2)})"
        if _is_nested(logical):
            return "jsonb"
        return "text"

    def logical_type(self, physical: str) -> str:
        decimal = re.fullmatch(r"numeric\((\d+),(\d+)\)", physical)
        if decimal and int(decimal.group(1)) <= 38:
            return f"DECIMAL({decimal.group(1)},{decimal.group(2)})"
        return _BACK.get(physical, "VARCHAR")

    # -- DDL ------------------------------------------------------------------------------
    def _mark_untyped(self, session: Session, table_slice: TableSlice, name: str, untyped: bool) -> None:
        comment = "'" + UNTYPED_COMMENT + "'" if untyped else "NULL"
        session.execute(f"COMMENT ON COLUMN {qualified(table_slice)}.{quote(name)} IS {comment}")

    def create_table(self, session, table_slice, types, primary_key) -> None:
        columns = [f"{quote(name)} {self.physical_type(t)}" for name, t in types.items()]
        if primary_key:
            columns.append(f"PRIMARY KEY ({', '.join(quote(k) for k in primary_key)})")
        session.execute(f"CREATE TABLE {qualified(table_slice)} ({', '.join(columns)})")
        for name, logical in types.items():
            if is_null_type(logical):
                self._mark_untyped(session, table_slice, name, True)

    def add_column(self, session, table_slice, name, logical) -> None:
        session.execute(f"ALTER TABLE {qualified(table_slice)} ADD COLUMN {quote(name)} {self.physical_type(logical)}")
        if is_null_type(logical):
            self._mark_untyped(session, table_slice, name, True)

    def change_column_type(self, session, table_slice, name, logical, keep_values) -> None:
        physical = self.physical_type(logical)
        using = f"CAST({quote(name)} AS {physical})" if keep_values else f"CAST(NULL AS {physical})"
        session.execute(
            f"ALTER TABLE {qualified(table_slice)} ALTER COLUMN {quote(name)} TYPE {physical} USING {using}"
        )
        self._mark_untyped(session, table_slice, name, False)

    # -- data -----------------------------------------------------------------------------
    def _copy_in(self, session: Session, relation: str, frame: pd.DataFrame, stored: dict[str, StoredColumn]) -> None:
        """``COPY relation (columns) FROM STDIN`` with ``frame`` rendered as CSV by DuckDB.

        Rendering and copying overlap: a thread renders the next slice of rows to a file while
        the server takes the previous one (rendering is DuckDB's CPU, copying the server's).
        """
        columns = list(frame.columns)
        renders = []
        for name in columns:
            # Nested values go in as JSON text; everything else as DuckDB renders it.
            renders.append(f"to_json({quote(name)})" if stored[name].physical == "jsonb" else quote(name))
        statement = f"COPY {relation} ({', '.join(quote(c) for c in columns)}) FROM STDIN WITH (FORMAT csv)"
        starts = list(range(0, len(frame), COPY_SLICE_ROWS)) or [0]
        with tempfile.TemporaryDirectory(prefix="warehouse-copy-") as scratch, duckdb.connect() as engine:
            engine.execute("SET TimeZone = 'UTC'")

            def render(index: int) -> str:
                path = os.path.join(scratch, f"rows-{index}.csv")
                engine.register("outgoing_frame", frame.iloc[starts[index] : starts[index] + COPY_SLICE_ROWS])
                engine.execute(
                    f"COPY (SELECT {', '.join(renders)} FROM outgoing_frame) TO '{path}' "
                    "(FORMAT csv, HEADER false, QUOTE '\"', ESCAPE '\"', NULLSTR '')"
                )
                engine.unregister("outgoing_frame")
                return path

            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse-render") as renderer:
                upcoming = renderer.submit(render, 0)
                for index in range(len(starts)):
                    path = upcoming.result()  # a rendering error surfaces here, before any commit
                    if index + 1 < len(starts):
                        upcoming = renderer.submit(render, index + 1)
                    with open(path, "rb") as rows:
                        session.connection.cursor().copy_expert(statement, rows, size=COPY_CHUNK_BYTES)  # type: ignore[attr-defined]
                    os.remove(path)

    def stage(self, session: Session, table_slice: TableSlice, frame: pd.DataFrame) -> str:
        stored = self.columns(session, table_slice)
        definition = ", ".join(f"{quote(name)} {stored[name].physical}" for name in frame.columns)
        session.execute(f"DROP TABLE IF EXISTS {INCOMING}")
        session.execute(f"CREATE TABLE {INCOMING} ({definition}) ON COMMIT DROP")
        self._copy_in(session, INCOMING, frame, stored)
        session.execute(f"ANALYZE {INCOMING}")
        return INCOMING

    def insert_frame(self, session: Session, table_slice: TableSlice, frame: pd.DataFrame) -> None:
        self._copy_in(session, qualified(table_slice), frame, self.columns(session, table_slice))

    def read(self, session: Session, table_slice: TableSlice) -> pd.DataFrame:
        stored = self.columns(session, table_slice)
        names = list(table_slice.columns) if table_slice.columns else list(stored)
        types = {name: self.logical_type(stored[name].physical) for name in names}
        with tempfile.TemporaryDirectory(prefix="warehouse-read-") as scratch:
            path = os.path.join(scratch, "rows.csv")
            with open(path, "wb") as out:
                session.connection.cursor().copy_expert(  # type: ignore[attr-defined]
                    f"COPY ({self.select(table_slice)}) TO STDOUT WITH (FORMAT csv)", out, size=COPY_CHUNK_BYTES
                )
            with duckdb.connect() as engine:
                engine.execute("SET TimeZone = 'UTC'")
                columns = "{" + ", ".join(f"'{n.replace(chr(39), chr(39) * 2)}': '{t}'" for n, t in types.items()) + "}"
                return engine.execute(
                    f"SELECT * FROM read_csv('{path}', columns = {columns}, header = false, quote = '\"', "
                    "escape = '\"', nullstr = '', allow_quoted_nulls = false, auto_detect = false)"
                ).fetchdf()
