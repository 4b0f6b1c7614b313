"""SQL both warehouse backends understand: quoting, partition windows, key matching."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def qualified(table_slice: TableSlice) -> str:
    return f"{quote(table_slice.schema)}.{quote(table_slice.table)}"


def table_name(table_slice: TableSlice) -> str:
    """The name shown in metadata: schema and table, never the database (a URL)."""
    return f"{table_slice.schema}.{table_slice.table}"


def window_clause(dimension: TablePartitionDimension) -> str:
    partitions = dimension.partitions
    if isinstance(partitions, dg.TimeWindow):
        start = partitions.start.strftime("%Y-%m-%d %H:%M:%S")
        end = partitions.end.strftime("%Y-%m-%d %H:%M:%S")
        expr = dimension.partition_expr
        return f"{expr} >= TIMESTAMP '{start}' AND {expr} < TIMESTAMP '{end}'"
    keys = ", ".join("'" + str(k).replace("'", "''") + "'" for k in partitions)
    return f"{dimension.partition_expr} IN ({keys})"


def where(table_slice: TableSlice) -> str:
    return " AND ".join(window_clause(d) for d in table_slice.partition_dimensions or [])


def select_statement(table_slice: TableSlice) -> str:
    cols = ", ".join(quote(c) for c in table_slice.columns) if table_slice.columns else "*"
    query = f"SELECT {cols} FROM {qualified(table_slice)}"
    if table_slice.partition_dimensions:
        query += " WHERE " + where(table_slice)
    return query


def delete_slice_statement(table_slice: TableSlice) -> str:
    statement = f"DELETE FROM {qualified(table_slice)}"
    if table_slice.partition_dimensions:
        statement += " WHERE " + where(table_slice)
    return statement


def outside_window(table_slice: TableSlice) -> str:
    """Rows of the table outside the slice's window (a row without a partition value is in none)."""
    return f"NOT ({where(table_slice)})"


def count_outside_statement(table_slice: TableSlice) -> str:
    return f"SELECT count(*) FROM {qualified(table_slice)} WHERE {outside_window(table_slice)}"


def repeated_keys_outside_statement(table_slice: TableSlice, keys: Sequence[str]) -> str:
    """The keys of the rows outside the slice's window whose key occurs there more than once."""
    names = ", ".join(quote(k) for k in keys)
    target, outside = qualified(table_slice), outside_window(table_slice)
    return (
        f"SELECT {names} FROM {target} WHERE {outside} AND ({names}) IN "
        f"(SELECT {names} FROM {target} WHERE {outside} GROUP BY {names} HAVING count(*) > 1)"
    )


def delete_matching_keys_statement(target: str, incoming: str, keys: Sequence[str]) -> str:
    """Delete the stored rows whose key the incoming rows bring."""
    match = " AND ".join(f"t.{quote(k)} = f.{quote(k)}" for k in keys)
    return f"DELETE FROM {target} AS t WHERE EXISTS (SELECT 1 FROM {incoming} AS f WHERE {match})"


def insert_by_name_statement(target: str, incoming: str, columns: Sequence[str]) -> str:
    names = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {target} ({names}) SELECT {names} FROM {incoming}"
