"""Three weeks of every vendor's sandbox, as the conformed layer's range tests load them
(``three_week_sandboxes`` in conftest.py serves them)."""

from datetime import date, timedelta

import dagster as dg

from timesheet_assets.sandbox.data import SandboxConfig

ANCHOR = date(2026, 3, 20)
CONFIG = SandboxConfig(seed=11, time_records=200, projects=8, employees=6, days=24, anchor_date=ANCHOR)
FIRST, LAST = ANCHOR - timedelta(days=20), ANCHOR
TIMESHEETS = dg.AssetKey(["conformed", "timesheets"])
