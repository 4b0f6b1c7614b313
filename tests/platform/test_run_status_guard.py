"""A step stops once its run is over: the run-status check between vendor requests and at the
warehouse's commit point."""

from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import httpx
import pandas as pd
import pytest

from tests.support.dagster_helpers import failure_text, materialize, read_table, step_retries
from timesheet_assets.http import FakeClock, RateLimiter, VendorClient
from timesheet_assets.runs import RUN_STATUS_CHECK_SECONDS, RunNoLongerInProgress, RunStatusGuard
from timesheet_assets.runs.status import check_interval_seconds
from timesheet_assets.sandbox.data import SandboxConfig
from timesheet_assets.sandbox.registry import serve_sandboxes
from timesheet_assets.settings import SettingError
from timesheet_assets.vendors.blikk import BlikkResource
from timesheet_assets.vendors.blikk.assets import TIME_REPORTS_KEY
from timesheet_assets.vendors.blikk.definitions import definitions as blikk_definitions

Status = dg.DagsterRunStatus


class StatusBoard:
    """Stands in for the instance: the run's status, and how often it was read."""

    def __init__(self, status=Status.STARTED):
        self.status = status
        self.reads = 0

    def get_run_by_id(self, run_id):
        self.reads += 1
        return SimpleNamespace(run_id=run_id, status=self.status)


def test_the_guard_reads_the_status_at_most_once_per_interval():
    board, clock = StatusBoard(), FakeClock()
    guard = RunStatusGuard(board, "r1", interval_seconds=5.0, monotonic=clock.monotonic)
    for _ in range(50):
        guard.check()
        clock.sleep(0.3)  # 50 requests over 15 s
    assert board.reads == 3  # at 0, 5.1 and 10.2 s


@pytest.mark.parametrize("ended", [Status.FAILURE, Status.CANCELED, Status.CANCELING, Status.SUCCESS])
def test_the_guard_stops_the_step_for_good_once_the_run_is_over(ended):
    board, clock = StatusBoard(), FakeClock()
    guard = RunStatusGuard(board, "r1", interval_seconds=5.0, monotonic=clock.monotonic)
    guard.check()
    board.status = ended
    guard.check()  # within the interval: not read yet
    clock.sleep(5.0)
    with pytest.raises(RunNoLongerInProgress) as raised:
        guard.check()
    assert raised.value.allow_retries is False  # no step retry in a run that is over
    assert ended.value in str(raised.value)
    board.status = Status.STARTED
    with pytest.raises(RunNoLongerInProgress):
        guard.check()  # no way back, and no more reads
    assert board.reads == 2


def test_an_unreadable_status_lets_the_step_go_on():
    class Down:
        def get_run_by_id(self, run_id):
            raise ConnectionError("instance database unreachable")

    RunStatusGuard(Down(), "r1", interval_seconds=1.0).check()


def test_the_interval_setting():
    assert check_interval_seconds({}) == 5.0
    assert check_interval_seconds({RUN_STATUS_CHECK_SECONDS: "2.5"}) == 2.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SettingError, match=RUN_STATUS_CHECK_SECONDS):
            check_interval_seconds({RUN_STATUS_CHECK_SECONDS: bad})


def test_the_client_asks_before_every_attempt_and_sends_nothing_once_told_to_stop():
    sent = []
    answers = [httpx.Response(503), httpx.Response(200, json={"n": 1}), httpx.Response(200, json={"n": 2})]

    def transport(request):
        sent.append(request.url.path)
        return answers.pop(0)

    asked = []

    def between_requests():
        asked.append(len(sent))
        if len(sent) >= 2:
            raise RunNoLongerInProgress("r1", Status.FAILURE, "vendor request")

    clock = FakeClock()
    client = VendorClient(
        "probe",
        "http://127.0.0.1:9",
        limiter=RateLimiter(100.0, clock=clock),
        clock=clock,
        transport=httpx.MockTransport(transport),
        between_requests=between_requests,
    )
    assert client.get_json("/a") == {"n": 1}  # a 503, then the retry
    with pytest.raises(RunNoLongerInProgress):
        client.get_json("/b")
    assert asked == [0, 1, 2]  # before the first attempt, before the retry, before /b
    assert sent == ["/a", "/a"]


CONFIG = SandboxConfig(seed=9, time_records=3000, days=20, employees=8, projects=6)


def test_a_vendor_step_stops_when_its_run_is_failed_mid_read(tmp_path, monkeypatch, instance):
    """An in-process run of Blikk's time reports; while the sandbox serves the third page the
    run is failed (as run monitoring does): the step stops with no step retry, sends at most
    the pages already in flight, and writes nothing."""
    monkeypatch.setenv(RUN_STATUS_CHECK_SECONDS, "0.001")
    warehouse = str(tmp_path / "warehouse.duckdb")
    last = CONFIG.anchor_date
    first = last - timedelta(days=CONFIG.days - 1)
    with serve_sandboxes(("blikk",), CONFIG) as running:
        sandbox = running["blikk"].server.sandbox
        data = sandbox.extra["data"]
        pages_served = []

        def fail_the_run_on_page_3(path, page, body):
            if path.endswith("/TimeReports"):
                pages_served.append(page)
                if len(pages_served) == 3:
                    (run,) = instance.get_runs()
                    instance.report_run_failed(run, "run worker is gone")

        data.page_hooks.append(fail_the_run_on_page_3)
        resource = BlikkResource.from_values(running["blikk"].env)
        assets = [a for a in blikk_definitions().assets if TIME_REPORTS_KEY in a.keys]
        result = materialize(
            assets,
            {"blikk": resource},
            warehouse,
            first=first,
            last=last,
            instance=instance,
            raise_on_error=False,
        )
        full_read = -(-sum(1 for r in data.time_reports if first <= date.fromisoformat(r["date"][:10]) <= last) // 100)

    assert not result.success
    assert "no longer in progress" in failure_text(result)
    assert step_retries(result) == 0
    # Two pages are in flight at most (the client's parallel cap): the third, and one more
    # that was sent before the run was failed.
    assert len(pages_served) <= 4 < full_read
    assert not _has_table(warehouse, "time_reports")


@dg.asset(key=["probe", "guarded"])
def guarded(context: dg.AssetExecutionContext) -> pd.DataFrame:
    if context.run.tags.get("fail_before_write"):
        context.instance.report_run_failed(context.run, "canceled while computing")
    return pd.DataFrame({"record_key": ["b"], "run": [context.run_id]})


def test_the_warehouse_refuses_the_write_of_a_run_that_is_over(warehouse, instance):
    first = dg.materialize([guarded], resources=_io(warehouse), instance=instance)
    assert first.success
    second = dg.materialize(
        [guarded],
        resources=_io(warehouse),
        instance=instance,
        tags={"fail_before_write": "1"},
        raise_on_error=False,
    )
    assert not second.success
    assert "write of probe/guarded refused" in failure_text(second)
    assert read_table(warehouse, "probe.guarded")["run"].tolist() == [first.run_id]


def _io(warehouse: str) -> dict:
    from timesheet_assets.storage import WarehouseIOManager

    return {"io_manager": WarehouseIOManager(database=warehouse)}


def _has_table(warehouse: str, table: str) -> bool:
    if not Path(warehouse).exists():
        return False
    with duckdb.connect(warehouse, read_only=True) as conn:
        return bool(
            conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0]
        )
