"""The deployment rehearsal, shorter (``make rehearse`` runs the full one): a PostgreSQL
instance from the root dagster.yaml, code server, webserver and dagster-daemon; daily_refresh
ticking once for Blikk and iBuildApp beside one queued refresh each of an earlier window; one
run worker killed with the code server while it calls Blikk. Everything must end, the killed
run be retried to success, no vendor see two processes' calls at once, and the data land once
(see ``rehearsal.py``)."""

import pytest

from tests.reliability.rehearsal import Plan, rehearse

pytestmark = pytest.mark.timeout(1500)


def test_rehearsal_with_a_killed_worker(tmp_path):
    plan = Plan(
        vendors=("blikk", "ibuildapp"),
        victim_vendor="blikk",
        schedule_ticks=1,
        extra_windows=1,
        records=300,
        victim_records=3000,
        cancel_one=False,
        settle_timeout=1000.0,
    )
    findings = rehearse(plan, tmp_path)
    print(findings.report())
    assert findings.problems() == [], findings.report()
    assert findings.victim is not None and findings.calls > 0
    # Two schedule runs, two queued ones, the retry.
    assert len(findings.runs) >= 5
