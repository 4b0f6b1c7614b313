"""The DuckDB file warehouse (the default): one process may open the file at a time."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.db_io_manager import TableSlice

from ..settings import warehouse_lock_wait_seconds, warehouse_memory_limit
from .backend import LOG, Session, StoredColumn, WarehouseBackend
from .sql import insert_by_name_statement, qualified, quote
from .target import WarehouseTarget
from .types import NULL, is_null_type

INCOMING = "incoming_rows"
# How often a waiting writer repeats that it is waiting (the first notice is immediate).
LOCK_NOTICE_EVERY_SECONDS = 15.0
READING_WITHOUT_BLOCKING = "docs/operations.md, 'Reading the DuckDB warehouse'"


class WarehouseLockTimeout(dg.Failure):
    """The DuckDB file stayed locked by another process for the whole wait."""


def connection_settings(resource_config: Mapping[str, Any]) -> dict[str, Any]:
    """DuckDB settings for a warehouse connection: the memory budget from the environment,
    overridden by anything the resource's ``connection_config`` sets."""
    return {"memory_limit": warehouse_memory_limit(), **(resource_config.get("connection_config") or {})}


def lock_holder(message: str) -> str:
    """Who holds the file, as DuckDB tells it ("... is held in /usr/bin/python3 (PID 123) by
    user ana"), or that it does not say."""
    match = re.search(r"held in (?P<who>.+?)(?:\. |\.$|$)", message)
    return match.group("who").strip() if match else "a process DuckDB does not name"


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _notice(log: Any, text: str) -> None:
    (log.warning if log is not None else LOG.warning)(text)


def connect_waiting_for_lock(
    database: str, settings: Mapping[str, Any], log: Any = None, wait_seconds: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting while another process holds DuckDB's file lock.

    Runs of different vendors may finish at the same moment; each write is one short
    transaction, so waiting is enough to serialise them. A reader holding the file (an
    analyst's open connection) is another matter: the wait is said in the run's log at once
    and every ``LOCK_NOTICE_EVERY_SECONDS``, naming the holder when DuckDB does, and a write
    still locked out at the end fails without a step retry (which would call the vendor again
    for nothing while the file stays held).
    """
    wait = warehouse_lock_wait_seconds() if wait_seconds is None else wait_seconds
    started = time.monotonic()
    deadline = started + wait
    next_notice = started
    delay = 0.05
    while True:
        try:
            return duckdb.connect(database, read_only=False, config=dict(settings))
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            holder = lock_holder(str(exc))
            now = time.monotonic()
            if now + delay > deadline:
                raise WarehouseLockTimeout(
                    description=(
                        f"Warehouse {database} stayed locked by another process ({holder}) for "
                        f"{now - started:.0f} s; nothing was written. DuckDB lets one process open "
                        f"the file at a time, readers included: close that connection and rerun. To "
                        f"query the warehouse without blocking runs, see {READING_WITHOUT_BLOCKING}."
                    ),
                    allow_retries=False,
                ) from None
            if now >= next_notice:
                _notice(
                    log,
                    f"Warehouse {database} is locked by another process ({holder}); waiting up to "
                    f"{wait:.0f} s (waited {now - started:.0f} s). DuckDB lets one process open the "
                    f"file at a time, readers included: close that connection (a notebook, the DuckDB "
                    f"CLI, a BI tool). To query without blocking runs, see {READING_WITHOUT_BLOCKING}.",
                )
                next_notice = now + LOCK_NOTICE_EVERY_SECONDS
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 1.0)


class _Rows:
    """A statement's rows, fetched at once: DuckDB refuses the next statement on a connection
    while a result is still open."""

    def __init__(self, rows: list[tuple]):
        self._rows = rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return self._rows


class DuckDBSession(Session):
    def __init__(self, backend: DuckDBBackend, connection: duckdb.DuckDBPyConnection):
        self.backend = backend
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        result = self.connection.execute(sql, params) if params is not None else self.connection.execute(sql)
        return _Rows(result.fetchall() if result.description else [])

    def execute_count(self, sql: str) -> int:
        row = self.execute(sql).fetchone()
        return int(row[0]) if row else 0


class DuckDBBackend(WarehouseBackend):
    name = "duckdb"

    def __init__(self, target: WarehouseTarget, settings: Mapping[str, Any]):
        self.target = target
        self.settings = dict(settings) or {"memory_limit": warehouse_memory_limit()}

    @contextmanager
    def _connection(self, log: Any) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = connect_waiting_for_lock(self.target.path or "", self.settings, log)
        try:
            conn.execute("SET TimeZone = 'UTC'")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self, log: Any = None) -> Iterator[Session]:
        with self._connection(log) as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield DuckDBSession(self, conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextmanager
    def reader(self, log: Any = None) -> Iterator[Session]:
        with self._connection(log) as conn:
            yield DuckDBSession(self, conn)

    def columns(self, session: Session, table_slice: TableSlice) -> dict[str, StoredColumn]:
        rows = session.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [table_slice.schema, table_slice.table],
        ).fetchall()
        return {name: StoredColumn(physical=sql_type, untyped=is_null_type(sql_type)) for name, sql_type in rows}

    def ensure_schema(self, session: Session, table_slice: TableSlice) -> None:
        # One writing process per file: the file lock already keeps other writers out.
        session.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(table_slice.schema)}")

    def physical_type(self, logical: str) -> str:
        return '"NULL"' if is_null_type(logical) else logical

    def logical_type(self, physical: str) -> str:
        return NULL if is_null_type(physical) else physical

    def create_table(self, session, table_slice, types, primary_key) -> None:
        columns = [f"{quote(name)} {self.physical_type(t)}" for name, t in types.items()]
        if primary_key:
            columns.append(f"PRIMARY KEY ({', '.join(quote(k) for k in primary_key)})")
        session.execute(f"CREATE TABLE {qualified(table_slice)} ({', '.join(columns)})")

    def add_column(self, session, table_slice, name, logical) -> None:
        session.execute(f"ALTER TABLE {qualified(table_slice)} ADD COLUMN {quote(name)} {self.physical_type(logical)}")

    def change_column_type(self, session, table_slice, name, logical, keep_values) -> None:
        physical = self.physical_type(logical)
        statement = f"ALTER TABLE {qualified(table_slice)} ALTER COLUMN {quote(name)} SET DATA TYPE {physical}"
        if not keep_values:
            # DuckDB would still cast the rows deleted in this transaction.
            statement += f" USING CAST(NULL AS {physical})"
        session.execute(statement)

    def stage(self, session: Session, table_slice: TableSlice, frame: pd.DataFrame) -> str:
        session.connection.register(INCOMING, frame)  # type: ignore[attr-defined]
        return INCOMING

    def insert_frame(self, session: Session, table_slice: TableSlice, frame: pd.DataFrame) -> None:
        relation = self.stage(session, table_slice, frame)
        session.execute(insert_by_name_statement(qualified(table_slice), relation, list(frame.columns)))

    def read(self, session: Session, table_slice: TableSlice) -> pd.DataFrame:
        return session.connection.execute(self.select(table_slice)).fetchdf()  # type: ignore[attr-defined]
