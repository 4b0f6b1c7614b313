"""How a frame is written to and read from the warehouse, whatever the backend.

* every write is one transaction: delete-the-slice and insert commit together or not at all,
  so a crash mid-write leaves the old partition, never a mix or an empty hole;
* inserts match columns by name and new columns are added, so a vendor payload that grows a
  field does not break the next write (positional inserts would silently shift columns);
  a column whose new values do not fit its type is widened to one that holds both;
* an upsert mode (output metadata ``write_mode="upsert"``, key columns from the asset's
  ``primary_key`` metadata) for incremental loads: rows with the same key are replaced, all
  others kept;
* a key lives on one day: on a partitioned write of an asset that declares a primary key,
  stored rows with an incoming key are removed from the other days in the same transaction;
* the metadata says what the table holds after the write: each partition of a range write
  its own ``dagster/partition_row_count``, and ``dagster/column_schema`` lists the stored
  columns with the types the warehouse gives them and the descriptions the asset declares.

Partition replacement uses the asset's ``partition_expr`` and the run's whole partition
range, so a single-run backfill of 30 days replaces exactly those 30 days. The backends
(``duckdb_backend.py``, ``postgres_backend.py``) differ only in how they do each step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice

from ..runs.status import refuse_write_unless_run_in_progress
from .backend import CONSTRAINED_SCHEMAS, Session, StoredColumn, WarehouseBackend
from .sql import delete_matching_keys_statement, insert_by_name_statement, qualified, table_name, where
from .types import common_type, frame_types, is_null_type

WRITE_MODE = "write_mode"
PRIMARY_KEY = "primary_key"
PARTITION_ROW_COUNT = "dagster/partition_row_count"
COLUMN_SCHEMA = "dagster/column_schema"
# Input metadata (``dg.AssetIn(metadata={SKIP_COLUMNS: [...]})``): stored columns the reading
# step does not need and that are left in the table (a raw table's payload is most of its bytes).
SKIP_COLUMNS = "skip_columns"


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def write_mode(context: dg.OutputContext) -> str:
    runtime = _plain((context.output_metadata or {}).get(WRITE_MODE))
    declared = _plain((context.definition_metadata or {}).get(WRITE_MODE))
    return str(runtime or declared or "replace")


def declares_primary_key(context: dg.OutputContext) -> bool:
    return bool(_plain((context.definition_metadata or {}).get(PRIMARY_KEY)))


def primary_key(context: dg.OutputContext) -> list[str]:
    key = _plain((context.definition_metadata or {}).get(PRIMARY_KEY))
    if not key:
        raise dg.DagsterInvariantViolationError(
            f"Asset {context.asset_key.to_user_string()} is written in upsert mode but declares no "
            f"'{PRIMARY_KEY}' metadata"
        )
    return [key] if isinstance(key, str) else list(key)


def evolve_columns(
    backend: WarehouseBackend,
    session: Session,
    table_slice: TableSlice,
    incoming: Mapping[str, str],
    replaces_table: bool,
) -> dict[str, str]:
    """Make the stored table able to take the incoming columns; returns the columns widened
    (``{"hours": "BIGINT -> DOUBLE"}``)."""
    stored = backend.columns(session, table_slice)
    widened: dict[str, str] = {}
    for name, logical in incoming.items():
        if name not in stored:
            backend.add_column(session, table_slice, name, logical)
            continue
        column = stored[name]
        if is_null_type(logical) or (backend.physical_type(logical) == column.physical and not column.untyped):
            continue
        if replaces_table or column.untyped:
            # Replacing the whole table (its rows were deleted in this transaction): columns
            # take the types of the new values. Inserting them into the old types would fail
            # ('twelve' into BIGINT) or silently change them (12.5 into BIGINT becomes 12).
            # A column that held only nulls gets its type from its first real values.
            backend.change_column_type(session, table_slice, name, logical, keep_values=False)
            continue
        # Other partitions (or rows) keep the old type. Inserting into it would silently lose
        # what the new values carry (12.5 into BIGINT is 13, a timestamp into DATE loses its
        # time); widen the column to the type that holds both, keeping every stored value.
        wider = common_type(backend.logical_type(column.physical), logical)
        if backend.physical_type(wider) != column.physical:
            backend.change_column_type(session, table_slice, name, wider, keep_values=True)
            widened[name] = f"{column.physical} -> {backend.physical_type(wider)}"
    return widened


def write_frame(
    context: dg.OutputContext, table_slice: TableSlice, frame: pd.DataFrame, session: Session
) -> dict[str, Any]:
    """Everything after the slice was deleted (``WarehouseDbClient.delete_table_slice``), in
    the same transaction; returns the materialization metadata."""
    backend = session.backend

    def insert() -> None:
        backend.insert_frame(session, table_slice, frame)

    return write_rows(
        context,
        table_slice,
        session,
        frame_types(frame),
        len(frame),
        lambda: backend.stage(session, table_slice, frame),
        insert,
    )


def _keys(context: dg.OutputContext) -> list[str]:
    """The key a write matches incoming rows on: an upsert's, or a partitioned table's."""
    keyed = write_mode(context) == "upsert" or declares_primary_key(context)
    return primary_key(context) if keyed else []


def declared_constraint(context: dg.OutputContext, table_slice: TableSlice) -> list[str] | None:
    """The primary key the database enforces on the table (conformed tables only)."""
    keys = _keys(context)
    return keys if keys and table_slice.schema in CONSTRAINED_SCHEMAS else None


def ensure_primary_key(context: dg.OutputContext, session: Session, table_slice: TableSlice) -> None:
    """Give a stored table that lacks it the primary key its asset declares (a table made
    before the constraint was, or by hand), first thing in the write's transaction: DuckDB
    builds the index from the committed rows, so adding it after the window's rows were
    deleted would count their keys again when the write inserts them."""
    constraint = declared_constraint(context, table_slice)
    backend = session.backend
    if constraint and backend.table_exists(session, table_slice) and not backend.has_primary_key(session, table_slice):
        backend.add_primary_key(session, table_slice, constraint)


def write_rows(
    context: dg.OutputContext,
    table_slice: TableSlice,
    session: Session,
    incoming: Mapping[str, str],
    rows: int,
    relation: Callable[[], str],
    insert: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """``write_frame`` for rows of any source: ``incoming`` their columns' logical types,
    ``relation`` makes them readable in this transaction (called once the table can take
    them) and returns its name, ``insert`` (optional) is a bulk path straight into the table
    for a write without keys to match."""
    backend = session.backend
    target = qualified(table_slice)
    mode = write_mode(context)
    keys = _keys(context)
    columns = list(incoming)
    widened: dict[str, str] = {}
    if not backend.table_exists(session, table_slice):
        backend.create_table(session, table_slice, incoming, declared_constraint(context, table_slice))
    else:
        replaces_table = not context.has_asset_partitions and mode != "upsert"
        widened = evolve_columns(backend, session, table_slice, incoming, replaces_table)
    moved_away = 0
    if rows:
        if keys or insert is None:
            source = relation()
            if keys:
                # Upsert: rows with an incoming key are replaced. Partition replace: the
                # window's rows are already gone, so what still matches an incoming key lives
                # on another day — a record whose work date moved. A key lives on one day
                # only, so it leaves its old day in this same transaction.
                moved_away = session.execute_count(delete_matching_keys_statement(target, source, keys))
            session.execute(insert_by_name_statement(target, source, columns))
        else:
            insert()
    total = session.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
    meta: dict[str, Any] = {"dagster/table_name": table_name(table_slice)}
    if context.has_asset_partitions:
        counts = partition_row_counts(context, session, table_slice)
        if not add_partition_metadata(context, {key: {PARTITION_ROW_COUNT: n} for key, n in counts.items()}):
            meta[PARTITION_ROW_COUNT] = sum(counts.values())
    else:
        meta["dagster/row_count"] = int(total)
    meta["table_rows_after_write"] = int(total)
    schema = stored_column_schema(context, backend.columns(session, table_slice))
    keys_written = context.asset_partition_keys if context.has_asset_partitions else []
    # Like ``ingest.metadata.range_wide``: one schema for the range, on its last partition.
    if len(keys_written) <= 1 or not add_partition_metadata(context, {keys_written[-1]: {COLUMN_SCHEMA: schema}}):
        meta[COLUMN_SCHEMA] = schema
    if context.has_asset_partitions and declares_primary_key(context):
        meta["rows_moved_from_other_days"] = int(moved_away)
    if widened:
        meta["columns_widened"] = dg.MetadataValue.json(widened)
        context.log.warning(
            f"{table_name(table_slice)}: column types widened to hold the new values: "
            f"{', '.join(f'{k} {v}' for k, v in widened.items())}"
        )
    # Last statement before the transaction commits: a run that ended keeps the old data.
    refuse_write_unless_run_in_progress(context)
    return meta


def partition_row_counts(context: dg.OutputContext, session: Session, table_slice: TableSlice) -> dict[str, int]:
    """Rows the table holds in each partition of the write, after it (daily or coarser time
    windows on the ``partition_expr``)."""
    assert table_slice.partition_dimensions, "called for partitioned writes only"
    dimension = table_slice.partition_dimensions[0]
    rows = session.execute(
        f"SELECT CAST({dimension.partition_expr} AS DATE), count(*) FROM {qualified(table_slice)} "
        f"WHERE {where(table_slice)} GROUP BY 1"
    ).fetchall()
    partitions = context.asset_partitions_def
    counts: dict[str, int] = {}
    for key in context.asset_partition_keys:
        window = partitions.time_window_for_partition_key(key)  # type: ignore[attr-defined]
        start, end = window.start.date(), window.end.date()
        counts[key] = sum(int(n) for day, n in rows if day is not None and start <= _day(day) < end)
    return counts


def _day(value: Any) -> date:
    return value if type(value) is date else pd.Timestamp(value).date()


def add_partition_metadata(context: dg.OutputContext, by_partition: Mapping[str, Mapping[str, Any]]) -> bool:
    """Give each partition of the write its own metadata (Dagster otherwise copies the IO
    manager's metadata onto every partition of a range run). False when the context belongs
    to no step (an output context built outside a run)."""
    try:
        step = context.step_context
    except dg.DagsterInvariantViolationError:
        return False
    for key, metadata in by_partition.items():
        step.add_asset_metadata(dict(metadata), asset_key=context.asset_key, partition_key=key)
    return True


def stored_column_schema(context: dg.OutputContext, stored: Mapping[str, StoredColumn]) -> dg.TableSchema:
    """The table's columns with the types the warehouse stores them as, and the descriptions
    and constraints the asset declares (in its output's or its definition's column schema)."""
    declared: dict[str, dg.TableColumn] = {}
    for source in (context.definition_metadata or {}, context.output_metadata or {}):
        schema = _plain(source.get(COLUMN_SCHEMA))
        if isinstance(schema, dg.TableSchema):
            declared.update({column.name: column for column in schema.columns})
    columns = []
    for name, column in stored.items():
        known = declared.get(name)
        columns.append(
            dg.TableColumn(
                name=name,
                type=column.physical,
                description=known.description if known else None,
                constraints=known.constraints if known else None,
            )
        )
    return dg.TableSchema(columns=columns)


def read_slice(session: Session, table_slice: TableSlice, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The slice's rows; an empty frame when the table was never written."""
    if not session.backend.table_exists(session, table_slice):
        return pd.DataFrame(columns=list(columns or []))
    return session.backend.read(session, table_slice)


def read_slice_without(session: Session, table_slice: TableSlice, skipped: Sequence[str]) -> pd.DataFrame:
    """``read_slice`` without the stored columns ``skipped`` (a raw table's payload)."""
    if skipped and not table_slice.columns and session.backend.table_exists(session, table_slice):
        stored = session.backend.columns(session, table_slice)
        table_slice = table_slice._replace(columns=[name for name in stored if name not in set(skipped)])
    return read_slice(session, table_slice)


class ByNamePandasTypeHandler(DbTypeHandler[pd.DataFrame]):
    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection: Session
    ) -> Mapping[str, Any]:
        return write_frame(context, table_slice, obj, connection)

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection: Session) -> pd.DataFrame:
        # An upstream that never produced rows (e.g. an empty first partition) reads as empty.
        skipped = _plain((context.definition_metadata or {}).get(SKIP_COLUMNS))
        return read_slice_without(connection, table_slice, skipped or ())

    @property
    def supported_types(self) -> Sequence[type]:
        return [pd.DataFrame]
