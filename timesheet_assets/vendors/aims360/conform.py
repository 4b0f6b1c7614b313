"""AIMS360 → conformed model: nothing to map.

AIMS360 is an apparel ERP. Its Aqua views (Orders, Invoices, Styles, Cut Tickets, Purchase
Orders, Shipments, ...) hold no timesheets and no projects, so the vendor feeds neither
``conformed/timesheets`` nor ``conformed/projects`` (``PLUGIN.timesheets`` and
``PLUGIN.projects`` are ``None``). Its exports stay raw tables, ``raw/aims360/<view>``.

Should a team want a view in ``conformed/projects`` after all, the mapping belongs here as a
pure function of the raw view frame, wired in through ``PLUGIN.projects``.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from ...conformed.schema import empty_projects, empty_timesheets


@cache
def _empty(kind: str) -> pd.DataFrame:
    # Typing an empty conformed frame takes tens of milliseconds; build it once, hand out copies.
    return empty_timesheets() if kind == "timesheets" else empty_projects()


def conform_timesheets(raw: pd.DataFrame) -> pd.DataFrame:
    """No AIMS360 view holds timesheet lines: always an empty conformed frame."""
    return _empty("timesheets").copy(deep=True)


def conform_projects(raw: pd.DataFrame) -> pd.DataFrame:
    """No AIMS360 view is mapped to projects: always an empty conformed frame."""
    return _empty("projects").copy(deep=True)
