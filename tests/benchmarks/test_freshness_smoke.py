"""The time-to-fresh-data benchmark runs end to end on tiny sizes and its numbers add up (no
timing assertions: the machine may be busy)."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest

from benchmarks import freshness
from benchmarks.machine_load import cpu_hogs


# Session-scoped: one test process runs the refresh once, however its tests are scheduled.
@pytest.fixture(scope="session")
def daily_and_peer():
    only = {"daily", "peer"} if freshness.dlt_available() else {"daily"}
    return freshness.run_all(freshness.quick_plan(), log=lambda message: None, only=only)


def _row(result, scenario):
    (row,) = [r for r in result["rows"] if r["scenario"] == scenario]
    return row


def test_refresh_runs_in_a_run_worker_and_every_milestone_is_in_order(daily_and_peer):
    row = _row(daily_and_peer, "daily")
    assert row["status"] == "SUCCESS" and row["vendor"] == "blikk"
    m = row["milestones"]
    assert 0 < m["run_starting"] < m["run_start"] <= m["first_step_start"] < m["run_finished"] == row["wall_s"]
    # The first request reaches the sandbox after the worker started the job, the last before it ended.
    assert m["run_start"] < row["first_request_s"] <= row["last_request_s"] < row["wall_s"]
    assert set(row["steps"]) == {
        "raw__blikk__projects",
        "raw__blikk__time_reports",
        "conformed__projects",
        "conformed__timesheets",
        "raw__blikk__time_reports_reported_hours_match_blikk",  # the reconciliation check's step
    }
    assert row["requests"] >= 5 and row["violations"] == 0 and row["http_429"] == 0
    assert row["floor_s"] == pytest.approx(row["requests"] / 4.0, abs=0.01)
    assert row["over_floor_s"] == pytest.approx(row["wall_s"] - row["floor_s"], abs=0.02)
    assert row["conformed_rows"] > 0 and row["peak_rss_mb"] > 50  # a run worker holds Dagster and pandas
    assert row["busiest_window"] <= 4


@pytest.mark.skipif(not freshness.dlt_available(), reason="dlt is the bench extra (make bench installs it)")
def test_peer_loads_the_same_time_reports_from_the_same_sandbox(daily_and_peer):
    ours, peer = _row(daily_and_peer, "daily"), _row(daily_and_peer, "peer")
    assert peer["rows"] == ours["conformed_rows"]  # one conformed line per Blikk time report
    pages = -(-peer["rows"] // 100)
    assert peer["requests"] == 1 + pages + peer["http_429"]  # token, pages, and each 429 retried
    assert peer["wall_s"] > 0


def test_report_sections_and_targets_come_from_the_rows(daily_and_peer):
    text = "\n".join(freshness.render(daily_and_peer))
    assert "## Time to fresh data" in text and "### Daily refresh, click to conformed" in text
    assert "### Requests per daily refresh" in text
    lines = freshness.targets(daily_and_peer)
    assert any(line.startswith("- blikk daily refresh: first request") for line in lines)


def _row_for(scenario, **values):
    base = {
        "scenario": scenario,
        "vendor": "blikk",
        "load": "3 hogs",
        "violations": 0,
        "http_429": 0,
        "requests": 100,
        "first_request_s": 2.0,
        "wall_s": 30.0,
        "floor_s": 25.0,
        "over_floor_s": 5.0,
        "wall_to_floor": 1.2,
        "window_days": 14,
    }
    return {**base, **values}


@pytest.mark.parametrize(
    ("row", "verdict"),
    [
        (_row_for("under_load", utilisation_pct=96.0), "met (aim met)"),
        (_row_for("under_load", utilisation_pct=91.0), "met (aim not met)"),
        (_row_for("under_load", utilisation_pct=97.0, violations=1), "NOT met"),
        (_row_for("under_load", utilisation_pct=89.9), "NOT met"),
        (_row_for("daily"), "→ met; wall 30.0 s = floor 25.0 s + 5.0 s (≤ + 5) → met"),
        (
            _row_for("daily", first_request_s=3.1, over_floor_s=5.1),
            "→ NOT met; wall 30.0 s = floor 25.0 s + 5.1 s (≤ + 5) → NOT met",
        ),
        (_row_for("tenant", wall_to_floor=1.05), "→ met"),
        (_row_for("tenant", wall_to_floor=1.06), "→ NOT met"),
    ],
)
def test_targets_judge_each_row(row, verdict):
    (line,) = freshness.targets({"rows": [row]})
    assert line.endswith(verdict)


def test_peer_ratio_target_needs_the_ratio_and_no_429s():
    ours = _row_for("daily", wall_s=12.0)
    assert freshness.targets({"rows": [ours, _row_for("peer", wall_s=10.0, http_429=3)]})[-1].endswith("→ met")
    assert freshness.targets({"rows": [ours, _row_for("peer", wall_s=9.0)]})[-1].endswith("→ NOT met")


def _nice(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat: nice


def _python_loops(pid: int) -> list[int]:
    from benchmarks.machine_load import _descendants

    return [p for p in _descendants(pid) if Path(f"/proc/{p}/comm").read_text().startswith("python")]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_cpu_hogs_run_at_the_lowest_priority_and_are_gone_afterwards():
    with cpu_hogs(2) as pids:
        loops = [loop for pid in pids for loop in _python_loops(pid)]
        assert len(loops) == 2 and all(_nice(p) == 19 for p in loops)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in loops + pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in loops + pids)


def test_utilisation_counts_the_longest_stretch_of_back_to_back_requests():
    scan = [0.0, 0.26, 0.52]
    window = [3.0 + 0.26 * i for i in range(10)]
    later_step = [9.0, 9.26]
    assert freshness.longest_back_to_back(scan + window + later_step) == window
    assert freshness.longest_back_to_back([]) == []


def test_the_sandboxes_process_collects_no_garbage_while_a_scenario_runs_and_again_after():
    assert gc.isenabled()
    with freshness.collector_paused():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0  # what existed before is out of the collector's way
    assert gc.isenabled() and gc.get_freeze_count() == 0
