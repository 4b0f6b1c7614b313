"""Aimsio readings chosen by environment variable (docs/contracts.md, docs/vendors/aimsio.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ...settings import SettingError

VANISHED_TIMECARDS = "AIMSIO_VANISHED_TIMECARDS"
KEEP = "keep"
DROP = "drop"


def vanished_timecards(environ: Mapping[str, str] | None = None) -> str:
    """Whether a timecard that left the ``CurrentTimeCard`` listing still counts in
    ``conformed/timesheets``: ``keep`` (the default: the list holds *open* timecards, and a
    processed card's hours were still worked) or ``drop`` (the conformed table mirrors the
    listing). Read when the definitions load and each time the conformed table is built."""
    env = os.environ if environ is None else environ
    value = (env.get(VANISHED_TIMECARDS) or "").strip().lower() or KEEP
    if value not in (KEEP, DROP):
        raise SettingError(f"{VANISHED_TIMECARDS} must be {KEEP!r} or {DROP!r}, got {value!r}")
    return value
