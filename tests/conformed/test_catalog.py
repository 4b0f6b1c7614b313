"""The conformed tables as the UI describes them: every column and every check has a
description, and each column's declared type is the type the warehouse stores."""

from datetime import date

import dagster as dg
import duckdb
import pandas as pd
import pytest

from timesheet_assets.conformed.assets import PROJECTS_KEY, TIMESHEETS_KEY
from timesheet_assets.conformed.schema import (
    PROJECT_COLUMNS,
    TIMESHEET_COLUMNS,
    conform_project_frame,
    conform_timesheet_frame,
)
from timesheet_assets.definitions import build_definitions
from timesheet_assets.settings import VENDOR_NAMES
from timesheet_assets.storage import WarehouseIOManager

NOW = pd.Timestamp("2026-03-02 08:30", tz="UTC")
TIMESHEET_ROW = {
    "source_system": "blikk",
    "entry_id": "1",
    "work_date": date(2026, 3, 1),
    "employee_id": "e1",
    "employee_name": "Ada Berg",
    "project_id": "p1",
    "project_code": "P-1",
    "task": "Design",
    "regular_hours": 7.5,
    "overtime_hours": 0.5,
    "total_hours": 8.0,
    "billable_hours": 8.0,
    "status": "approved",
    "notes": "ok",
    "source_updated_at": NOW,
    "ingested_at": NOW,
}
PROJECT_ROW = {
    "source_system": "blikk",
    "project_id": "p1",
    "project_code": "P-1",
    "name": "Harbour",
    "status": "active",
    "customer_id": "c1",
    "customer_name": "Acme",
    "start_date": date(2026, 1, 1),
    "end_date": date(2026, 12, 31),
    "manager_name": "Kai Holm",
    "source_updated_at": NOW,
    "ingested_at": NOW,
}


@pytest.fixture(scope="module")
def specs():
    defs = build_definitions(VENDOR_NAMES)
    graph = defs.resolve_asset_graph()
    return graph


def stored_types(warehouse: str, frame: pd.DataFrame) -> dict[str, str]:
    @dg.asset(key=["conformed", "probe"])
    def probe() -> pd.DataFrame:
        return frame

    dg.materialize([probe], resources={"io_manager": WarehouseIOManager(database=warehouse)})
    with duckdb.connect(warehouse, read_only=True) as conn:
        return dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'conformed' AND table_name = 'probe'"
            ).fetchall()
        )


@pytest.mark.parametrize(
    "key, columns, frame",
    [
        (TIMESHEETS_KEY, TIMESHEET_COLUMNS, lambda: conform_timesheet_frame(pd.DataFrame([TIMESHEET_ROW]))),
        (PROJECTS_KEY, PROJECT_COLUMNS, lambda: conform_project_frame(pd.DataFrame([PROJECT_ROW]))),
    ],
)
def test_every_column_is_described_with_the_type_the_warehouse_stores(specs, warehouse, key, columns, frame):
    schema = specs.get(key).metadata["dagster/column_schema"]
    declared = {column.name: column for column in schema.columns}
    assert list(declared) == list(columns)
    for column in declared.values():
        assert column.description and len(column.description) > 10, column.name
    assert {name: c.type for name, c in declared.items()} == stored_types(warehouse, frame())
    assert {"DATE", "TIMESTAMP WITH TIME ZONE", "DOUBLE", "VARCHAR"} >= {c.type for c in declared.values()}
    # Required columns are shown as not nullable.
    assert declared["source_system"].constraints.nullable is False
    assert declared["notes" if key == TIMESHEETS_KEY else "customer_name"].constraints.nullable is True


def test_every_conformed_check_says_what_it_proves_and_whether_it_blocks(specs):
    for key in (TIMESHEETS_KEY, PROJECTS_KEY):
        checks = [specs.get_check_spec(check_key) for check_key in specs.get(key).check_keys]
        assert checks
        for check in checks:
            assert check.description, check.key
            assert ("Blocking" in check.description) == check.blocking, check.key
            assert ("Warning" in check.description) == (not check.blocking), check.key
