"""Misconfiguration fails at load or launch with a message naming the setting."""

import dagster as dg
import pytest

from timesheet_assets.definitions import build_definitions
from timesheet_assets.sandbox.registry import sandbox_module
from timesheet_assets.storage import WarehouseIOManager

# Variables without a default: removing one must fail the run, naming it. (Base URLs of
# vendors with a documented production host have a default and are not listed.)
REQUIRED = {
    "aimsio": ["AIMSIO_USERNAME", "AIMSIO_PASSWORD"],
    "ajera": ["AJERA_BASE_URL", "AJERA_API_ID", "AJERA_USERNAME", "AJERA_PASSWORD"],
    "aims360": ["AIMS360_CLIENT_ID", "AIMS360_CLIENT_SECRET", "AIMS360_USERNAME", "AIMS360_PASSWORD"],
    "blikk": ["BLIKK_APP_ID", "BLIKK_APP_SECRET"],
    "ibuildapp": ["IBUILDAPP_BASE_URL", "IBUILDAPP_APP_CODE", "IBUILDAPP_PASSWORD"],
}
BASE_URL = {v: f"{v.upper()}_BASE_URL" for v in REQUIRED}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    parts = []
    for event in result.all_events:
        if event.is_failure or event.event_type in (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.ENGINE_EVENT):
            parts.append(event.message or "")
            error = getattr(event.event_specific_data, "error", None)
            while error is not None:
                parts.append(error.message)
                error = error.cause
    return "\n".join(parts)


def launch(vendor: str, warehouse: str, instance) -> dg.ExecuteInProcessResult:
    defs = build_definitions((vendor,))
    raw = [a for a in defs.assets if any(k.path[0] == "raw" for k in a.keys)]
    resources = {**dict(defs.resources), "io_manager": WarehouseIOManager(database=warehouse)}
    return dg.materialize(
        raw[:1],
        resources=resources,
        instance=instance,
        partition_key="2026-01-05" if raw[0].partitions_def else None,
        raise_on_error=False,
    )


def set_sandbox_env(monkeypatch, vendor: str) -> None:
    env = sandbox_module(vendor).sandbox_env("http://127.0.0.1:9")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("vendor, variable", [(v, n) for v, names in REQUIRED.items() for n in names])
def test_missing_variable_is_named(vendor, variable, monkeypatch, warehouse, instance):
    set_sandbox_env(monkeypatch, vendor)
    monkeypatch.delenv(variable)
    for alternative in ("AIMS360_ACCESS_TOKEN", "IBUILDAPP_TOKEN"):
        monkeypatch.delenv(alternative, raising=False)
    try:
        result = launch(vendor, warehouse, instance)
    except Exception as exc:  # noqa: BLE001 - failing at load time is fine too, if it names the variable
        text = str(exc)
    else:
        assert not result.success
        text = failure_text(result)
    assert variable in text


@pytest.mark.parametrize("vendor", sorted(REQUIRED))
def test_plain_http_to_a_remote_host_is_refused(vendor, monkeypatch, warehouse, instance):
    set_sandbox_env(monkeypatch, vendor)
    monkeypatch.setenv(BASE_URL[vendor], "http://timesheets.example.com/AjeraAPI.ashx")
    result = launch(vendor, warehouse, instance)
    assert not result.success
    assert "refused" in failure_text(result) and "https" in failure_text(result)


@pytest.mark.parametrize(
    "vendor, field, value",
    [("blikk", "page_size", 101), ("blikk", "page_size", 0), ("ajera", "page_size", 0), ("ibuildapp", "page_size", 0)],
)
def test_page_size_out_of_range_is_refused_naming_the_setting(vendor, field, value, monkeypatch):
    set_sandbox_env(monkeypatch, vendor)
    resource = build_definitions((vendor,)).resources[vendor]
    with pytest.raises(Exception, match=field):
        type(resource)(**{**resource.__dict__, field: value})
