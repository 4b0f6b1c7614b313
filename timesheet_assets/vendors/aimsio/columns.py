"""The columns of the raw Aimsio tables: each with its pandas dtype and what it means (the
body fields are named as the CurrentTimeCard document names them)."""

from ...ingest.records import KEY_COLUMN

# Stub-derived columns, filled after validation: the detail body has no ``updatedAt``.
STUB_COLUMNS = {"source_updated_at": "datetime64[ns, UTC]", "source_updated_at_ms": "Int64"}

TIMECARD_COLUMNS: dict[str, str] = {
    "time_card_guid": "string",
    "work_date": "date",
    "work_date_time_zone": "string",
    "record_date": "datetime64[ns, UTC]",
    "employee_guid": "string",
    "employee_code": "string",
    "job_guid": "string",
    "job_number": "string",
    "phase_code": "string",
    "pay_code": "string",
    "regular_hours": "Float64",
    "overtime_hours": "Float64",
    "double_time_hours": "Float64",
    "travel_hours": "Float64",
    "is_billable": "boolean",
    "is_exported": "boolean",
    "is_deleted": "boolean",
    "payroll_period_name": "string",
    "payroll_period_status": "string",
    "description": "string",
    "created_at": "datetime64[ns, UTC]",
    **STUB_COLUMNS,
}

STUB_COLUMN_DESCRIPTIONS = {
    "source_updated_at": "The record's updatedAt as the GET-all listing served it (UTC): a "
    "row is fetched again when the listing shows another value.",
    "source_updated_at_ms": "The same updatedAt in epoch milliseconds, as served (compared "
    "exactly with the next listing).",
}

TIMECARD_COLUMN_DESCRIPTIONS: dict[str, str] = {
    KEY_COLUMN: "timeCardGuid, as the GET-all listing names the timecard (stub:<digest> for "
    "a list element without a usable GUID).",
    "time_card_guid": "timeCardGuid of the GET-single body.",
    "work_date": "timeCardRecordDate as a date in the timecard's timeCardTimeZone (UTC when it "
    "has none or names an unknown zone).",
    "work_date_time_zone": "The zone work_date was taken in: timeCardTimeZone, or UTC.",
    "record_date": "timeCardRecordDate (epoch milliseconds) as a UTC timestamp.",
    "employee_guid": "timeCardEmployeeGuid.",
    "employee_code": "timeCardEmployeeCode: the employee's code in Aimsio.",
    "job_guid": "timeCardJobGuid: the job order the time is booked on.",
    "job_number": "timeCardJobNumber: the job order's number.",
    "phase_code": "timeCardPhaseCode: the job phase.",
    "pay_code": "timeCardPayCode.",
    "regular_hours": "timeCardEmployeeRegularHours.",
    "overtime_hours": "timeCardEmployeeOverTimeHours.",
    "double_time_hours": "timeCardEmployeeDoubleTimeHours.",
    "travel_hours": "timeCardEmployeeTravelTimeHours (reported apart from worked hours).",
    "is_billable": "timeCardIsBillable.",
    "is_exported": "timeCardIsExportedToIntegration: exported to payroll or accounting.",
    "is_deleted": "timeCardIsDeleted: deleted in Aimsio (the row is kept, flagged).",
    "payroll_period_name": "timeCardPayrollPeriodName.",
    "payroll_period_status": "timeCardPayrollPeriodStatus (the status name when Aimsio sends an object).",
    "description": "timeCarddescription: the timecard's note.",
    "created_at": "timeCardCreatedAt as a UTC timestamp.",
    **STUB_COLUMN_DESCRIPTIONS,
}

JOB_ORDER_COLUMNS: dict[str, str] = {
    "job_order_guid": "string",
    "job_order_number": "string",
    "name": "string",
    "status": "string",
    "customer_guid": "string",
    "customer_name": "string",
    "start_date": "date",
    "end_date": "date",
    "manager_name": "string",
    "is_deleted": "boolean",
    **STUB_COLUMNS,
}

JOB_ORDER_COLUMN_DESCRIPTIONS: dict[str, str] = {
    KEY_COLUMN: "jobOrderGuid, as the GET-all listing names the job order (stub:<digest> for "
    "a list element without a usable GUID).",
    "job_order_guid": "The job order's GUID in the GET-single body.",
    "job_order_number": "The job order's number (jobOrderNumber).",
    "name": "The job order's name or description.",
    "status": "The job order's status as Aimsio sends it.",
    "customer_guid": "The customer's GUID.",
    "customer_name": "The customer's name.",
    "start_date": "Start date, in the job order's time zone.",
    "end_date": "End date, in the job order's time zone.",
    "manager_name": "The project manager's name.",
    "is_deleted": "Deleted in Aimsio (the row is kept, flagged).",
    **STUB_COLUMN_DESCRIPTIONS,
}
