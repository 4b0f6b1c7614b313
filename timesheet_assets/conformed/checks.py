"""Data-quality rules on the conformed frames, as pure functions the assets report as checks.

Blocking rules stop a bad frame from being written at all (the previous data stays); warning
rules are reported and the write goes ahead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .schema import (
    PROJECT_KEY,
    PROJECT_REQUIRED,
    PROJECT_STATUSES,
    TIMESHEET_REQUIRED,
    TIMESHEET_STATUSES,
)

MAX_HOURS_PER_DAY = 24.0
ROUNDING = 0.01
# Aimsio reports travel time separately; its total is regular + overtime + travel.
TRAVEL_SEPARATED = frozenset({"aimsio"})


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _examples(frame: pd.DataFrame, mask: pd.Series, columns: list[str]) -> str:
    shown = frame.loc[mask, [c for c in columns if c in frame.columns]].head(5)
    return shown.to_markdown(index=False) if len(shown) else ""


def primary_key_unique(
    frame: pd.DataFrame,
    key: tuple[str, ...],
    kept: pd.DataFrame | None = None,
    stored_rows: int | None = None,
) -> CheckOutcome:
    """Duplicates in the table as it will be after the write: the new rows plus the stored rows
    the write leaves alone (other days, minus the keys it brings, since a key lives on one day
    only). Those can repeat a key only among themselves, so ``kept`` need hold only the kept
    rows whose key the stored rows repeat; ``stored_rows`` says how many rows the check looked
    at on other days. Both ``None`` for a write that replaces the whole table."""
    columns = list(key)
    whole = (
        frame[columns] if kept is None or kept.empty else pd.concat([frame[columns], kept[columns]], ignore_index=True)
    )
    dupes = whole.duplicated(columns, keep=False)
    counts: dict[str, Any] = {"duplicate_rows": int(dupes.sum()), "new_rows": len(frame)}
    if stored_rows is not None:
        counts["stored_rows_on_other_days"] = stored_rows
    return CheckOutcome(
        "primary_key_unique",
        not dupes.any(),
        True,
        f"({', '.join(key)}) identifies exactly one row in the whole table",
        {**counts, "examples": _examples(whole, dupes, columns)},
    )


def required_not_null(frame: pd.DataFrame, required: tuple[str, ...]) -> CheckOutcome:
    nulls = {c: int(frame[c].isna().sum()) for c in required if c in frame.columns}
    bad = {c: n for c, n in nulls.items() if n}
    return CheckOutcome(
        "required_columns_not_null",
        not bad,
        True,
        "required columns hold a value on every row",
        {"null_counts": bad},
    )


def status_allowed(frame: pd.DataFrame, allowed: tuple[str, ...]) -> CheckOutcome:
    bad = ~frame["status"].isin(allowed) if len(frame) else pd.Series(dtype=bool)
    values = sorted({str(v) for v in frame.loc[bad, "status"].unique()}) if len(frame) else []
    return CheckOutcome(
        "status_in_allowed_set",
        not bad.any(),
        True,
        f"status is one of {', '.join(allowed)}",
        {"rows": int(bad.sum()), "unexpected_values": ", ".join(values)},
    )


def hours_in_range(frame: pd.DataFrame) -> CheckOutcome:
    cols = ["regular_hours", "overtime_hours", "total_hours"]
    bad = pd.Series(False, index=frame.index)
    for column in cols:
        bad |= (frame[column] < 0) | (frame[column] > MAX_HOURS_PER_DAY)
    return CheckOutcome(
        "hours_between_0_and_24",
        not bad.any(),
        False,
        "each line's hours lie in [0, 24]",
        {"rows": int(bad.sum()), "examples": _examples(frame, bad, ["source_system", "entry_id", *cols])},
    )


def employee_day_hours(frame: pd.DataFrame) -> CheckOutcome:
    if frame.empty:
        return CheckOutcome("employee_day_at_most_24h", True, False, "", {"employee_days_over": 0})
    per_day = frame.groupby(["source_system", "employee_id", "work_date"], dropna=False)["total_hours"].sum()
    over = per_day[per_day > MAX_HOURS_PER_DAY + ROUNDING]
    return CheckOutcome(
        "employee_day_at_most_24h",
        over.empty,
        False,
        "one employee's lines on one day add up to at most 24 hours",
        {
            "employee_days_over": int(len(over)),
            "examples": over.head(5).reset_index().to_markdown(index=False) if len(over) else "",
        },
    )


def total_is_sum(frame: pd.DataFrame) -> CheckOutcome:
    parts = frame["regular_hours"] + frame["overtime_hours"]
    travel = frame["source_system"].isin(TRAVEL_SEPARATED)
    exact = (frame["total_hours"] - parts).abs() <= ROUNDING
    at_least = frame["total_hours"] >= parts - ROUNDING
    bad = ~((~travel & exact) | (travel & at_least))
    return CheckOutcome(
        "total_equals_regular_plus_overtime",
        not bad.any(),
        False,
        "total_hours = regular_hours + overtime_hours (Aimsio: plus travel time)",
        {
            "rows": int(bad.sum()),
            "examples": _examples(
                frame, bad, ["source_system", "entry_id", "regular_hours", "overtime_hours", "total_hours"]
            ),
        },
    )


def projects_known(timesheets: pd.DataFrame, projects: pd.DataFrame) -> CheckOutcome:
    with_project = timesheets[timesheets["project_id"].notna()]
    if with_project.empty:
        return CheckOutcome("project_id_in_projects", True, False, "", {"unknown_project_rows": 0})
    known = set()
    if not projects.empty:
        known = set(zip(projects["source_system"].astype(str), projects["project_id"].astype(str)))
    pairs = list(zip(with_project["source_system"].astype(str), with_project["project_id"].astype(str)))
    unknown_mask = pd.Series([p not in known for p in pairs], index=with_project.index)
    unknown = with_project[unknown_mask]
    return CheckOutcome(
        "project_id_in_projects",
        unknown.empty,
        False,
        "every timesheet project_id exists in conformed/projects for the same source",
        {
            "unknown_project_rows": int(len(unknown)),
            "by_source": unknown.groupby("source_system").size().to_dict() if len(unknown) else {},
        },
    )


def row_count_not_dropping(
    current: Mapping[str, int], previous: Mapping[str, int] | None, max_drop_fraction: float
) -> CheckOutcome:
    """Compare row counts on the keys both runs cover (work dates, or one "all" key)."""
    if not previous:
        return CheckOutcome("row_count_not_dropping", True, False, "no earlier run to compare", {})
    shared = [k for k in current if k in previous]
    before = sum(int(previous[k]) for k in shared)
    now = sum(int(current[k]) for k in shared)
    dropped = before > 0 and now < before * (1 - max_drop_fraction)
    return CheckOutcome(
        "row_count_not_dropping",
        not dropped,
        False,
        f"row count did not drop by more than {max_drop_fraction:.0%} versus the last run",
        {"previous_rows": before, "current_rows": now, "max_drop_fraction": max_drop_fraction},
    )


def timesheet_row_checks(frame: pd.DataFrame) -> list[CheckOutcome]:
    """The timesheet rules that look at one row or one employee's day: a window passes them
    when each of its days does (``combine``)."""
    return [
        required_not_null(frame, TIMESHEET_REQUIRED),
        status_allowed(frame, TIMESHEET_STATUSES),
        hours_in_range(frame),
        employee_day_hours(frame),
        total_is_sum(frame),
    ]


def _listed(*texts: str) -> str:
    return ", ".join(sorted({value for text in texts for value in text.split(", ") if value}))


def combine(outcomes: Sequence[CheckOutcome]) -> CheckOutcome:
    """One rule's outcomes on pieces of a window with no day in two pieces, as its outcome on
    the window: passed when every piece passed; counts added (also counts by name), listed
    values joined, the first piece's examples kept."""
    metadata: dict[str, Any] = {}
    for outcome in outcomes:
        for key, value in outcome.metadata.items():
            if key not in metadata:
                metadata[key] = dict(value) if isinstance(value, Mapping) else value
                continue
            current: Any = metadata[key]
            if isinstance(value, Mapping):
                added = {name: count + value.get(name, 0) for name, count in current.items()}
                metadata[key] = {**added, **{name: n for name, n in value.items() if name not in current}}
            elif isinstance(value, int) and not isinstance(value, bool):
                metadata[key] = current + value
            elif key == "unexpected_values":
                metadata[key] = _listed(current, value)
            elif isinstance(value, str) and not current:
                metadata[key] = value
    return CheckOutcome(
        outcomes[0].name,
        all(outcome.passed for outcome in outcomes),
        outcomes[0].blocking,
        next((outcome.description for outcome in outcomes if outcome.description), ""),
        metadata,
    )


def project_checks(frame: pd.DataFrame) -> list[CheckOutcome]:
    return [
        primary_key_unique(frame, PROJECT_KEY),
        required_not_null(frame, PROJECT_REQUIRED),
        status_allowed(frame, PROJECT_STATUSES),
    ]
