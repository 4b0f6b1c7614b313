"""Ajera (Deltek): sessions over one RPC endpoint; weekly timesheets exploded into daily rows."""

from ..registry import VendorPlugin
from . import definitions
from .assets import PROJECTS_KEY, TIMESHEETS_KEY
from .conform import conform_projects, conform_timesheets

PLUGIN = VendorPlugin(
    name="ajera",
    definitions=definitions.definitions,
    timesheets=(TIMESHEETS_KEY, conform_timesheets),
    projects=(PROJECTS_KEY, conform_projects),
    timesheets_daily_partitioned=True,
)

__all__ = ["PLUGIN"]
