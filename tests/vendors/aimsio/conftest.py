"""Aimsio tests run many short materializations; an in-memory Dagster instance keeps each
test's setup at a fraction of a second (``instance_for_test`` builds SQLite storages on disk,
about a second per test). Cursor reads (``get_latest_materialization_event``) and event logs
behave the same."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst
