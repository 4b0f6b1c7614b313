"""Reconciliation with Blikk's own numbers: the hours the warehouse holds per user and day
against ``GET /v1/Core/TimeReports/UserDayStatistics`` (``reportedHours`` per user-day).

The check ``reported_hours_match_blikk`` (WARN) compares the days of its run — the run's
partition range, the ``first_day``/``last_day`` of its config, or, run on its own, the daily
lookback window up to today — and names the days and the people whose hours differ. It reads
Blikk in pieces of at most 31 days (the document's limit) and the warehouse table
``raw/blikk/time_reports`` (valid rows only: a quarantined report's hours are unknown).

Which reports ``reportedHours`` adds up is not in the document. Blikk's day statistics set
reported hours beside scheduled hours, and absence (vacation, sick leave) is reported against
the schedule like work, so by default every report counts: project, internal and absence.
``BLIKK_REPORTED_HOURS=without_absence`` leaves absence reports out for an account whose
statistics do. A wrong reading would flag every day with absence as differing, never hide a
difference of work hours.
"""

# No ``from __future__ import annotations`` here: Dagster inspects the check's annotations.
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field, ValidationError

from ...ingest import permanent_errors_fail_fast
from ...ingest.records import QUARANTINE_COLUMN
from ...schedules import RANGE_END, RANGE_START, lookback_days
from ...settings import SettingError
from .keys import GROUP, RESOURCE_KEY, TIME_REPORTS_KEY
from .models import UserDayStatistics

CHECK_NAME = "reported_hours_match_blikk"
REPORTED_HOURS_SETTING = "BLIKK_REPORTED_HOURS"
REPORTED_HOURS_READINGS = ("all", "without_absence")
PARTITION_TAG = "dagster/partition"
# Hours are decimals with two places; sums of floats differ from them in the last bits.
TOLERANCE_HOURS = 0.005
SHOWN_DIFFERENCES = 50
WAREHOUSE_COLUMNS = ("user_id", "employee_name", "work_date", "hours", "absence_project_id", QUARANTINE_COLUMN)


def reported_hours_reading(environ: Mapping[str, str] | None = None) -> str:
    """``BLIKK_REPORTED_HOURS``: ``all`` (default) or ``without_absence``."""
    raw = (os.environ if environ is None else environ).get(REPORTED_HOURS_SETTING, "").strip().lower()
    if not raw:
        return "all"
    if raw not in REPORTED_HOURS_READINGS:
        raise SettingError(f"{REPORTED_HOURS_SETTING} must be one of {', '.join(REPORTED_HOURS_READINGS)}, got {raw!r}")
    return raw


def check_window(
    tags: Mapping[str, str], first_day: str | None, last_day: str | None, today: date
) -> tuple[date, date]:
    """The days to compare: the config's, else the run's partition range, else the daily
    lookback window ending ``today``."""
    if first_day or last_day:
        first = date.fromisoformat(first_day or last_day or "")
        last = date.fromisoformat(last_day or first_day or "")
    elif tags.get(RANGE_START) and tags.get(RANGE_END):
        first, last = date.fromisoformat(tags[RANGE_START]), date.fromisoformat(tags[RANGE_END])
    elif tags.get(PARTITION_TAG):
        first = last = date.fromisoformat(tags[PARTITION_TAG])
    else:
        last = today
        first = today - timedelta(days=lookback_days("blikk") - 1)
    if last < first:
        raise ValueError(f"the window to compare ends ({last}) before it starts ({first})")
    return first, last


def warehouse_hours(stored: pd.DataFrame, first: date, last: date, reading: str) -> pd.DataFrame:
    """Hours per (user_id, work_date) in the stored rows, counted as ``reading`` says."""
    columns = ["user_id", "work_date", "hours"]
    if stored.empty:
        return pd.DataFrame(columns=columns)
    rows = stored
    if QUARANTINE_COLUMN in rows.columns:
        rows = rows[rows[QUARANTINE_COLUMN].isna()]
    if reading == "without_absence" and "absence_project_id" in rows.columns:
        rows = rows[rows["absence_project_id"].isna()]
    days = pd.to_datetime(rows["work_date"]).dt.date
    rows = rows[(days >= first) & (days <= last)].assign(work_date=days)
    rows = rows.assign(user_id=rows["user_id"].astype(str), hours=pd.to_numeric(rows["hours"]).astype(float))
    return rows.groupby(["user_id", "work_date"], as_index=False)["hours"].sum()[columns]


@dataclass
class BlikkHours:
    """Blikk's reported hours per (user, day), the users' names, and items it could not read."""

    hours: dict[tuple[str, date], float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)


def blikk_hours(items: Iterable[Any], first: date, last: date) -> BlikkHours:
    found = BlikkHours()
    for item in items:
        try:
            user = UserDayStatistics.model_validate(item)
        except ValidationError as exc:
            found.unreadable.append(f"{str(exc.errors()[0]['loc'])}: {exc.errors()[0]['msg']}"[:200])
            continue
        uid = str(user.userId)
        if user.name and user.name.strip():
            found.names[uid] = user.name.strip()
        for day in user.dates:
            if first <= day.date <= last:
                found.hours[(uid, day.date)] = float(day.reportedHours or 0.0)
    return found


def differences(warehouse: pd.DataFrame, blikk: BlikkHours, names: Mapping[str, str]) -> pd.DataFrame:
    """Every (user, day) whose hours differ by more than the rounding tolerance; a side that
    has no entry counts as 0 hours."""
    ours = {(str(r.user_id), r.work_date): float(r.hours) for r in warehouse.itertuples(index=False)}
    rows = []
    for key in sorted(set(ours) | set(blikk.hours), key=lambda k: (k[1], k[0])):
        held, reported = ours.get(key, 0.0), blikk.hours.get(key, 0.0)
        if abs(held - reported) > TOLERANCE_HOURS:
            uid, day = key
            rows.append(
                {
                    "work_date": day.isoformat(),
                    "user_id": uid,
                    "name": blikk.names.get(uid) or names.get(uid),
                    "warehouse_hours": round(held, 2),
                    "blikk_hours": round(reported, 2),
                    "difference": round(held - reported, 2),
                }
            )
    return pd.DataFrame(rows, columns=["work_date", "user_id", "name", "warehouse_hours", "blikk_hours", "difference"])


def _person(row: Mapping[str, Any]) -> str:
    return f"{row['user_id']} {row['name']}" if row.get("name") else str(row["user_id"])


def reconciliation_result(
    stored: pd.DataFrame, items: list[Any], first: date, last: date, reading: str, requests: int, complete: bool
) -> dg.AssetCheckResult:
    held = warehouse_hours(stored, first, last, reading)
    blikk = blikk_hours(items, first, last)
    names: dict[str, str] = {}
    if not stored.empty and "employee_name" in stored.columns:
        named = stored.dropna(subset=["employee_name"])
        names = dict(zip(named["user_id"].astype(str), named["employee_name"].astype(str)))
    differ = differences(held, blikk, names)
    listed = {uid for uid, _ in blikk.hours}
    missing = sorted(set(held["user_id"]) - listed, key=lambda u: (len(u), u))
    people = sorted({_person(row) for row in differ.to_dict("records")})
    compared = set(blikk.hours) | {(str(u), d) for u, d in zip(held["user_id"], held["work_date"])}
    return dg.AssetCheckResult(
        asset_key=TIME_REPORTS_KEY,
        check_name=CHECK_NAME,
        passed=differ.empty and not blikk.unreadable,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "window": f"{first.isoformat()} .. {last.isoformat()}",
            "reported_hours_counts": reading,
            "user_days_compared": len(compared),
            "user_days_differing": len(differ),
            "days_differing": dg.MetadataValue.json(sorted(set(differ["work_date"]))),
            "people_differing": dg.MetadataValue.json(people),
            "users_missing_from_statistics": dg.MetadataValue.json(missing),
            "differences": dg.MetadataValue.md(
                differ.head(SHOWN_DIFFERENCES).to_markdown(index=False) if len(differ) else "_none_"
            ),
            "warehouse_hours": round(float(held["hours"].sum()) if len(held) else 0.0, 2),
            "blikk_hours": round(sum(blikk.hours.values()), 2),
            "statistics_unreadable": dg.MetadataValue.json(blikk.unreadable),
            "statistics_page_requests": requests,
            "statistics_complete": complete,
        },
    )


class ReconcileConfig(dg.Config):
    first_day: str | None = Field(
        default=None, description="First day to compare (ISO date); default: the run's partition range."
    )
    last_day: str | None = Field(default=None, description="Last day to compare (ISO date).")


@dg.asset_check(
    asset=TIME_REPORTS_KEY,
    name=CHECK_NAME,
    description="Hours per user and day in raw/blikk/time_reports equal Blikk's own "
    "UserDayStatistics reportedHours over the run's days (BLIKK_REPORTED_HOURS says which "
    "reports count); names the days and people that differ.",
    blocking=False,
    required_resource_keys={RESOURCE_KEY, "io_manager"},
    pool=GROUP,
)
def reported_hours_match_blikk(context: dg.AssetCheckExecutionContext, config: ReconcileConfig) -> dg.AssetCheckResult:
    first, last = check_window(context.run.tags, config.first_day, config.last_day, datetime.now(UTC).date())
    reading = reported_hours_reading()
    resource = getattr(context.resources, RESOURCE_KEY)
    with permanent_errors_fail_fast():
        listings = resource.fetch_user_day_statistics(first, last)
    stored = context.resources.io_manager.read_table(TIME_REPORTS_KEY, list(WAREHOUSE_COLUMNS))
    result = reconciliation_result(
        stored,
        [item for listing in listings for item in listing.records],
        first,
        last,
        reading,
        requests=sum(listing.page_requests for listing in listings),
        complete=all(listing.complete for listing in listings),
    )
    if not result.passed:
        differing = result.metadata["user_days_differing"]
        context.log.warning(
            f"Blikk's reported hours differ from the warehouse on {getattr(differing, 'value', differing)} "
            f"user-day(s) in {first}..{last}"
        )
    return result
