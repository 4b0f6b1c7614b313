"""Secrets come only from environment variables and never show up in logs, the event log,
metadata or exception texts — for every vendor, on success and on failure."""

import logging
from datetime import date, timedelta

import dagster as dg
import pytest

from tests.support.dagster_helpers import range_tags
from timesheet_assets.definitions import build_definitions
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.registry import serve_sandboxes
from timesheet_assets.settings import VENDOR_NAMES
from timesheet_assets.storage import WarehouseIOManager

ANCHOR = date(2026, 4, 10)
CONFIG = SandboxConfig(seed=11, time_records=60, projects=4, employees=4, days=6, anchor_date=ANCHOR)
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "API_ID", "CLIENT_ID", "USERNAME", "EMAIL", "APP_ID")


def secret_values(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if any(w in k for w in SECRET_WORDS) and len(v) >= 6}


def everything_recorded(instance: dg.DagsterInstance, run_id: str) -> str:
    """Every event-log entry of the run (messages, metadata, errors) as one text."""
    parts = []
    for record in instance.all_logs(run_id):
        parts.append(record.user_message or "")
        parts.append(repr(record.dagster_event))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def sandboxes():
    with serve_sandboxes(VENDOR_NAMES, CONFIG) as running:
        yield running


def test_every_credential_field_is_an_env_var(sandboxes, monkeypatch):
    for sandbox in sandboxes.values():
        for name, value in sandbox.env.items():
            monkeypatch.setenv(name, value)
    defs = build_definitions(VENDOR_NAMES)
    checked = 0
    for vendor in VENDOR_NAMES:
        resource = defs.resources[vendor]
        for field, value in resource.__dict__.items():
            if any(
                w.lower() in field.lower()
                for w in ("password", "secret", "token", "api_id", "username", "client_id", "email", "app_id")
            ):
                if value is None:
                    continue
                assert isinstance(value, dg.EnvVar), f"{vendor}.{field} is not read from an environment variable"
                checked += 1
    assert checked >= 10


def test_no_secret_in_logs_events_metadata_or_errors(sandboxes, monkeypatch, warehouse, instance, caplog):
    secrets: dict[str, str] = {}
    for sandbox in sandboxes.values():
        for name, value in sandbox.env.items():
            monkeypatch.setenv(name, value)
        secrets.update(secret_values(sandbox.env))
    assert len(secrets) >= 8
    caplog.set_level(logging.DEBUG)
    defs = build_definitions(VENDOR_NAMES)
    resources = {**dict(defs.resources), "io_manager": WarehouseIOManager(database=warehouse)}
    ok = dg.materialize(
        list(defs.assets),
        resources=resources,
        instance=instance,
        tags=range_tags(ANCHOR - timedelta(days=3), ANCHOR),
        raise_on_error=False,
    )
    assert ok.success

    # Now every vendor with wrong, distinctive credentials: each run fails, quoting no secret.
    wrong = {}
    for name in list(secrets):
        wrong[name] = f"Wr0ng-{name.lower()}-Zq81x"
        monkeypatch.setenv(name, wrong[name])
    monkeypatch.delenv("AIMS360_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("IBUILDAPP_TOKEN", raising=False)
    defs = build_definitions(VENDOR_NAMES)
    resources = {**dict(defs.resources), "io_manager": WarehouseIOManager(database=warehouse)}
    failed = dg.materialize(
        [a for a in defs.assets if not any(k.path[0] == "conformed" for k in a.keys)],
        resources=resources,
        instance=instance,
        tags=range_tags(ANCHOR - timedelta(days=1), ANCHOR),
        raise_on_error=False,
    )
    assert not failed.success
    failures = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures, "bad credentials must fail the steps"

    texts = [
        everything_recorded(instance, ok.run_id),
        everything_recorded(instance, failed.run_id),
        "\n".join(r.getMessage() for r in caplog.records),
        "\n".join(str(e.event_specific_data) for e in failures),
    ]
    for value in [*secrets.values(), *wrong.values()]:
        for text in texts:
            assert value not in text
