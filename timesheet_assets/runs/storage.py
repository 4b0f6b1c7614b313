"""Dagster's PostgreSQL instance storage, keeping its connections open in every process.

``dagster_postgres`` opens a new connection for every statement outside the webserver (its
engines use SQLAlchemy's ``NullPool``); a run worker stores an event per step, output,
check and partition, and the launch stores one planned event per partition and asset, so a
14-day Blikk refresh opened about 550 connections (benchmarks/RESULTS.md, "What the seconds
are"). The webserver already swaps in a small pool at start
(``optimize_for_webserver``); this storage does the same in every process that opens the
instance — the daemon, run workers, the CLI — without the webserver's statement timeout.
"""

from __future__ import annotations

from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

# One connection held per process and storage (run, event log, schedule); concurrent use (the
# daemon's threads, a step's threads) gets up to this many more, closed when returned. Both
# numbers are the webserver's defaults.
MAX_OVERFLOW = 20
POOL_RECYCLE_SECONDS = 3600
# 0 leaves PostgreSQL's statement timeout off, as for dagster_postgres's own engines.
NO_STATEMENT_TIMEOUT = 0


class PooledPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` whose run, event-log and schedule storages reuse a pooled
    connection. Configured like ``storage: postgres:`` (``postgres_db`` or ``postgres_url``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for part in (self.run_storage, self.event_log_storage, self.schedule_storage):
            part.optimize_for_webserver(NO_STATEMENT_TIMEOUT, POOL_RECYCLE_SECONDS, MAX_OVERFLOW)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
