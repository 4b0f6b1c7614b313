"""Pydantic models of the Aimsio payloads.

The API document shows one full body, the ``CurrentTimeCard`` GET-single example; its schema
table and its example disagree on types (the table says ``number`` for travel hours and some
amounts, the example sends strings such as ``"0.000"``), so every number is read leniently:
int, float or numeric string, and ``null``. Impossible values quarantine the record: a number
that is not finite (``NaN``, ``Infinity``, ``1e400``), negative hours or more than 168 hours
in one field, epoch milliseconds outside the years 1900-2199 (validation messages never quote
the value). Key casing is taken from the example (``timeCarddescription``) with the schema
table's spelling (``timeCardDescription``) accepted too. A blank string in a boolean is
``null``; ``timeCardPayrollPeriodStatus`` (typed ``any``) may be an object naming the status;
zone names match whatever their case; an ISO timestamp without an offset is local time in
the record's zone. Unknown keys are kept
(``extra="allow"``) and the raw payload is stored verbatim anyway.

Job orders have no documented body. The fields below are the shape the sandbox serves
(``docs/vendors/aimsio.md``); all of them are optional, a few common spellings are accepted,
and everything else stays in the payload.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timezone
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

UTC_NAME = "UTC"


# Epoch milliseconds are accepted for the years 1900..2199 (UTC): wide enough for any real
# timecard, narrow enough that every zone's local date and pandas' nanosecond timestamps can
# hold the value. Anything outside is an impossible value and quarantines the record.
MIN_EPOCH_MS = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_EPOCH_MS = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp() * 1000) - 1


def _number(value: Any) -> float | None:
    """A finite number from an int, float or numeric string (messages never quote the value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    elif not isinstance(value, (int, float)):
        raise ValueError(f"expected a number or numeric string, got {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ValueError("expected a number or numeric string") from None
    if not math.isfinite(number):
        raise ValueError("number is not finite")
    return number


# One timecard line is one employee's day; more than a week of hours in one field is a unit or
# data error (minutes, an amount), not time worked. A sanity bound, deliberately loose.
MAX_HOURS = 168.0


def _hours(value: Any) -> float | None:
    number = _number(value)
    if number is not None and number < 0:
        raise ValueError("hours cannot be negative")
    if number is not None and number > MAX_HOURS:
        raise ValueError("more than 168 hours on one timecard line")
    return number


def _epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds as documented; numeric strings and ISO timestamps are tolerated."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                value = parsed.timestamp() * 1000
            except (ValueError, OverflowError, OSError):
                raise ValueError("expected epoch milliseconds or an ISO timestamp") from None
    elif not isinstance(value, (int, float)):
        raise ValueError(f"expected epoch milliseconds, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("timestamp is not finite")
    try:
        millis = int(value)
    except (ValueError, OverflowError):
        raise ValueError("expected epoch milliseconds") from None
    if not MIN_EPOCH_MS <= millis <= MAX_EPOCH_MS:
        raise ValueError("epoch milliseconds outside the years 1900-2199")
    return millis


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


def _flag(value: Any) -> Any:
    """Booleans are read by pydantic (``true``, ``"False"``, ``0``...); a blank string is not
    stated, like ``null``, rather than an invalid record."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


_STATUS_KEYS = ("status", "name", "value", "code")


def _status(value: Any) -> str | None:
    """``timeCardPayrollPeriodStatus`` is typed ``any``: a plain value, or an object naming it
    under ``status``/``name``/``value``/``code`` (any case)."""
    if isinstance(value, Mapping):
        by_key = {str(k).lower(): v for k, v in value.items()}
        for key in _STATUS_KEYS:
            found = by_key.get(key)
            if isinstance(found, (str, int, float)) and not isinstance(found, bool) and str(found).strip():
                return str(found)
    return _text(value)


Hours = Annotated[float | None, BeforeValidator(_hours)]
EpochMs = Annotated[int | None, BeforeValidator(_epoch_ms)]
Text = Annotated[str | None, BeforeValidator(_text)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]
Status = Annotated[str | None, BeforeValidator(_status)]


def epoch_ms_to_utc(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@cache
def _zone_names_by_lower_case() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def zone_or_utc(name: str | None) -> tuple[ZoneInfo | timezone, str]:
    """The record's IANA zone, matched whatever its case (``america/winnipeg``), or UTC when
    it has none or names one that does not exist."""
    if name:
        name = name.strip()
        for candidate in (name, _zone_names_by_lower_case().get(name.lower())):
            if not candidate:
                continue
            try:
                return ZoneInfo(candidate), candidate
            except (ZoneInfoNotFoundError, ValueError, OSError):
                pass
    return UTC, UTC_NAME


def localize_naive_timestamps(data: Any, fields: tuple[str, ...], zone_fields: tuple[str, ...]) -> Any:
    """Timestamps sent as ISO text without an offset (or as a bare date) are wall-clock time
    in the record's zone, so they become epoch ms there; reading them as UTC would move the
    work date by a day. Anything else is left to the field validators."""
    if not isinstance(data, Mapping):
        return data
    zone_name = next((data.get(f) for f in zone_fields if isinstance(data.get(f), str)), None)
    zone, _ = zone_or_utc(zone_name)
    localized: dict[str, int] = {}
    for name in fields:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        text = value.strip()
        try:
            float(text)
            continue  # epoch ms as a numeric string
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is not None:
                continue
            localized[name] = int(parsed.replace(tzinfo=zone).timestamp() * 1000)
        except (ValueError, OverflowError, OSError):
            continue
    return {**data, **localized} if localized else data


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
    regular_hours: Hours = Field(default=None, alias="timeCardEmployeeRegularHours")
    overtime_hours: Hours = Field(default=None, alias="timeCardEmployeeOverTimeHours")
    double_time_hours: Hours = Field(default=None, alias="timeCardEmployeeDoubleTimeHours")
    travel_hours: Hours = Field(default=None, alias="timeCardEmployeeTravelTimeHours")
    pay_code: Text = Field(default=None, alias="timeCardPayCode")
    job_guid: Text = Field(default=None, alias="timeCardJobGuid")
    job_number: Text = Field(default=None, alias="timeCardJobNumber")
    phase_guid: Text = Field(default=None, alias="timeCardPhaseGuid")
    phase_code: Text = Field(default=None, alias="timeCardPhaseCode")
    payroll_period_name: Text = Field(default=None, alias="timeCardPayrollPeriodName")
    payroll_period_status: Status = Field(default=None, alias="timeCardPayrollPeriodStatus")
    created_at: EpochMs = Field(default=None, alias="timeCardCreatedAt")
    is_exported: Flag = Field(default=None, alias="timeCardIsExportedToIntegration")
    is_deleted: Flag = Field(default=None, alias="timeCardIsDeleted")
    is_billable: Flag = Field(default=None, alias="timeCardIsBillable")

    @model_validator(mode="before")
    @classmethod
    def _local_timestamps(cls, data: Any) -> Any:
        return localize_naive_timestamps(data, ("timeCardRecordDate", "timeCardCreatedAt"), ("timeCardTimeZone",))

    @model_validator(mode="after")
    def _usable(self) -> TimeCard:
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
    number: Text = Field(default=None, validation_alias=AliasChoices("jobOrderNumber", "jobNumber", "number"))
    name: Text = Field(
        default=None,
        validation_alias=AliasChoices("jobOrderName", "jobOrderDescription", "name", "description"),
    )
    status: Text = Field(default=None, validation_alias=AliasChoices("jobOrderStatus", "status"))
    customer_guid: Text = Field(default=None, validation_alias=AliasChoices("jobOrderCustomerGuid", "customerGuid"))
    customer_name: Text = Field(default=None, validation_alias=AliasChoices("jobOrderCustomerName", "customerName"))
    start_date: EpochMs = Field(default=None, validation_alias=AliasChoices("jobOrderStartDate", "startDate"))
    end_date: EpochMs = Field(default=None, validation_alias=AliasChoices("jobOrderEndDate", "endDate"))
    manager_name: Text = Field(
        default=None,
        validation_alias=AliasChoices("jobOrderProjectManagerName", "projectManagerName"),
    )
    time_zone: Text = Field(default=None, validation_alias=AliasChoices("jobOrderTimeZone", "timeZone"))
    is_deleted: Flag = Field(default=None, validation_alias=AliasChoices("jobOrderIsDeleted", "isDeleted"))

    @model_validator(mode="before")
    @classmethod
    def _local_timestamps(cls, data: Any) -> Any:
        return localize_naive_timestamps(
            data,
            ("jobOrderStartDate", "startDate", "jobOrderEndDate", "endDate"),
            ("jobOrderTimeZone", "timeZone"),
        )
