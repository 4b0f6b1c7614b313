"""What the catalog shows after one range run of every vendor against its sandbox: each
partition's own row and quarantine counts equal to what that day holds in the warehouse,
column schemas with a description and the stored type for every column, and materialization
metadata named only from the vocabulary documented in docs/operations.md."""

import re
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from tests.support.dagster_helpers import column_types, query, range_tags
from timesheet_assets.definitions import build_definitions
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.registry import serve_sandboxes
from timesheet_assets.settings import VENDOR_NAMES
from timesheet_assets.storage import WarehouseIOManager

ANCHOR = date(2026, 3, 20)
CONFIG = SandboxConfig(seed=11, time_records=140, projects=8, employees=6, days=14, anchor_date=ANCHOR)
# A 7-day backfill in one run (the raw timesheet assets and conformed use a single-run policy).
FIRST, LAST = ANCHOR - timedelta(days=6), ANCHOR
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(7)]
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _break_records(sandboxes) -> None:
    """Make a few served records invalid (they land quarantined on their day)."""
    blikk = sandboxes["blikk"].server.app.state.sandbox.extra["data"]
    template = blikk.time_reports[0]
    for offset, record_id in ((1, 95001), (1, 95002), (4, 95003)):
        day = (FIRST + timedelta(days=offset)).isoformat()
        blikk.put_raw_time_report({**template, "id": record_id, "date": day, "hours": "eight"})
    entries = sandboxes["ibuildapp"].server.app.state.sandbox.extra["state"].entries
    for entry in list(entries.values())[::9]:
        entry["duration"] = "n/a"


@pytest.fixture(scope="session")
def loaded(tmp_path_factory):
    """One run of every asset over FIRST..LAST, once per test process; yields (definitions,
    warehouse, instance). Session-scoped so that a test process never runs it twice, and
    nothing of it outlives the run but its results: the sandboxes stop and the environment
    is restored when the run ends."""
    root = tmp_path_factory.mktemp("catalog_metadata")
    warehouse = str(root / "warehouse.duckdb")
    home = root / "dagster_home"
    home.mkdir()
    with serve_sandboxes(VENDOR_NAMES, CONFIG) as sandboxes, pytest.MonkeyPatch.context() as env:
        for sandbox in sandboxes.values():
            for name, value in sandbox.env.items():
                env.setenv(name, value)
        env.setenv("TIMESHEET_WAREHOUSE", warehouse)
        _break_records(sandboxes)
        defs = build_definitions(VENDOR_NAMES)
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            result = dg.materialize(
                list(defs.assets),
                resources={**dict(defs.resources), "io_manager": WarehouseIOManager(database=warehouse)},
                instance=instance,
                tags=range_tags(FIRST, LAST),
                raise_on_error=False,
            )
            assert result.success
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield defs, warehouse, instance


def _graph(defs):
    return defs.resolve_asset_graph()


def _partitioned_tables(defs) -> dict[dg.AssetKey, str]:
    """Each partitioned asset and its column of days."""
    graph = _graph(defs)
    found = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.partitions_def is not None and node.is_materializable:
            found[key] = str(node.metadata["partition_expr"])
    return found


def _table(key: dg.AssetKey) -> str:
    return ".".join(key.path[-2:])


def _partition_metadata(instance, key: dg.AssetKey, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    assert records, f"{key.to_user_string()} has no materialization for {partition}"
    return {k: getattr(v, "value", v) for k, v in records[0].asset_materialization.metadata.items()}


def test_the_range_covers_every_vendors_partitioned_raw_table_and_conformed(loaded):
    defs, _, _ = loaded
    tables = {key.to_user_string() for key in _partitioned_tables(defs)}
    assert {
        "raw/ajera/timesheets",
        "raw/blikk/time_reports",
        "raw/ibuildapp/time_entries",
        "raw/ibuildapp/time_entry_side_tables",
        "conformed/timesheets",
    } <= tables


def test_each_partition_of_a_range_run_reports_what_its_day_holds_in_the_warehouse(loaded):
    defs, warehouse, instance = loaded
    quarantined_somewhere = False
    for key, day_column in _partitioned_tables(defs).items():
        table = _table(key)
        has_quarantine = "quarantine_reason" in column_types(warehouse, table)
        bad = "count(*) FILTER (WHERE quarantine_reason IS NOT NULL)" if has_quarantine else "0"
        stored = {
            day.isoformat(): (rows, quarantined)
            for day, rows, quarantined in query(
                warehouse, f"SELECT CAST({day_column} AS DATE), count(*), {bad} FROM {table} GROUP BY 1"
            )
        }
        assert set(stored) <= set(DAYS), (table, sorted(stored))
        counts = []
        for day in DAYS:
            meta = _partition_metadata(instance, key, day)
            rows, quarantined = stored.get(day, (0, 0))
            counts.append(rows)
            assert meta["rows"] == meta["dagster/partition_row_count"] == rows, (table, day, meta["rows"], rows)
            if has_quarantine and key.path[0] == "raw":
                assert meta["quarantined"] == quarantined, (table, day)
                quarantined_somewhere |= quarantined > 0
        # The days differ, so the partitions' plots are not one flat line of the run's total.
        assert len(set(counts)) > 1, (table, counts)
    assert quarantined_somewhere


def test_conformed_partitions_split_their_rows_by_vendor(loaded):
    defs, warehouse, instance = loaded
    key = dg.AssetKey(["conformed", "timesheets"])
    stored = query(
        warehouse, "SELECT CAST(work_date AS DATE), source_system, count(*) FROM conformed.timesheets GROUP BY 1, 2"
    )
    for day in DAYS:
        expected = {vendor: n for stored_day, vendor, n in stored if stored_day.isoformat() == day}
        assert _partition_metadata(instance, key, day)["rows_by_vendor"] == expected


RANGE_WIDE = {"preview", "dagster/column_schema"}


def test_what_holds_for_the_whole_range_is_stored_once_on_its_last_day(loaded):
    """A range run's preview, column schema and counts by day are one value for the whole run:
    they go on the last day's materialization (the asset's latest), not on every day's."""
    defs, _, instance = loaded
    for key in _partitioned_tables(defs):
        last = _partition_metadata(instance, key, DAYS[-1])
        expected = RANGE_WIDE | ({"rows_by_work_date"} if key.path[0] == "conformed" else set())
        assert expected <= set(last), (key.to_user_string(), sorted(last))
        latest = instance.get_latest_materialization_event(key)
        assert latest is not None and latest.asset_materialization.partition == DAYS[-1], key
        for day in DAYS[:-1]:
            meta = _partition_metadata(instance, key, day)
            assert not expected & set(meta), (key.to_user_string(), day, sorted(expected & set(meta)))
            assert "rows" in meta, (key.to_user_string(), day)
    days = _partition_metadata(instance, dg.AssetKey(["conformed", "timesheets"]), DAYS[-1])["rows_by_work_date"]
    assert set(days) <= set(DAYS) and sum(days.values()) > 0


def test_every_asset_declares_each_column_with_a_description_and_the_type_the_warehouse_stores(loaded):
    defs, warehouse, instance = loaded
    graph = _graph(defs)
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        schema = node.metadata.get("dagster/column_schema")
        assert isinstance(schema, dg.TableSchema), key.to_user_string()
        assert all(c.description and c.type for c in schema.columns), key.to_user_string()
        stored = column_types(warehouse, _table(key))
        declared = {c.name: c.type for c in schema.columns}
        if key.path[:2] == ["raw", "aims360"]:
            # A view's own columns are known from its export: the declared ones are the fixed ones.
            assert declared.items() <= stored.items(), key.to_user_string()
        else:
            assert declared == stored, key.to_user_string()
        # The materialization lists the stored columns, each with its type and description.
        event = instance.get_latest_materialization_event(key)
        assert event is not None
        written = event.asset_materialization.metadata["dagster/column_schema"].value
        assert {c.name: c.type for c in written.columns} == stored, key.to_user_string()
        assert all(c.description for c in written.columns), key.to_user_string()


def documented_metadata_names() -> set[str]:
    """The names in the first column of the operations guide's metadata table."""
    text = OPERATIONS.read_text()
    section = text.split("## Materialization metadata: one vocabulary", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) > 2 and not set(cells[1].strip()) <= {"-", " "}:
            names.update(re.findall(r"`([^`]+)`", cells[1]))
    return names


def test_raw_assets_speak_only_the_documented_metadata_vocabulary(loaded):
    defs, _, instance = loaded
    documented = documented_metadata_names()
    assert {"rows", "quarantined", "records_served", "window_first", "list_requests"} <= documented
    graph = _graph(defs)
    emitted: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        partitions = DAYS if node.partitions_def is not None else [None]
        for partition in partitions:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
            ).records
            assert records, key.to_user_string()
            for name in records[0].asset_materialization.metadata:
                emitted.setdefault(name, set()).add(key.to_user_string())
    undocumented = {name: sorted(keys) for name, keys in emitted.items() if name not in documented}
    assert not undocumented, "\n".join(f"{n}: {k}" for n, k in sorted(undocumented.items()))
