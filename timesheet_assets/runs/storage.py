"""Dagster's PostgreSQL instance storage, keeping its connections open in every process.

``dagster_postgres`` opens a new connection for every statement outside the webserver (its
engines use SQLAlchemy's ``NullPool``); a run worker stores an event per step, output,
check and partition, and the launch stores one planned event per partition and asset, so a
14-day Blikk refresh opened about 550 connections (benchmarks/RESULTS.md, "What the seconds
are"). The webserver swaps in a small pool when it starts (``optimize_for_webserver``); this
storage gives the daemon, run workers and the CLI the same pool, without the webserver's
statement timeout and with a ping before a held connection is reused: a connection the
server dropped (a restart, a failover, a proxy's idle timeout) is replaced instead of
failing the statement, as a fresh connection per statement never could.
"""

from __future__ import annotations

from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy.engine import Engine

# One connection held per process and storage (run, event log, schedule); concurrent use (the
# daemon's threads, a step's threads) gets up to this many more, closed when returned. Both
# numbers are the webserver's defaults.
MAX_OVERFLOW = 20
POOL_RECYCLE_SECONDS = 3600


class PooledPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` whose run, event-log and schedule storages reuse a pooled
    connection. Configured like ``storage: postgres:`` (``postgres_db`` or ``postgres_url``)."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        for part in (self.run_storage, self.event_log_storage, self.schedule_storage):
            # Each storage keeps its SQLAlchemy engine in ``_engine`` (what its own
            # ``optimize_for_webserver`` replaces); fail loudly if a Dagster upgrade moves it.
            unpooled: Engine = getattr(part, "_engine")  # noqa: B009 - a private attribute, named once
            options = unpooled.url.query.get("options")
            pooled = create_pg_engine(
                postgres_url,
                token_provider,
                isolation_level="AUTOCOMMIT",
                pool_size=1,
                max_overflow=MAX_OVERFLOW,
                pool_recycle=POOL_RECYCLE_SECONDS,
                pool_pre_ping=True,
                **({"connect_args": {"options": options}} if options else {}),
            )
            setattr(part, "_engine", pooled)  # noqa: B010
            unpooled.dispose()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
