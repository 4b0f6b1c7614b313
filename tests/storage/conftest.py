"""Every storage test runs against both warehouse backends unless it asks for one."""

import pytest

from tests.support.postgres import WAREHOUSE_BACKENDS, make_warehouse


@pytest.fixture(params=WAREHOUSE_BACKENDS)
def warehouse(request, tmp_path, monkeypatch) -> str:
    return make_warehouse(request.param, tmp_path, monkeypatch)


@pytest.fixture
def duckdb_warehouse(tmp_path) -> str:
    return str(tmp_path / "warehouse.duckdb")


@pytest.fixture
def postgres_warehouse(tmp_path, monkeypatch) -> str:
    return make_warehouse("postgresql", tmp_path, monkeypatch)
