"""TIMESHEET_WAREHOUSE: a DuckDB path or a PostgreSQL URL; the password never shows — not in
a parse error, a connection error, the run's events and logs, nor the resource config Dagster
stores — for a good URL or a bad one."""

import logging
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from tests.support.dagster_helpers import range_tags, read_table
from tests.support.postgres import shared_postgres_server
from tests.support.probe_assets import probe_lines_asset
from timesheet_assets.settings import SettingError
from timesheet_assets.storage import parse_target, redact_url, warehouse_io_manager

SECRET = "S3cr3t-Pw-77"


@pytest.mark.parametrize(
    "raw, kind, display",
    [
        ("warehouse.duckdb", "duckdb", "warehouse.duckdb"),
        ("/srv/data/w.duckdb", "duckdb", "/srv/data/w.duckdb"),
        (
            f"postgresql://etl:{SECRET}@db.internal:5433/warehouse",
            "postgresql",
            "postgresql://etl@db.internal:5433/warehouse",
        ),
        (f"postgres://etl:{SECRET}@db/warehouse?sslmode=require", "postgresql", "postgresql://etl@db/warehouse"),
        ("postgresql://etl@db/warehouse", "postgresql", "postgresql://etl@db/warehouse"),
    ],
)
def test_a_path_or_a_url(raw, kind, display):
    target = parse_target(raw)
    assert (target.kind, target.display) == (kind, display)
    assert SECRET not in repr(target) and SECRET not in target.display


def test_the_password_comes_from_the_url_or_the_environment():
    assert parse_target(f"postgresql://etl:{SECRET}@db/w").password == SECRET
    assert parse_target("postgresql://etl@db/w", password=SECRET).password == SECRET
    assert parse_target("postgresql://etl:p%40ss@db/w").password == "p@ss"  # percent-encoded
    assert parse_target("postgresql://etl@db/w?sslmode=require").connect_kwargs()["sslmode"] == "require"


@pytest.mark.parametrize(
    "raw, message",
    [
        (f"postgresql://etl:{SECRET}@db:notaport/w", "bad port"),
        (f"postgresql://etl:{SECRET}@db:99999/w", "bad port"),
        (f"postgresql://etl:{SECRET}@/w", "no PostgreSQL host"),
        (f"postgresql://etl:{SECRET}@db/", "one database"),
        (f"postgresql://etl:{SECRET}@db/a/b", "one database"),
        (f"mysql://etl:{SECRET}@db/w", "not supported"),
        (f"snowflake://etl:{SECRET}@acct/db", "snowflake is not offered as a warehouse"),
        (f"bigquery://project/dataset?credentials={SECRET}", "bigquery is not offered as a warehouse"),
        (f"postgresql://etl:{SECRET[:4]}@{SECRET[4:]}@db:x/w", "bad port"),  # an '@' in the password
        (f"postgresql://etl@db:x/w?password={SECRET}", "bad port"),
    ],
)
def test_a_bad_url_is_a_clear_error_without_the_password(raw, message):
    with pytest.raises(SettingError, match=message) as error:
        parse_target(raw)
    text = str(error.value)
    assert "TIMESHEET_WAREHOUSE" in text
    assert SECRET not in text and SECRET[:4] + "@" not in text and SECRET[4:] not in text


def test_redaction_masks_the_password_of_any_url():
    assert redact_url(f"postgresql://etl:{SECRET}@db/w") == "postgresql://etl:***@db/w"
    assert SECRET not in redact_url(f"snowflake://etl:{SECRET}@acct/db?warehouse=x&password={SECRET}")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def everything_recorded(instance: dg.DagsterInstance, run_id: str) -> str:
    """The run's events (messages, metadata, errors), its job snapshot (resource config) and
    its run config, as one text."""
    parts = [repr(record) for record in instance.all_logs(run_id)]
    run = instance.get_run_by_id(run_id)
    parts.append(repr(run))
    parts.append(repr(instance.get_job_snapshot(run.job_snapshot_id)))
    return "\n".join(parts)


probe_lines = probe_lines_asset(
    lambda days: pd.DataFrame({"record_key": [str(days[0])], "work_date": [days[0]], "hours": [1.0]})
)


def _run(instance) -> dg.ExecuteInProcessResult:
    # The code location's own IO manager, built from the environment as in production.
    return dg.materialize(
        [probe_lines],
        resources={"io_manager": warehouse_io_manager()},
        instance=instance,
        tags=range_tags(date(2026, 1, 1), date(2026, 1, 1)),
        raise_on_error=False,
    )


@pytest.mark.parametrize("where", ["url", "environment"])
def test_no_password_in_events_logs_config_or_errors_for_a_good_or_a_bad_url(instance, monkeypatch, where, caplog):
    server = shared_postgres_server()
    db = server.create_database()
    caplog.set_level(logging.DEBUG)

    def configure(password: str) -> str:
        monkeypatch.delenv("TIMESHEET_WAREHOUSE_PASSWORD", raising=False)
        if where == "url":
            url = f"postgresql://{server.user}:{password}@{server.host}:{server.port}/{db}"
        else:
            url = server.url(db)
            monkeypatch.setenv("TIMESHEET_WAREHOUSE_PASSWORD", password)
        monkeypatch.setenv("TIMESHEET_WAREHOUSE", url)
        return url

    url = configure(server.password)
    good = _run(instance)
    assert good.success
    assert len(read_table(url, "probe.lines")) == 1

    wrong = "Wr0ng-warehouse-Pw-31"
    configure(wrong)
    bad = _run(instance)
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    error_text = failure.event_specific_data.error.to_string()
    assert "could not connect to the warehouse" in error_text and "password authentication failed" in error_text

    texts = [
        everything_recorded(instance, good.run_id),
        everything_recorded(instance, bad.run_id),
        error_text,
        "\n".join(r.getMessage() for r in caplog.records),
    ]
    for secret in (server.password, wrong):
        for text in texts:
            assert secret not in text


def test_a_bad_url_fails_loading_the_code_location_without_the_password(monkeypatch):
    from timesheet_assets.definitions import build_definitions

    monkeypatch.setenv("TIMESHEET_WAREHOUSE", f"postgresql://etl:{SECRET}@db:port/w")
    with pytest.raises(SettingError) as error:
        build_definitions(("blikk",))
    assert SECRET not in str(error.value) and "postgresql://etl:***@db:port/w" in str(error.value)


def test_the_lock_wait_is_a_number_of_seconds(monkeypatch):
    from timesheet_assets.settings import warehouse_lock_wait_seconds

    monkeypatch.delenv("TIMESHEET_WAREHOUSE_LOCK_WAIT_SECONDS", raising=False)
    assert warehouse_lock_wait_seconds() == 120.0
    monkeypatch.setenv("TIMESHEET_WAREHOUSE_LOCK_WAIT_SECONDS", "15")
    assert warehouse_lock_wait_seconds() == 15.0
    for bad in ("soon", "-3"):
        monkeypatch.setenv("TIMESHEET_WAREHOUSE_LOCK_WAIT_SECONDS", bad)
        with pytest.raises(SettingError, match="TIMESHEET_WAREHOUSE_LOCK_WAIT_SECONDS"):
            warehouse_lock_wait_seconds()
