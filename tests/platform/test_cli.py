"""The project's CLI covers the everyday commands on an explicit instance: sandbox exports a
shell can paste, listings, a vendor's refresh over a date range (queued for the daemon, or
run here), a backfill of the work-date partitions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date

import dagster as dg
import pytest

from timesheet_assets.cli import main, sandbox_exports
from timesheet_assets.definitions import build_definitions
from timesheet_assets.location import CODE_LOCATION
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.vendors.blikk.sandbox import create_app, sandbox_env

DAY = date(2025, 3, 31)
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def shell_values(lines: list[str], names: list[str]) -> dict[str, str]:
    """What a POSIX shell holds after running ``lines``."""
    script = "\n".join(lines) + "\n" + "\n".join(f'printf "%s\\0" "${name}"' for name in names)
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    return dict(zip(names, out.split("\0")[:-1]))


def test_exports_survive_a_shell_exactly():
    values = {
        "AIMS360_VIEWS": "Orders/Open Orders;Invoices/All Invoices",
        "ODD": 'it\'s $HOME `x` "q"',
        "URL": "http://127.0.0.1:8900",
    }
    lines = sandbox_exports(values)
    assert lines[0] == "export AIMS360_VIEWS='Orders/Open Orders;Invoices/All Invoices'"
    assert shell_values(lines, list(values)) == values


def test_make_sandbox_prints_exports_a_shell_can_paste(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMESHEET_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "timesheet_assets.cli", "sandbox", "--port", "0", "--days", "5"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("# sandboxes running"):
                break
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    exports = [line for line in lines if line.startswith("export ")]
    assert "export AIMS360_VIEWS='Orders/Open Orders'" in exports
    names = [line.split()[1].split("=", 1)[0] for line in exports]
    values = shell_values(exports, names)
    assert values["AIMS360_VIEWS"] == "Orders/Open Orders"
    assert values["BLIKK_BASE_URL"].startswith("http://127.0.0.1:")
    assert date.fromisoformat(values["TIMESHEET_START_DATE"])  # partitions where the data starts
    # Every other line is a comment, so the whole output can be pasted as it is.
    assert all(line.startswith(("export ", "#")) for line in lines), lines


# `dev` started where Ctrl-C is ignored (a script's background job): the server it starts must
# still stop when `dev` gets SIGTERM. The server here is a stand-in that prints and sleeps.
DEV_WITH_CTRL_C_IGNORED = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
from timesheet_assets.demo import _serve_until_stopped
server = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]
sys.exit(_serve_until_stopped(server, grace_seconds=300))
"""


def test_dev_stops_its_server_on_sigterm_when_started_with_ctrl_c_ignored():
    process = subprocess.Popen(
        [sys.executable, "-c", DEV_WITH_CTRL_C_IGNORED], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout.readline().strip() == "up"
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=60) == 0  # the server got Ctrl-C and ended by it
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_list_shows_assets_jobs_schedules_and_sensors(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "raw/blikk/time_reports" in out and "refresh_all" in out and "daily_refresh" in out
    line = next(row for row in out.splitlines() if row.startswith("raw/blikk/time_reports "))
    key = dg.AssetKey(["raw", "blikk", "time_reports"])
    checks = sum(1 for check in build_definitions().resolve_asset_graph().asset_check_keys if check.asset_key == key)
    assert line.split()[1:] == ["blikk", "daily", str(checks), "26", "h"]
    assert "alert_on_run_failure" in out and "alert_on_overdue_assets" in out


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("TIMESHEET_VENDORS", "blikk")
    monkeypatch.setenv("TIMESHEET_START_DATE", "2025-03-01")
    monkeypatch.setenv("TIMESHEET_WAREHOUSE", str(tmp_path / "w.duckdb"))
    return folder


def test_refresh_runs_the_vendors_named_job_over_the_range_on_the_chosen_instance(home, serve_app, monkeypatch, capsys):
    server = serve_app(create_app(SandboxConfig(anchor_date=DAY, days=3, time_records=20)))
    for name, value in sandbox_env(server.url).items():
        monkeypatch.setenv(name, value)

    # Queued for the daemon (none runs here, and the command says so).
    assert main(["refresh", "blikk", "--from", "2025-03-30", "--to", str(DAY), "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "no dagster-daemon is running for this instance" in out
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [queued] = instance.get_runs()
        assert queued.job_name == "refresh_blikk" and queued.status == dg.DagsterRunStatus.QUEUED
        assert (queued.tags[RANGE_START], queued.tags[RANGE_END]) == ("2025-03-30", str(DAY))
        # Created through the code location: the UI can re-execute it.
        assert queued.remote_job_origin.location_name == CODE_LOCATION

    # Run here and followed to the end.
    assert main(["refresh", "blikk", "--from", str(DAY), "--to", str(DAY), "--home", str(home), "--wait"]) == 0
    out = capsys.readouterr().out
    assert "done     raw/blikk/time_reports" in out and "success" in out
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ran = instance.get_runs()[0]
        assert ran.job_name == "refresh_blikk" and ran.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey(["conformed", "timesheets"])) is not None


def test_backfill_records_a_backfill_of_the_vendors_partitioned_assets(home, capsys):
    assert main(["backfill", "--from", "2025-03-29", "--to", str(DAY), "--vendor", "blikk", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert (
        "not partitioned, so not in the backfill (re-read them with refresh): conformed/projects, raw/blikk/projects"
        in out
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [backfill] = instance.get_backfills()
        assert {k.to_user_string() for k in backfill.asset_selection} == {
            "raw/blikk/time_reports",
            "conformed/timesheets",
        }
        targeted = backfill.asset_backfill_data.target_subset
        partitions = targeted.get_partitions_subset(dg.AssetKey(["raw", "blikk", "time_reports"])).get_partition_keys()
        assert sorted(partitions) == ["2025-03-29", "2025-03-30", "2025-03-31"]


def test_commands_refuse_what_cannot_work_with_a_clear_message(home, capsys):
    assert main(["refresh", "aims360", "--from", str(DAY), "--to", str(DAY), "--home", str(home)]) == 2
    assert "no job refresh_aims360 in this code location" in capsys.readouterr().err
    assert main(["backfill", "--from", "2025-02-01", "--to", str(DAY), "--home", str(home)]) == 2
    assert "--from 2025-02-01 is before the first partition, TIMESHEET_START_DATE 2025-03-01" in capsys.readouterr().err
    assert main(["backfill", "--from", "2025-03-31", "--to", "2025-03-01", "--home", str(home)]) == 2
    assert "--to 2025-03-01 is before --from 2025-03-31" in capsys.readouterr().err
    assert main(["refresh", "blikk", "--home", str(home / "missing")]) == 2
    assert "holds no dagster.yaml: not a Dagster home" in capsys.readouterr().err


def test_one_code_location_name_everywhere(tmp_path):
    """Selectors and run links are the same in development and production."""
    import tomllib
    from pathlib import Path

    import yaml

    from timesheet_assets.location import write_workspace

    root = Path(__file__).resolve().parents[2]
    local = yaml.safe_load(write_workspace(tmp_path).read_text())
    repository = yaml.safe_load((root / "workspace.yaml").read_text())
    assert local == repository  # what make dev loads is the repository's workspace
    deployed = yaml.safe_load((root / "deploy" / "workspace.yaml").read_text())
    names = {
        repository["load_from"][0]["python_module"]["location_name"],
        deployed["load_from"][0]["grpc_server"]["location_name"],
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["dagster"]["code_location_name"],
    }
    assert names == {CODE_LOCATION}
