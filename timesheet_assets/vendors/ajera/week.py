"""Which seven days an Ajera timesheet covers.

A timesheet is one week of day columns ``D1``..``D7`` dated by ``TimesheetDate``. The API
document never says which day of the week that date is. Its examples are all Sundays with hours
on D1–D3 only, Ajera's own screens call the date the week ending date, and clients written
against real tenants compute ``D1 = TimesheetDate − 6``; so ``week_ending`` is the default
reading and ``week_starting`` (``D1 = TimesheetDate``) the alternative
(``AJERA_TIMESHEET_DATE``). The evidence is in docs/vendors/ajera.md.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

WEEK_ENDING = "week_ending"
WEEK_STARTING = "week_starting"
READINGS: tuple[str, ...] = (WEEK_ENDING, WEEK_STARTING)
Reading = Literal["week_ending", "week_starting"]

SIX_DAYS = timedelta(days=6)


def first_day(timesheet_date: date, reading: str) -> date:
    """The date of ``D1``."""
    return timesheet_date - SIX_DAYS if reading == WEEK_ENDING else timesheet_date


def day_date(timesheet_date: date, day_number: int, reading: str) -> date:
    """The date of ``D{day_number}``."""
    return first_day(timesheet_date, reading) + timedelta(days=day_number - 1)


def week_span(timesheet_date: date, reading: str) -> tuple[date, date]:
    """The first and last day the timesheet covers."""
    start = first_day(timesheet_date, reading)
    return start, start + SIX_DAYS


def touches(timesheet_date: date, first: date, last: date, reading: str) -> bool:
    """Whether the timesheet has a day in ``first``..``last``."""
    start, end = week_span(timesheet_date, reading)
    return start <= last and end >= first


def listing_range(first: date, last: date) -> tuple[date, date]:
    """The ``TimesheetDate`` range that holds every week with a day in ``first``..``last``
    under **both** readings: a week ending up to six days after the window, or starting up to
    six days before it. Listing the union means neither reading can miss a week at either edge;
    the days outside the window are clipped off afterwards."""
    return first - SIX_DAYS, last + SIX_DAYS
