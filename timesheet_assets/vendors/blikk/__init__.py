"""Blikk: time reports and projects from the Blikk public API (token auth, 4 requests/s)."""

from __future__ import annotations

from ..registry import VendorPlugin
from . import definitions
from .assets import PROJECTS_KEY, TIME_REPORTS_KEY
from .conform import conform_projects, conform_time_reports
from .resource import BlikkResource

PLUGIN = VendorPlugin(
    name="blikk",
    definitions=definitions.definitions,
    timesheets=(TIME_REPORTS_KEY, conform_time_reports),
    projects=(PROJECTS_KEY, conform_projects),
    timesheets_daily_partitioned=True,
)

__all__ = ["PLUGIN", "BlikkResource"]
