"""iBuildApp Timesheets: time entries and projects (client, fake, models, assets, mapping)."""

from ..registry import VendorPlugin
from . import definitions
from .assets import PROJECTS_KEY, SIDE_TABLES_KEY, TIME_ENTRIES_KEY
from .conform import conform_projects, conform_timesheets
from .resource import IBuildAppResource

PLUGIN = VendorPlugin(
    name="ibuildapp",
    definitions=definitions.definitions,
    timesheets=(TIME_ENTRIES_KEY, conform_timesheets),
    projects=(PROJECTS_KEY, conform_projects),
    timesheets_daily_partitioned=True,
    timesheet_companions=(SIDE_TABLES_KEY,),
)

__all__ = ["IBuildAppResource", "PLUGIN"]
