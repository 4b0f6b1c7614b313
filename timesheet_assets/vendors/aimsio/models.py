"""Pydantic models of the Aimsio payloads.

The API document shows one full body, the ``CurrentTimeCard`` GET-single example; its schema
table and its example disagree on types (the table says ``number`` for travel hours and some
amounts, the example sends strings such as ``"0.000"``), so every number is read leniently:
int, float or numeric string, and ``null``. Key casing is taken from the example
(``timeCarddescription``) with the schema table's spelling (``timeCardDescription``) accepted
too. Unknown keys are kept (``extra="allow"``) and the raw payload is stored verbatim anyway.

Job orders have no documented body. The fields below are the shape the sandbox serves
(``docs/vendors/aimsio.md``); all of them are optional, a few common spellings are accepted,
and everything else stays in the payload.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

UTC_NAME = "UTC"


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        return float(text)
    raise ValueError(f"expected a number or numeric string, got {type(value).__name__}")


def _epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds as documented; numeric strings and ISO timestamps are tolerated."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(float(text))
        except ValueError:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return int(parsed.timestamp() * 1000)
    raise ValueError(f"expected epoch milliseconds, got {type(value).__name__}")


def _text(value: Any) -> str | None:
    """Codes are documented as strings; a server sending ``30`` instead of ``"30"`` is fine."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        text = str(value)
        return text if text != "" else None
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


Number = Annotated[float | None, BeforeValidator(_number)]
EpochMs = Annotated[int | None, BeforeValidator(_epoch_ms)]
Text = Annotated[str | None, BeforeValidator(_text)]


def epoch_ms_to_utc(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def zone_or_utc(name: str | None) -> tuple[ZoneInfo | timezone, str]:
    """The record's IANA zone, or UTC when it has none or names one that does not exist."""
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.utc, UTC_NAME


def local_date(epoch_ms: int, zone_name: str | None) -> tuple[date, str]:
    zone, used = zone_or_utc(zone_name)
    return datetime.fromtimestamp(epoch_ms / 1000, tz=zone).date(), used


class ListStub(BaseModel):
    """One element of a GET-all array: ``{dtype, guid|id, updatedAt}``."""

    model_config = ConfigDict(extra="allow")

    dtype: Text = None
    guid: Text = None
    id: Text = None
    updated_at: EpochMs = Field(default=None, alias="updatedAt")

    @property
    def identifier(self) -> str | None:
        return self.guid or self.id


class TimeCard(BaseModel):
    """``GET CurrentTimeCard/{guid}``. Only the fields the pipeline reads are named; the rest of
    the documented body (rates, amounts, form and payroll references...) stays in the payload."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    guid: Text = Field(default=None, alias="timeCardGuid")
    record_date: EpochMs = Field(alias="timeCardRecordDate")
    employee_guid: Text = Field(default=None, alias="timeCardEmployeeGuid")
    employee_code: Text = Field(default=None, alias="timeCardEmployeeCode")
    time_zone: Text = Field(default=None, alias="timeCardTimeZone")
    description: Text = Field(
        default=None,
        validation_alias=AliasChoices("timeCarddescription", "timeCardDescription"),
    )
    regular_hours: Number = Field(default=None, alias="timeCardEmployeeRegularHours")
    overtime_hours: Number = Field(default=None, alias="timeCardEmployeeOverTimeHours")
    double_time_hours: Number = Field(default=None, alias="timeCardEmployeeDoubleTimeHours")
    travel_hours: Number = Field(default=None, alias="timeCardEmployeeTravelTimeHours")
    pay_code: Text = Field(default=None, alias="timeCardPayCode")
    job_guid: Text = Field(default=None, alias="timeCardJobGuid")
    job_number: Text = Field(default=None, alias="timeCardJobNumber")
    phase_guid: Text = Field(default=None, alias="timeCardPhaseGuid")
    phase_code: Text = Field(default=None, alias="timeCardPhaseCode")
    payroll_period_name: Text = Field(default=None, alias="timeCardPayrollPeriodName")
    payroll_period_status: Text = Field(default=None, alias="timeCardPayrollPeriodStatus")
    created_at: EpochMs = Field(default=None, alias="timeCardCreatedAt")
    is_exported: bool | None = Field(default=None, alias="timeCardIsExportedToIntegration")
    is_deleted: bool | None = Field(default=None, alias="timeCardIsDeleted")
    is_billable: bool | None = Field(default=None, alias="timeCardIsBillable")

    @model_validator(mode="after")
    def _usable(self) -> "TimeCard":
        # Without a record date there is no work date, and without an employee the conformed
        # row would break its required columns: such records are quarantined, not guessed.
        if self.record_date is None:
            raise ValueError("timeCardRecordDate is null")
        if not (self.employee_guid or self.employee_code):
            raise ValueError("neither timeCardEmployeeGuid nor timeCardEmployeeCode is set")
        return self


class JobOrder(BaseModel):
    """``GET JobOrder/{guid}``: undocumented body, read best-effort (see module docstring)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    guid: Text = Field(default=None, validation_alias=AliasChoices("jobOrderGuid", "guid", "jobGuid"))
    number: Text = Field(
        default=None, validation_alias=AliasChoices("jobOrderNumber", "jobNumber", "number")
    )
    name: Text = Field(
        default=None,
        validation_alias=AliasChoices("jobOrderName", "jobOrderDescription", "name", "description"),
    )
    status: Text = Field(default=None, validation_alias=AliasChoices("jobOrderStatus", "status"))
    customer_guid: Text = Field(
        default=None, validation_alias=AliasChoices("jobOrderCustomerGuid", "customerGuid")
    )
    customer_name: Text = Field(
        default=None, validation_alias=AliasChoices("jobOrderCustomerName", "customerName")
    )
    start_date: EpochMs = Field(
        default=None, validation_alias=AliasChoices("jobOrderStartDate", "startDate")
    )
    end_date: EpochMs = Field(default=None, validation_alias=AliasChoices("jobOrderEndDate", "endDate"))
    manager_name: Text = Field(
        default=None,
        validation_alias=AliasChoices("jobOrderProjectManagerName", "projectManagerName"),
    )
    time_zone: Text = Field(default=None, validation_alias=AliasChoices("jobOrderTimeZone", "timeZone"))
    is_deleted: bool | None = Field(
        default=None, validation_alias=AliasChoices("jobOrderIsDeleted", "isDeleted")
    )
