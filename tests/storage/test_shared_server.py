"""The deployment shape: one PostgreSQL server holds the Dagster instance database (the root
dagster.yaml) and the warehouse database; a run of the code location's own IO manager, from
the environment as deployed, keeps its run and events in one and its tables in the other."""

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd

from tests.support.dagster_helpers import read_table
from tests.support.postgres import shared_postgres_server
from timesheet_assets.storage import warehouse_io_manager

ROOT = Path(__file__).resolve().parents[2]


@dg.asset(key=["raw", "probe", "rows"])
def probe_rows() -> pd.DataFrame:
    return pd.DataFrame({"record_key": ["a", "b", "c"], "hours": [1.5, 2.0, 7.25]})


def test_one_server_holds_the_instance_and_the_warehouse(tmp_path, monkeypatch):
    server = shared_postgres_server()
    instance_db, warehouse_db = server.create_database("dagster"), server.create_database("timesheet_warehouse")
    for name, value in {**server.env, "DAGSTER_PG_DB": instance_db}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TIMESHEET_WAREHOUSE", server.url(warehouse_db))
    monkeypatch.setenv("TIMESHEET_WAREHOUSE_PASSWORD", server.password)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        result = dg.materialize([probe_rows], instance=instance, resources={"io_manager": warehouse_io_manager()})
        assert result.success
        assert instance.get_run_record_by_id(result.run_id).dagster_run.status == dg.DagsterRunStatus.SUCCESS
    finally:
        instance.dispose()

    assert read_table(server.url(warehouse_db), "probe.rows")["hours"].tolist() == [1.5, 2.0, 7.25]
    with server.connect(instance_db) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs WHERE run_id = %s", [result.run_id])
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'probe'")
        assert cursor.fetchone() == (0,)  # the warehouse's tables are not in the instance database
