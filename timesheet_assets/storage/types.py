"""Column types of incoming frames, decided once for every backend.

DuckDB reads a pandas frame's types (object columns by their values: dates, numbers, text)
and knows which type holds the values of two others (its union rule: BIGINT and DOUBLE give
DOUBLE, DATE and TIMESTAMP give TIMESTAMP, a number and text give VARCHAR). Both backends
use these *logical* types; a backend's dialect maps them to its own column types. A column
with only nulls has the logical type ``NULL``: its first real values decide its type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import duckdb

NULL = "NULL"


def is_null_type(logical: str) -> bool:
    return logical.strip('"').upper() == NULL


def frame_types(frame: pd.DataFrame, connection: duckdb.DuckDBPyConnection | None = None) -> dict[str, str]:
    """Logical type of each column of ``frame``, in column order."""
    import duckdb  # on first use: loading the code location does not need DuckDB

    own = connection is None
    conn = duckdb.connect() if connection is None else connection
    try:
        conn.register("typed_frame", frame)
        try:
            rows = conn.execute("DESCRIBE SELECT * FROM typed_frame").fetchall()
        finally:
            conn.unregister("typed_frame")
    finally:
        if own:
            conn.close()
    return {name: (NULL if is_null_type(sql_type) else sql_type) for name, sql_type, *_ in rows}


def common_type(stored: str, incoming: str) -> str:
    """The logical type that holds values of both ``stored`` and ``incoming``."""
    import duckdb

    with duckdb.connect() as conn:
        row = conn.execute(
            f"SELECT typeof(v) FROM (SELECT CAST(NULL AS {stored}) AS v "
            f"UNION ALL SELECT CAST(NULL AS {incoming}) AS v) LIMIT 1"
        ).fetchone()
    return str(row[0]) if row else incoming
