"""What the UI shows about the conformed tables: each column's meaning and the type the
warehouse stores it as, and what each check proves and what to do when it fails."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from .schema import (
    PROJECT_COLUMNS,
    PROJECT_KEY,
    PROJECT_REQUIRED,
    TIMESHEET_COLUMNS,
    TIMESHEET_KEY,
    TIMESHEET_REQUIRED,
)

# The conformed frames' dtypes as DuckDB stores them (a write creates the table from the frame).
WAREHOUSE_TYPES: Mapping[str, str] = {
    "string": "VARCHAR",
    "date": "DATE",
    "float64": "DOUBLE",
    "Float64": "DOUBLE",
    "datetime64[ns, UTC]": "TIMESTAMP WITH TIME ZONE",
}

_SHARED: Mapping[str, str] = {
    "source_system": "Vendor the row came from: aimsio, ajera, aims360, blikk or ibuildapp.",
    "project_id": "The vendor's own project/job id (unique within source_system).",
    "project_code": "Human project/job number as the vendor shows it, when it has one.",
    "source_updated_at": "The vendor's last-modified time of the record (UTC), when the vendor "
    "reports one; empty for vendors without it (Blikk time reports, iBuildApp).",
    "ingested_at": "When this pipeline fetched the record from the vendor (UTC).",
}

TIMESHEET_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    **_SHARED,
    "entry_id": "Stable key of the line, unique within source_system; composed per vendor from "
    "the vendor's ids (docs/conformed-model.md).",
    "work_date": "Day the hours were worked, in the vendor's timezone as reported (the partition key).",
    "employee_id": "The vendor's employee/user id.",
    "employee_name": "Employee display name, when the vendor provides one.",
    "task": "Phase, activity, task or pay code of the line, as the vendor has it.",
    "regular_hours": "Regular hours of the line.",
    "overtime_hours": "Overtime plus double-time hours of the line.",
    "total_hours": "Regular + overtime hours (Aimsio: + travel time, which it reports apart).",
    "billable_hours": "Billable hours, when the vendor tracks billability; empty otherwise.",
    "status": "Approval state: draft, submitted, approved, rejected, paid or unknown.",
    "notes": "Free-text note on the line.",
}

PROJECT_COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    **_SHARED,
    "name": "Project name.",
    "status": "Project state: planned, active, completed, cancelled or unknown.",
    "customer_id": "The vendor's customer/client id.",
    "customer_name": "Customer/client name.",
    "start_date": "Project start date, when the vendor records one.",
    "end_date": "Project end date, when the vendor records one.",
    "manager_name": "Project manager's name, when the vendor records one.",
}


def column_schema(
    columns: Mapping[str, str], descriptions: Mapping[str, str], required: tuple[str, ...]
) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=WAREHOUSE_TYPES[dtype],
                description=descriptions[name],
                constraints=dg.TableColumnConstraints(nullable=name not in required),
            )
            for name, dtype in columns.items()
        ]
    )


TIMESHEET_SCHEMA = column_schema(TIMESHEET_COLUMNS, TIMESHEET_COLUMN_DESCRIPTIONS, TIMESHEET_REQUIRED)
PROJECT_SCHEMA = column_schema(PROJECT_COLUMNS, PROJECT_COLUMN_DESCRIPTIONS, PROJECT_REQUIRED)


def _key(columns: tuple[str, ...]) -> str:
    return "(" + ", ".join(columns) + ")"


_BLOCKING = "Blocking: when it fails nothing is written and the table keeps its last good data."
_WARNING = "Warning: the rows are written; the check flags them for a look."

TIMESHEET_CHECK_DESCRIPTIONS: Mapping[str, str] = {
    "primary_key_unique": f"{_key(TIMESHEET_KEY)} identifies exactly one line in the whole "
    f"table after this write, other days included. {_BLOCKING} The examples metadata lists "
    "duplicated keys: a vendor mapping produced colliding entry_ids.",
    "required_columns_not_null": f"Every required column ({', '.join(TIMESHEET_REQUIRED)}) "
    f"holds a value on every line. {_BLOCKING} null_counts names the empty columns: usually "
    "a vendor field went missing (see the raw table's payload).",
    "status_in_allowed_set": "status is one of draft, submitted, approved, rejected, paid, "
    f"unknown. {_BLOCKING} unexpected_values shows the value to add to the vendor's mapping.",
    "hours_between_0_and_24": "Every line's regular, overtime and total hours lie between 0 "
    f"and 24. {_WARNING} Check the source record (data entry at the vendor).",
    "employee_day_at_most_24h": "One employee's lines on one day add up to at most 24 hours. "
    f"{_WARNING} Usually the same time entered twice at the vendor.",
    "total_equals_regular_plus_overtime": "total_hours = regular_hours + overtime_hours on "
    f"every line (Aimsio: at least that, travel time is separate). {_WARNING}",
    "project_id_in_projects": "Every line's project_id exists in conformed/projects for the "
    f"same source_system. {_WARNING} Materialize the vendor's projects, or the vendor archived "
    "the project.",
    "row_count_not_dropping": "The write holds no fewer lines for its work dates than the last "
    f"write of the same dates, beyond max_row_drop_fraction (run config, default 0.5). "
    f"{_WARNING} A vendor outage returning partial data, or a mass deletion at the vendor: "
    "rerun the range once the vendor is healthy.",
}

PROJECT_CHECK_DESCRIPTIONS: Mapping[str, str] = {
    "primary_key_unique": f"{_key(PROJECT_KEY)} identifies exactly one project in the table. "
    f"{_BLOCKING} The examples metadata lists duplicated keys.",
    "required_columns_not_null": f"Every required column ({', '.join(PROJECT_REQUIRED)}) holds "
    f"a value on every project. {_BLOCKING} null_counts names the empty columns.",
    "status_in_allowed_set": "status is one of planned, active, completed, cancelled, unknown. "
    f"{_BLOCKING} unexpected_values shows the value to add to the vendor's mapping.",
    "row_count_not_dropping": "The table holds no fewer projects than after the last write, "
    f"beyond max_row_drop_fraction (run config, default 0.5). {_WARNING}",
}
