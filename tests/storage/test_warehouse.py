"""The warehouse IO manager: partition windows replaced exactly, upserts, atomic writes,
schema drift — on DuckDB and on PostgreSQL (the ``warehouse`` fixture runs each test on both)."""

from datetime import date

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import (
    column_types,
    is_postgres,
    materialization_metadata,
    materialize,
    query,
    read_table,
)
from tests.support.probe_assets import lines, probe_cards_asset, probe_lines_asset
from timesheet_assets.ingest import DATE_WINDOW_BACKFILL, daily_partitions, partition_window

STATE: dict = {}


def _lines(days):
    frame = lines(days, 3, hours=float(STATE.get("version", 1)))
    if STATE.get("extra_column"):
        frame["note"] = "added later"
    if STATE.get("explode"):
        raise RuntimeError("vendor went away mid-run")
    return frame


probe_lines = probe_lines_asset(_lines)
probe_cards = probe_cards_asset(STATE)


@pytest.fixture(autouse=True)
def clean_state():
    STATE.clear()
    yield
    STATE.clear()


def test_range_run_replaces_exactly_its_window(warehouse, instance):
    materialize([probe_lines], {}, warehouse, first=date(2026, 1, 1), last=date(2026, 1, 10), instance=instance)
    table = read_table(warehouse, "probe.lines")
    assert len(table) == 30 and table["record_key"].is_unique

    STATE["version"] = 2
    materialize([probe_lines], {}, warehouse, first=date(2026, 1, 4), last=date(2026, 1, 5), instance=instance)
    table = read_table(warehouse, "probe.lines")
    assert len(table) == 30 and table["record_key"].is_unique
    rewritten = table[table["hours"] == 2.0]
    assert sorted({str(d.date()) for d in rewritten["work_date"]}) == ["2026-01-04", "2026-01-05"]
    assert len(rewritten) == 6


def test_same_range_twice_keeps_row_count(warehouse, instance):
    for _ in range(2):
        materialize([probe_lines], {}, warehouse, first=date(2026, 1, 1), last=date(2026, 1, 7), instance=instance)
    assert len(read_table(warehouse, "probe.lines")) == 21


def _crash_mid_write(monkeypatch, table: str, row: str):
    """Make the next write fail after its delete and a partial insert, inside its transaction."""
    from timesheet_assets.storage import warehouse as module

    def crash_after_delete(self, context, table_slice, obj, connection):
        connection.execute(f"INSERT INTO {table} VALUES {row}")
        raise OSError("disk full")

    monkeypatch.setattr(module.ByNamePandasTypeHandler, "handle_output", crash_after_delete)


def test_failed_write_leaves_previous_partition_intact(warehouse, instance, monkeypatch):
    materialize([probe_lines], {}, warehouse, first=date(2026, 1, 1), last=date(2026, 1, 3), instance=instance)
    before = read_table(warehouse, "probe.lines").sort_values("record_key").reset_index(drop=True)

    with monkeypatch.context() as patch:
        _crash_mid_write(patch, "probe.lines", "('x', DATE '2026-01-01', 9.0)")
        STATE["version"] = 9
        result = materialize(
            [probe_lines],
            {},
            warehouse,
            first=date(2026, 1, 1),
            last=date(2026, 1, 3),
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    after = read_table(warehouse, "probe.lines").sort_values("record_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)


@pytest.mark.parametrize("mode", ["upsert", "replace"])
def test_failed_upsert_or_table_replace_leaves_the_table_as_it_was(warehouse, instance, monkeypatch, mode):
    STATE["cards"] = [("a", 1.0), ("b", 2.0)]
    materialize([probe_cards], {}, warehouse, instance=instance)
    with monkeypatch.context() as patch:
        _crash_mid_write(patch, "probe.cards", "('z', 9.0)")
        STATE.update(cards=[("b", 5.0), ("c", 3.0)], mode=mode)
        assert not materialize([probe_cards], {}, warehouse, instance=instance, raise_on_error=False).success
    assert read_table(warehouse, "probe.cards").set_index("record_key")["hours"].to_dict() == {"a": 1.0, "b": 2.0}


def test_new_columns_are_added_not_shifted(warehouse, instance):
    materialize([probe_lines], {}, warehouse, first=date(2026, 1, 1), last=date(2026, 1, 1), instance=instance)
    STATE["extra_column"] = True
    materialize([probe_lines], {}, warehouse, first=date(2026, 1, 2), last=date(2026, 1, 2), instance=instance)
    table = read_table(warehouse, "probe.lines")
    assert list(table.columns) == ["record_key", "work_date", "hours", "note"]
    assert table.loc[table["work_date"] == pd.Timestamp("2026-01-02"), "note"].eq("added later").all()
    assert table.loc[table["work_date"] == pd.Timestamp("2026-01-01"), "note"].isna().all()


def test_upsert_replaces_matching_keys_and_keeps_the_rest(warehouse, instance):
    STATE["cards"] = [("a", 1.0), ("b", 2.0)]
    materialize([probe_cards], {}, warehouse, instance=instance)
    STATE["cards"] = [("b", 5.0), ("c", 3.0)]
    materialize([probe_cards], {}, warehouse, instance=instance)
    table = read_table(warehouse, "probe.cards").set_index("record_key")["hours"].to_dict()
    assert table == {"a": 1.0, "b": 5.0, "c": 3.0}


def test_replace_mode_overrides_upsert_for_full_refresh(warehouse, instance):
    STATE["cards"] = [("a", 1.0), ("b", 2.0)]
    materialize([probe_cards], {}, warehouse, instance=instance)
    STATE.update(cards=[("c", 3.0)], mode="replace")
    materialize([probe_cards], {}, warehouse, instance=instance)
    assert read_table(warehouse, "probe.cards")["record_key"].tolist() == ["c"]


def test_empty_first_window_still_creates_the_table(warehouse, instance):
    @dg.asset(
        key=["raw", "probe", "empty"],
        partitions_def=daily_partitions("2026-01-01"),
        metadata={"partition_expr": "work_date"},
    )
    def empty() -> pd.DataFrame:
        return pd.DataFrame({"record_key": pd.Series(dtype="string"), "work_date": pd.Series(dtype="datetime64[ns]")})

    result = dg.materialize(
        [empty],
        partition_key="2026-01-01",
        resources={
            "io_manager": __import__("timesheet_assets.storage", fromlist=["x"]).WarehouseIOManager(database=warehouse)
        },
        instance=instance,
    )
    assert result.success
    assert len(read_table(warehouse, "probe.empty")) == 0


def test_a_column_that_was_all_null_takes_the_type_of_later_values(warehouse, instance):
    import datetime as dt

    @dg.asset(key=["raw", "probe", "dated"], metadata={"primary_key": "record_key"})
    def dated() -> dg.Output:
        return dg.Output(pd.DataFrame(STATE["rows"], columns=["record_key", "day"]), metadata={"write_mode": "upsert"})

    STATE["rows"] = [("a", None)]
    materialize([dated], {}, warehouse, instance=instance)
    STATE["rows"] = [("b", dt.date(2026, 1, 2))]
    materialize([dated], {}, warehouse, instance=instance)
    table = read_table(warehouse, "probe.dated").set_index("record_key")
    assert table.loc["b", "day"] == pd.Timestamp("2026-01-02") and pd.isna(table.loc["a", "day"])


def test_writer_waits_for_another_process_holding_the_lock(duckdb_warehouse, instance, tmp_path):
    warehouse = duckdb_warehouse
    import subprocess
    import sys
    import textwrap

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, time, sys
            c = duckdb.connect({warehouse!r})
            print("locked", flush=True)
            time.sleep(3)
            c.close()
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    materialize([probe_lines], {}, warehouse, first=date(2026, 1, 1), last=date(2026, 1, 2), instance=instance)
    holder.wait(timeout=30)
    assert len(read_table(warehouse, "probe.lines")) == 6


def _memory_limit_seen_by_writes(warehouse: str, monkeypatch, connection_config: dict | None = None) -> str:
    """The ``memory_limit`` a warehouse write runs under, read inside the write's connection."""
    from timesheet_assets.storage import WarehouseIOManager, duckdb_backend

    seen: list[str] = []
    original = duckdb_backend.connect_waiting_for_lock

    def spy(database, settings, log=None, wait_seconds=None):
        conn = original(database, settings, log, wait_seconds)
        seen.append(conn.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        return conn

    monkeypatch.setattr(duckdb_backend, "connect_waiting_for_lock", spy)
    manager = WarehouseIOManager(database=warehouse, connection_config=connection_config or {})
    context = dg.build_output_context(asset_key=dg.AssetKey(["raw", "probe", "budget"]))
    manager.create_io_manager(None).handle_output(context, pd.DataFrame({"record_key": ["a"]}))
    assert read_table(warehouse, "probe.budget")["record_key"].tolist() == ["a"]
    return seen[-1]


def test_writes_run_under_the_configured_memory_budget(duckdb_warehouse, monkeypatch):
    # DuckDB reports the budget in its own units (1GB -> "953.6 MiB"): compare through DuckDB.
    import duckdb

    warehouse = duckdb_warehouse

    def as_reported(size: str) -> str:
        with duckdb.connect(config={"memory_limit": size}) as conn:
            return conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    monkeypatch.delenv("TIMESHEET_WAREHOUSE_MEMORY_LIMIT", raising=False)
    assert _memory_limit_seen_by_writes(warehouse, monkeypatch) == as_reported("1GB")
    monkeypatch.setenv("TIMESHEET_WAREHOUSE_MEMORY_LIMIT", "256MB")
    assert _memory_limit_seen_by_writes(warehouse, monkeypatch) == as_reported("256MB")
    # The resource's own connection_config wins over the environment.
    explicit = _memory_limit_seen_by_writes(warehouse, monkeypatch, {"memory_limit": "384MB"})
    assert explicit == as_reported("384MB")


def test_an_unreadable_memory_budget_is_a_clear_error(monkeypatch):
    from timesheet_assets.settings import SettingError, warehouse_memory_limit

    monkeypatch.setenv("TIMESHEET_WAREHOUSE_MEMORY_LIMIT", "lots")
    with pytest.raises(SettingError, match="TIMESHEET_WAREHOUSE_MEMORY_LIMIT.*'lots'"):
        warehouse_memory_limit()


def test_a_partition_with_wider_values_widens_the_column_instead_of_losing_them(warehouse, instance):
    """Day 1 has whole hours (BIGINT), day 2 half hours: the column becomes DOUBLE and both
    days keep their values exactly; day 3 brings text where numbers were: VARCHAR, nothing cast
    away and the write reports what changed."""
    import datetime as dt

    @dg.asset(
        key=["raw", "probe", "drift"],
        partitions_def=daily_partitions("2026-01-01"),
        metadata={"partition_expr": "work_date"},
    )
    def drift(context: dg.AssetExecutionContext) -> pd.DataFrame:
        day = dt.date.fromisoformat(context.partition_key)
        return pd.DataFrame({"record_key": [f"{day}:1"], "work_date": [day], "hours": [STATE["hours"][day.day]]})

    # Each backend spells the types its own way, and renders a double as text its own way.
    if is_postgres(warehouse):
        integer, double, text, as_text = "bigint", "double precision", "text", ["8", "7.5", "seven"]
    else:
        integer, double, text, as_text = "BIGINT", "DOUBLE", "VARCHAR", ["8.0", "7.5", "seven"]
    STATE["hours"] = {1: 8, 2: 7.5, 3: "seven"}
    for day in (1, 2, 3):
        result = materialize(
            [drift], {}, warehouse, first=dt.date(2026, 1, day), last=dt.date(2026, 1, day), instance=instance
        )
        column_type = column_types(warehouse, "probe.drift")["hours"]
        values = [v for (v,) in query(warehouse, "SELECT hours FROM probe.drift ORDER BY work_date")]
        widened = materialization_metadata(result, ["raw", "probe", "drift"]).get("columns_widened")
        if day == 1:
            assert column_type == integer and values == [8] and widened is None
        if day == 2:
            assert column_type == double and values == [8.0, 7.5]
            assert widened == {"hours": f"{integer} -> {double}"}
        if day == 3:
            assert column_type == text and values == as_text
            assert widened == {"hours": f"{double} -> {text}"}


@dg.asset(
    key=["conformed", "probe_keyed"],
    partitions_def=daily_partitions("2026-01-01"),
    backfill_policy=DATE_WINDOW_BACKFILL,
    metadata={"partition_expr": "work_date", "primary_key": ["source_system", "entry_id"]},
)
def probe_keyed(context: dg.AssetExecutionContext) -> pd.DataFrame:
    first, last = partition_window(context)
    rows = [r for r in STATE["keyed"] if first <= r[2] <= last]
    return pd.DataFrame(rows, columns=["source_system", "entry_id", "work_date", "hours"])


def test_a_key_lives_on_one_day_and_the_conformed_key_is_a_real_constraint(warehouse, instance):
    STATE["keyed"] = [("blikk", "1", date(2026, 1, 1), 8.0), ("blikk", "2", date(2026, 1, 2), 4.0)]
    materialize([probe_keyed], {}, warehouse, first=date(2026, 1, 1), last=date(2026, 1, 2), instance=instance)
    # Entry 1 moved from the 1st to the 3rd: a run of the 3rd alone takes it off the 1st.
    STATE["keyed"] = [("blikk", "1", date(2026, 1, 3), 6.0)]
    result = materialize([probe_keyed], {}, warehouse, first=date(2026, 1, 3), last=date(2026, 1, 3), instance=instance)
    assert materialization_metadata(result, ["conformed", "probe_keyed"])["rows_moved_from_other_days"] == 1
    table = read_table(warehouse, "conformed.probe_keyed").sort_values("entry_id")
    assert [(r.entry_id, str(r.work_date.date()), r.hours) for r in table.itertuples()] == [
        ("1", "2026-01-03", 6.0),
        ("2", "2026-01-02", 4.0),
    ]
    constraints = query(
        warehouse,
        "SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = 'conformed' "
        "AND table_name = 'probe_keyed' AND constraint_type = 'PRIMARY KEY'",
    )
    assert constraints == [(1,)]
    with pytest.raises(Exception, match="(?i)duplicate|constraint"):
        query(warehouse, "INSERT INTO conformed.probe_keyed VALUES ('blikk', '2', DATE '2026-01-05', 1.0)")


def test_raw_tables_live_in_a_schema_per_vendor_and_carry_no_constraint(warehouse, instance):
    @dg.asset(key=["raw", "blikk", "time_reports"], metadata={"primary_key": "record_key"})
    def blikk_reports() -> pd.DataFrame:
        return pd.DataFrame({"record_key": ["a", "a"], "hours": [1.0, 1.0]})

    @dg.asset(key=["raw", "ajera", "timesheets"])
    def ajera_sheets() -> pd.DataFrame:
        return pd.DataFrame({"record_key": ["x"], "hours": [2.0]})

    materialize([blikk_reports, ajera_sheets], {}, warehouse, instance=instance)
    tables = query(
        warehouse,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('blikk', 'ajera') ORDER BY table_schema",
    )
    assert tables == [("ajera", "timesheets"), ("blikk", "time_reports")]
    # A vendor listing one record twice still lands (the raw table keeps what was sent).
    assert len(read_table(warehouse, "blikk.time_reports")) == 2


def test_columns_are_matched_by_name_whatever_their_order(warehouse, instance):
    @dg.asset(key=["raw", "probe", "ordered"], metadata={"primary_key": "record_key"})
    def ordered() -> dg.Output:
        return dg.Output(pd.DataFrame(STATE["rows"]), metadata={"write_mode": "upsert"})

    STATE["rows"] = {"record_key": ["a"], "hours": [8.0], "note": ["first"]}
    materialize([ordered], {}, warehouse, instance=instance)
    STATE["rows"] = {"note": ["second"], "record_key": ["b"], "hours": [4.0]}
    materialize([ordered], {}, warehouse, instance=instance)
    table = read_table(warehouse, "probe.ordered").set_index("record_key")
    assert table.loc["b", "hours"] == 4.0 and table.loc["b", "note"] == "second"
    assert table.loc["a", "hours"] == 8.0 and table.loc["a", "note"] == "first"


def test_a_downstream_asset_reads_back_what_was_written_with_the_same_types(warehouse, instance):
    """Text with separators, quotes, newlines and non-ASCII, empty text apart from null, numbers
    with infinities, booleans, dates, timestamps with and without zone: what a downstream asset
    loads is what DuckDB itself makes of the frame, on either backend."""
    import datetime as dt

    import duckdb

    frame = pd.DataFrame(
        {
            "record_key": ["a", "b", "c"],
            "text": ['x, "quoted"\nnext line', "", None],
            "unicode": ["Škoda ñ 東京", "tab\there", "back\\slash"],
            "hours": [7.5, float("inf"), None],
            "count": [1, 2, 3],
            "flag": [True, False, None],
            "work_date": [dt.date(2026, 1, 1), dt.date(2026, 1, 2), None],
            "updated_at": pd.to_datetime(["2026-01-01T05:00:00+02:00", None, "2026-01-02T00:00:00Z"], utc=True),
            "local_time": pd.to_datetime(["2026-01-01 08:00", "2026-01-01 09:30", None]),
        }
    )

    @dg.asset(key=["raw", "probe", "typed"])
    def typed() -> pd.DataFrame:
        return frame

    @dg.asset(key=["raw", "probe", "reader"], ins={"typed": dg.AssetIn(key=["raw", "probe", "typed"])})
    def reader(typed: pd.DataFrame) -> pd.DataFrame:
        STATE["loaded"] = typed
        return typed.head(0)

    materialize([typed, reader], {}, warehouse, instance=instance)
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.register("frame", frame)
        expected = conn.execute("SELECT * FROM frame").fetchdf()
    if is_postgres(warehouse):
        # PostgreSQL timestamps hold microseconds: nanosecond columns come back in microseconds.
        expected["local_time"] = expected["local_time"].astype("datetime64[us]")
    loaded = STATE["loaded"].sort_values("record_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, expected)


def test_an_input_can_skip_stored_columns_it_does_not_need(warehouse, instance):
    """``skip_columns`` input metadata: the reading step gets every other stored column (those
    added later included), the table keeps them all."""
    from timesheet_assets.storage import SKIP_COLUMNS

    @dg.asset(key=["raw", "probe", "wide"])
    def wide() -> pd.DataFrame:
        return pd.DataFrame({"record_key": ["a", "b"], "payload": ['{"x":1}', '{"x":2}'], "hours": [1.0, 2.0]})

    @dg.asset(
        key=["raw", "probe", "narrow_reader"],
        ins={"wide": dg.AssetIn(key=["raw", "probe", "wide"], metadata={SKIP_COLUMNS: ["payload"]})},
    )
    def narrow_reader(wide: pd.DataFrame) -> pd.DataFrame:
        STATE["loaded"] = wide
        return wide.head(0)

    materialize([wide, narrow_reader], {}, warehouse, instance=instance)
    loaded = STATE["loaded"].sort_values("record_key").reset_index(drop=True)
    assert list(loaded.columns) == ["record_key", "hours"]
    assert loaded["hours"].tolist() == [1.0, 2.0]
    assert read_table(warehouse, "probe.wide")["payload"].notna().all()
