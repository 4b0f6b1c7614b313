"""The production dagster.yaml against a real PostgreSQL server: a materialization's run and
event log are written to and read back from Postgres."""

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from tests.support.postgres import postgres_server
from timesheet_assets.storage import WarehouseIOManager

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


@dg.asset(key=["raw", "probe", "rows"], pool="probe", group_name="probe")
def probe_rows() -> pd.DataFrame:
    return pd.DataFrame({"record_key": ["a", "b", "c"], "hours": [1.5, 2.0, 7.25]})


def production_instance(postgres, tmp_path, monkeypatch) -> dg.DagsterInstance:
    """An instance configured by the repository's root dagster.yaml, pointed at ``postgres``."""
    for name, value in postgres.env.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def test_instance_from_root_dagster_yaml_stores_runs_and_events_in_postgres(postgres, tmp_path, monkeypatch):
    instance = production_instance(postgres, tmp_path, monkeypatch)
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
        result = dg.materialize(
            [probe_rows],
            instance=instance,
            resources={"io_manager": WarehouseIOManager(database=str(tmp_path / "w.duckdb"))},
        )
        assert result.success
        record = instance.get_run_record_by_id(result.run_id)
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "probe", "rows"]))
        assert event.run_id == result.run_id
        assert event.asset_materialization.metadata["dagster/row_count"].value == 3
    finally:
        instance.dispose()

    # Read the same facts straight from the Postgres tables, bypassing Dagster's caches.
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
            assert cur.fetchone()[0] == "SUCCESS"
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                (result.run_id,),
            )
            assert cur.fetchone()[0] == 1
    finally:
        conn.close()


def test_pool_default_limit_applies_to_vendor_pools(postgres, tmp_path, monkeypatch):
    instance = production_instance(postgres, tmp_path, monkeypatch)
    try:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert instance.event_log_storage.supports_global_concurrency_limits
    finally:
        instance.dispose()


def test_root_instance_supervises_runs(postgres, tmp_path, monkeypatch):
    """The launcher run monitoring can rely on, the monitoring settings docs/operations.md
    explains, and run retries for dead workers only."""
    from timesheet_assets.runs.launcher import LocalProcessRunLauncher

    instance = production_instance(postgres, tmp_path, monkeypatch)
    try:
        launcher = instance.run_launcher
        assert isinstance(launcher, LocalProcessRunLauncher)
        assert launcher.supports_check_run_worker_health and not launcher.supports_resume_run
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.run_monitoring_poll_interval_seconds <= 30
        assert instance.run_monitoring_max_runtime_seconds > 0
        # A slot is freed only after any step of a failed run has stopped calling its vendor:
        # the run-status check interval plus one request's timeout.
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] >= 5 + 30
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure is False
    finally:
        instance.dispose()


def _probe_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    """A run record to store events against (nothing executes)."""
    defs = dg.Definitions(jobs=[dg.define_asset_job("probe_job", [probe_rows])], assets=[probe_rows])
    return instance.create_run_for_job(defs.resolve_job_def("probe_job"))


def _sessions_opened(postgres) -> int:
    """Connections PostgreSQL has accepted to the instance's database so far."""
    conn = postgres.connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_stat_force_next_flush()")
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (postgres.db,))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_instance_keeps_its_connections_open_across_events(postgres, tmp_path, monkeypatch):
    """A run worker stores an event per step, output and partition: they go over the
    connection the instance holds, not a new one each (dagster_postgres outside the webserver
    connects per statement)."""
    instance = production_instance(postgres, tmp_path, monkeypatch)
    try:
        run = _probe_run(instance)
        instance.report_engine_event("warm-up", run)
        before = _sessions_opened(postgres)
        for n in range(40):
            instance.report_engine_event(f"event {n}", run)
            instance.get_run_by_id(run.run_id)
        opened = _sessions_opened(postgres) - before
        # Our own two counting connections; the 80 statements reuse the held ones.
        assert opened <= 3, f"{opened} connections opened for 80 statements"
        stored = [entry.message for entry in instance.all_logs(run.run_id)]
        assert [m for m in stored if m.startswith("event ")] == [f"event {n}" for n in range(40)]
    finally:
        instance.dispose()


def test_a_connection_the_server_dropped_is_replaced_not_failed(postgres, tmp_path, monkeypatch):
    """A held connection the server closed (a restart, a failover, a proxy's idle timeout)
    costs nothing: the next statement gets a new one instead of an error."""
    instance = production_instance(postgres, tmp_path, monkeypatch)
    try:
        run = _probe_run(instance)
        instance.report_engine_event("before", run)
        conn = postgres.connect(autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (postgres.db,),
                )
                assert any(killed for (killed,) in cur.fetchall())  # the instance's held connections
        finally:
            conn.close()
        instance.report_engine_event("after", run)
        assert instance.get_run_by_id(run.run_id) is not None
        assert [e.message for e in instance.all_logs(run.run_id) if e.message in ("before", "after")] == [
            "before",
            "after",
        ]
    finally:
        instance.dispose()
