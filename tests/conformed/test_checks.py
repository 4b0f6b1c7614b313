"""The conformed data-quality rules, on hand-made frames."""

from datetime import date

import pandas as pd
import pytest

from timesheet_assets.conformed import checks
from timesheet_assets.conformed.schema import TIMESHEET_KEY, conform_project_frame, conform_timesheet_frame


def lines(**overrides):
    base = {
        "source_system": ["blikk", "blikk", "ajera"],
        "entry_id": ["1", "2", "1"],
        "work_date": [date(2026, 1, 5)] * 3,
        "employee_id": ["u1", "u1", "e7"],
        "project_id": ["p1", None, "p9"],
        "regular_hours": [4.0, 3.0, 8.0],
        "overtime_hours": [0.0, 1.0, 0.0],
        "total_hours": [4.0, 4.0, 8.0],
        "status": ["approved", "draft", "paid"],
        "ingested_at": [pd.Timestamp("2026-01-06", tz="UTC")] * 3,
    }
    base.update(overrides)
    return conform_timesheet_frame(pd.DataFrame(base))


def timesheet_checks(frame):
    """Every rule conformed/timesheets runs on a frame written whole."""
    return [checks.primary_key_unique(frame, TIMESHEET_KEY), *checks.timesheet_row_checks(frame)]


def outcome(frame, name):
    return {o.name: o for o in timesheet_checks(frame)}[name]


def test_clean_frame_passes_every_rule():
    frame = lines()
    assert all(o.passed for o in timesheet_checks(frame))


def test_duplicate_key_is_caught_and_blocks():
    result = outcome(lines(entry_id=["1", "1", "1"]), "primary_key_unique")
    assert not result.passed and result.blocking and result.metadata["duplicate_rows"] == 2


def test_missing_required_value_blocks():
    result = outcome(lines(employee_id=["u1", None, "e7"]), "required_columns_not_null")
    assert not result.passed and result.metadata["null_counts"] == {"employee_id": 1}


def test_unknown_status_blocks():
    result = outcome(lines(status=["approved", "pending-ish", "paid"]), "status_in_allowed_set")
    assert not result.passed and result.metadata["unexpected_values"] == "pending-ish"


def test_negative_or_huge_hours_warn():
    result = outcome(lines(regular_hours=[-1.0, 3.0, 30.0], total_hours=[-1.0, 4.0, 30.0]), "hours_between_0_and_24")
    assert not result.passed and not result.blocking and result.metadata["rows"] == 2


def test_employee_day_over_24_hours_warns():
    frame = lines(regular_hours=[14.0, 10.0, 8.0], overtime_hours=[0.0, 1.0, 0.0], total_hours=[14.0, 11.0, 8.0])
    result = outcome(frame, "employee_day_at_most_24h")
    assert not result.passed and result.metadata["employee_days_over"] == 1


def test_total_must_be_regular_plus_overtime_except_travel_for_aimsio():
    frame = lines(
        source_system=["blikk", "aimsio", "aimsio"],
        total_hours=[5.0, 6.0, 7.0],
        regular_hours=[4.0, 3.0, 8.0],
        overtime_hours=[0.0, 1.0, 0.0],
    )
    result = outcome(frame, "total_equals_regular_plus_overtime")
    # blikk 5 != 4 fails; aimsio 6 >= 4 is travel; aimsio 7 < 8 fails.
    assert not result.passed and result.metadata["rows"] == 2


def test_unknown_projects_warn_per_source():
    projects = conform_project_frame(
        pd.DataFrame(
            {
                "source_system": ["blikk"],
                "project_id": ["p1"],
                "status": ["active"],
                "ingested_at": [pd.Timestamp("2026-01-06", tz="UTC")],
            }
        )
    )
    result = checks.projects_known(lines(), projects)
    assert not result.passed and result.metadata["by_source"] == {"ajera": 1}


@pytest.mark.parametrize(
    "previous, current, passed",
    [
        (None, {"d1": 1}, True),
        ({"d1": 100, "d2": 100}, {"d1": 90, "d2": 95}, True),
        ({"d1": 100, "d2": 100}, {"d1": 10, "d2": 20}, False),
        ({"old": 1000}, {"new": 1}, True),  # no overlap, nothing to compare
    ],
)
def test_row_count_drop(previous, current, passed):
    assert checks.row_count_not_dropping(current, previous, 0.5).passed is passed


def test_rules_combined_over_pieces_of_days_say_what_they_say_of_the_whole():
    days = [date(2026, 1, 5), date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)]
    whole = lines(
        source_system=["blikk", "blikk", "ajera", "aimsio"],
        entry_id=["1", "2", "1", "9"],
        work_date=days,
        employee_id=["u1", None, None, "a1"],
        project_id=["p1", None, "p9", "x"],
        regular_hours=[20.0, 3.0, 8.0, 30.0],
        overtime_hours=[0.0, 1.0, 0.0, 0.0],
        total_hours=[20.0, 9.0, 8.0, 30.0],
        status=["approved", "odd", "paid", "weird"],
        ingested_at=[pd.Timestamp("2026-01-08", tz="UTC")] * 4,
    )
    projects = conform_project_frame(pd.DataFrame({"source_system": ["blikk"], "project_id": ["p1"]}))
    pieces = [whole[whole.work_date == date(2026, 1, 5)], whole[whole.work_date > date(2026, 1, 5)]]

    def rules(frame):
        return [*checks.timesheet_row_checks(frame), checks.projects_known(frame, projects)]

    combined = [checks.combine(list(outcomes)) for outcomes in zip(*(rules(piece) for piece in pieces))]
    expected = rules(whole)
    assert [o.name for o in combined] == [o.name for o in expected]
    for got, want in zip(combined, expected):
        assert (got.passed, got.blocking, got.description) == (want.passed, want.blocking, want.description), got.name
        shown = {k: v for k, v in got.metadata.items() if k != "examples"}
        assert shown == {k: v for k, v in want.metadata.items() if k != "examples"}, got.name
    assert not any(o.passed for o in combined if o.name != "employee_day_at_most_24h")
