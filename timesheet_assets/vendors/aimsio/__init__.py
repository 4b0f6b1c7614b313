"""Aimsio: Basic-auth REST API; incremental timecards and job orders (GET-all stubs, then
GET-single for what changed), at the documented 10 calls/s and 10 calls in flight."""

from ..registry import VendorPlugin
from . import assets, definitions
from .conform import conform_job_orders, conform_timecards

PLUGIN = VendorPlugin(
    name="aimsio",
    definitions=definitions.definitions,
    timesheets=(assets.TIMECARDS_KEY, conform_timecards),
    projects=(assets.JOB_ORDERS_KEY, conform_job_orders),
    timesheets_daily_partitioned=False,
)

__all__ = ["PLUGIN"]
