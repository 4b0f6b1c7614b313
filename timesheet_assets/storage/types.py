"""Column types of incoming frames, decided once for every backend.

DuckDB reads a pandas frame's types (object columns by their values: dates, numbers, text)
and knows which type holds the values of two others (its union rule: BIGINT and DOUBLE give
DOUBLE, DATE and TIMESTAMP give TIMESTAMP, a number and text give VARCHAR). Both backends
use these *logical* types; a backend's dialect maps them to its own column types. A column
with only nulls has the logical type ``NULL``: its first real values decide its type.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import duckdb

NULL = "NULL"


def is_null_type(logical: str) -> bool:
    return logical.strip('"').upper() == NULL


_typing_lock = threading.Lock()
_typing_connection: duckdb.DuckDBPyConnection | None = None


def _typer() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process for typing (opening one costs ~16 ms, and a run types
    every output); callers hold ``_typing_lock``, as a connection is not for two threads."""
    global _typing_connection
    if _typing_connection is None:
        import duckdb  # on first use: loading the code location does not need DuckDB

        _typing_connection = duckdb.connect()
    return _typing_connection


def frame_types(frame: pd.DataFrame) -> dict[str, str]:
    """Logical type of each column of ``frame``, in column order."""
    with _typing_lock:
        conn = _typer()
        conn.register("typed_frame", frame)
        try:
            rows = conn.execute("DESCRIBE SELECT * FROM typed_frame").fetchall()
        finally:
            conn.unregister("typed_frame")
    return {name: (NULL if is_null_type(sql_type) else sql_type) for name, sql_type, *_ in rows}


def common_type(stored: str, incoming: str) -> str:
    """The logical type that holds values of both ``stored`` and ``incoming``."""
    with _typing_lock:
        # fetchall: a result left unread would keep the shared connection busy.
        rows = (
            _typer()
            .execute(
                f"SELECT typeof(v) FROM (SELECT CAST(NULL AS {stored}) AS v "
                f"UNION ALL SELECT CAST(NULL AS {incoming}) AS v) LIMIT 1"
            )
            .fetchall()
        )
    return str(rows[0][0]) if rows else incoming
