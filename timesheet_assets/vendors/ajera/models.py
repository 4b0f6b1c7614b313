"""Pydantic models of the Ajera payloads.

Field names keep Ajera's spelling through aliases: the list methods use spaced keys
(``"Timesheet Key"``), the detail methods joined ones (``"TimesheetKey"``). Every model allows
unknown keys, takes ints where decimals are shown, ``null`` where a value is optional, and
dates with or without a time part (``"2012-09-09"`` and ``"2012-09-09T00:00:00"``).

What is refused (the record is quarantined with the reason): keys that are not whole numbers
or lie beyond ±2**53 (Ajera's keys are 32-bit; larger ones cannot survive pandas' float
representation of a nullable integer column); hours that are not finite numbers; a day cell
outside −24..24 hours (negative hours are kept, as a correction may be entered that way); a
week whose last day is past the last representable date.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    create_model,
)

from ...ingest.values import parse_utc_timestamp as parse_timestamp
from .week import day_date

DAY_NUMBERS = range(1, 8)


def _date_part(value: Any) -> Any:
    """``"2012-09-09T00:00:00"`` → ``"2012-09-09"``: the day as Ajera reports it, no zone shift."""
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-":
        return value[:10]
    if isinstance(value, datetime):
        return value.date()
    return value


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


MAX_DAY_HOURS = 24.0
# Keys pass through pandas columns that turn float64 when they hold a null: only integers up to
# 2**53 survive that exactly. Ajera's keys are 32-bit, so a larger one is an impossible value.
MAX_KEY = 2**53


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("hours must be a finite number")
    return value


def _one_day(value: float | None) -> float | None:
    if value is not None and abs(value) > MAX_DAY_HOURS:
        raise ValueError(f"a day's hours must be between -{MAX_DAY_HOURS:g} and {MAX_DAY_HOURS:g}")
    return value


def _week_fits(value: date) -> date:
    # Either reading puts a day six days away from ``TimesheetDate``.
    if value > date.max - timedelta(days=6) or value < date.min + timedelta(days=6):
        raise ValueError("the week runs past the first or last representable date")
    return value


AjeraDate = Annotated[date, BeforeValidator(_date_part)]
WeekDate = Annotated[date, BeforeValidator(_date_part), AfterValidator(_week_fits)]
OptionalDate = Annotated[date | None, BeforeValidator(_blank_to_none), BeforeValidator(_date_part)]
# A day cell (``Dn``, ``Dn Regular``, ``Dn Overtime``) and a week's total.
Hours = Annotated[float | None, BeforeValidator(_blank_to_none), AfterValidator(_finite), AfterValidator(_one_day)]
TotalHours = Annotated[float | None, BeforeValidator(_blank_to_none), AfterValidator(_finite)]
Key = Annotated[int, Field(ge=-MAX_KEY, le=MAX_KEY)]


class AjeraModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# -- envelope and session ---------------------------------------------------------------------
def _error_list(value: Any) -> Any:
    """``Errors`` as a list: ``null``, ``""`` and ``{}`` say "no errors" as well as ``[]`` does;
    a lone message or object is one error."""
    if value is None or value == "" or value == {}:
        return []
    if isinstance(value, (str, Mapping)):
        return [value]
    return value


def _text_or_none(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else str(value)


class Envelope(AjeraModel):
    response_code: int | None = Field(default=None, alias="ResponseCode")
    message: Annotated[str | None, BeforeValidator(_text_or_none)] = Field(default=None, alias="Message")
    errors: Annotated[list[Any], BeforeValidator(_error_list)] = Field(default_factory=list, alias="Errors")
    content: Any = Field(default=None, alias="Content")
    usage_key: Any = Field(default=None, alias="UsageKey")

    def error_texts(self) -> list[str]:
        """The messages of the ``Errors`` entries (objects, plain strings or anything else)."""
        texts: list[str] = []
        for entry in self.errors or []:
            if isinstance(entry, Mapping):
                text = next(
                    (
                        str(entry[k])
                        for k in ("ErrorMessage", "Message", "message", "Error", "Description")
                        if entry.get(k) not in (None, "")
                    ),
                    None,
                )
                texts.append(text or str(dict(entry)))
            elif entry not in (None, ""):
                texts.append(str(entry))
            else:
                texts.append("unspecified error")
        return texts


class SessionContent(AjeraModel):
    session_token: str = Field(alias="SessionToken", min_length=1)
    # Its format is not documented: whatever is not a readable timestamp is ignored, and the
    # session is then kept until the API says it is invalid.
    session_expiration: Any = Field(default=None, alias="SessionExpiration")


# -- timesheets -------------------------------------------------------------------------------
class TimesheetListRecord(AjeraModel):
    """One record of ``ListTimesheets``: who, which week, and the approval flags."""

    timesheet_key: Key = Field(alias="Timesheet Key")
    company_key: Key | None = Field(default=None, alias="Company Key")
    employee_key: Key = Field(alias="Employee Key")
    employee: str | None = Field(default=None, alias="Employee")
    first_name: str | None = Field(default=None, alias="First Name")
    last_name: str | None = Field(default=None, alias="Last Name")
    timesheet_date: AjeraDate = Field(alias="Timesheet Date")
    timesheet_total: TotalHours = Field(default=None, alias="Timesheet Total")
    submitted: bool | None = Field(default=None, alias="Submitted")
    supervisor_approved: bool | None = Field(default=None, alias="Supervisor Approved")
    accounting_approved: bool | None = Field(default=None, alias="Accounting Approved")
    project_manager_approved: bool | None = Field(default=None, alias="Project Manager Approved")
    rejected: bool | None = Field(default=None, alias="Rejected")
    paid: bool | None = Field(default=None, alias="Paid")

    @property
    def employee_name(self) -> str | None:
        if self.employee and self.employee.strip():
            return self.employee.strip()
        parts = [p.strip() for p in (self.first_name, self.last_name) if p and p.strip()]
        return " ".join(parts) or None


# Every field of a ListTimesheets record in the documentation's example.
LIST_FIELDS_DOCUMENTED = frozenset(
    {
        "Timesheet Key",
        "Company Key",
        "Employee Key",
        "Employee Status",
        "Employee",
        "First Name",
        "Middle Name",
        "Last Name",
        "My Employee",
        "Timesheet Date",
        "Timesheet Total",
        "Submitted",
        "Supervisor Approved",
        "Accounting Approved",
        "Project Manager Approved",
        "Rejected",
        "Billed",
        "Paid",
        "Project Manager Approved Value",
        "Paid Value",
        "Rejected Value",
        "Target Billable Percent",
        "Actual Billable Percent",
        "Company Name",
        "Multilevel Employee",
        "Submitted Date",
        "Submitted By",
        "Accounting Approved Date",
        "Accounting Approved By",
        "Supervisor Approved Date",
        "Supervisor Approved By",
    }
)
# The documented fields of a GetTimesheets record; a day-row's payload carries them otherwise:
# key, date and employee (the list record has them too), the sections (the line itself) and
# ``UnchangedData`` (a base64 copy of the lines). Any other field goes to ``TimesheetExtra``.
DETAIL_FIELDS_DOCUMENTED = frozenset(
    {"TimesheetKey", "TimesheetDate", "EmployeeKey", "Overhead", "Project", "UnchangedData"}
)
SECTION_FIELDS_DOCUMENTED = frozenset({"Totals", "Detail"})

# The list record fields a day-row keeps in its payload (who, which week, status flags); fields
# the documentation does not know are kept as well (see ``assets.line_records``).
LIST_FIELDS_KEPT = (
    "Timesheet Key",
    "Company Key",
    "Employee Key",
    "Employee",
    "First Name",
    "Last Name",
    "Timesheet Date",
    "Timesheet Total",
    "Submitted",
    "Supervisor Approved",
    "Accounting Approved",
    "Project Manager Approved",
    "Rejected",
    "Paid",
)


def _day_fields() -> dict[str, Any]:
    """``D1``..``D7`` cells of a detail line. ``Dn`` alone (the day total, as in the documented
    ``Totals``) is read only when a line has no ``Dn Regular``."""
    fields: dict[str, Any] = {}
    for n in DAY_NUMBERS:
        fields[f"d{n}_regular"] = (Hours, Field(default=None, alias=f"D{n} Regular"))
        fields[f"d{n}_overtime"] = (Hours, Field(default=None, alias=f"D{n} Overtime"))
        fields[f"d{n}_total"] = (Hours, Field(default=None, alias=f"D{n}"))
        fields[f"d{n}_notes"] = (str | None, Field(default=None, alias=f"D{n} Notes"))
        fields[f"d{n}_ot_notes"] = (str | None, Field(default=None, alias=f"D{n} OT Notes"))
    return fields


_DayCells = create_model("_DayCells", __base__=AjeraModel, **_day_fields())


class DayCell(BaseModel):
    day_number: int
    regular: float
    overtime: float
    notes: str | None
    overtime_notes: str | None

    @property
    def is_empty(self) -> bool:
        return self.regular == 0 and self.overtime == 0 and not self.notes and not self.overtime_notes


class DetailLine(_DayCells):
    def day(self, n: int) -> DayCell:
        regular = getattr(self, f"d{n}_regular")
        overtime = getattr(self, f"d{n}_overtime") or 0.0
        if regular is None:
            total = getattr(self, f"d{n}_total")
            regular = (total - overtime) if total is not None else 0.0
        return DayCell(
            day_number=n,
            regular=float(regular),
            overtime=float(overtime),
            notes=_blank_to_none(getattr(self, f"d{n}_notes")),
            overtime_notes=_blank_to_none(getattr(self, f"d{n}_ot_notes")),
        )

    def days(self) -> Iterator[DayCell]:
        for n in DAY_NUMBERS:
            yield self.day(n)

    def week_hours(self) -> float:
        return sum(cell.regular + cell.overtime for cell in self.days())


class ProjectLine(DetailLine):
    timesheet_project_key: Key = Field(alias="Timesheet Project Key")
    project_key: Key | None = Field(default=None, alias="Project Key")
    phase_key: Key | None = Field(default=None, alias="Phase Key")
    activity_key: Key | None = Field(default=None, alias="Activity Key")
    employee_type_key: Key | None = Field(default=None, alias="Employee Type Key")
    project_description: str | None = Field(default=None, alias="Project Description")
    phase_description: str | None = Field(default=None, alias="Phase Description")
    activity: str | None = Field(default=None, alias="Activity")


class OverheadLine(DetailLine):
    group_detail_key: Key = Field(alias="Timesheet Overhead Group Detail Key")
    group_detail: str | None = Field(default=None, alias="Timesheet Overhead Group Detail")
    timesheet_overhead_key: Key | None = Field(default=None, alias="Timesheet Overhead Key")


class TimesheetSection(AjeraModel):
    totals: dict[str, Any] | None = Field(default=None, alias="Totals")
    detail: list[dict[str, Any]] | None = Field(default=None, alias="Detail")


class TimesheetDetail(AjeraModel):
    """One record of ``GetTimesheets`` (also the shape Create/Update/SubmitTimesheets return)."""

    timesheet_key: Key = Field(alias="TimesheetKey")
    timesheet_date: OptionalDate = Field(default=None, alias="TimesheetDate")
    employee_key: Key | None = Field(default=None, alias="EmployeeKey")
    overhead: TimesheetSection | None = Field(default=None, alias="Overhead")
    project: TimesheetSection | None = Field(default=None, alias="Project")


class _LineRecord(AjeraModel):
    """A day-row's source: one detail line with the week it belongs to and the list fields."""

    timesheet: TimesheetListRecord = Field(alias="Timesheet")
    timesheet_date: WeekDate = Field(alias="TimesheetDate")

    def work_date(self, cell: DayCell, reading: str) -> date:
        """The date of the cell's day under the configured week reading (see ``week``)."""
        return day_date(self.timesheet_date, cell.day_number, reading)


class ProjectLineRecord(_LineRecord):
    section: Literal["Project"] = Field(alias="Section")
    detail: ProjectLine = Field(alias="Detail")

    @property
    def line_key(self) -> int:
        return self.detail.timesheet_project_key


class OverheadLineRecord(_LineRecord):
    section: Literal["Overhead"] = Field(alias="Section")
    detail: OverheadLine = Field(alias="Detail")

    @property
    def line_key(self) -> int:
        return self.detail.group_detail_key


class TimesheetLine(RootModel[Annotated[ProjectLineRecord | OverheadLineRecord, Field(discriminator="section")]]):
    pass


# -- projects ---------------------------------------------------------------------------------
def _name_of(value: Any) -> str | None:
    """A person or client reference as a display name: a plain string or an object."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        for key in ("Name", "Description", "DisplayName", "Employee"):
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
        parts = [str(value[k]).strip() for k in ("FirstName", "First Name", "LastName", "Last Name") if value.get(k)]
        return " ".join(parts) or None
    return None


def _key_of(value: Any, *names: str) -> str | None:
    if isinstance(value, Mapping):
        for name in names:
            if value.get(name) not in (None, ""):
                return str(value[name])
    return None


class ProjectListRecord(AjeraModel):
    project_key: Key = Field(validation_alias=AliasChoices("ProjectKey", "Project Key"))


_AJERA_ZONE_NAME = re.compile(r"\s*\([^)]*\)\s*$")
_AJERA_GMT = re.compile(r"\s*GMT\s*([+-]\d{2}):?(\d{2})$")


def ajera_timestamp(value: Any) -> datetime | None:
    """A modification time as an aware UTC datetime: ISO text, or the form Ajera's own answers
    use, ``2017-01-08 18:38:53.367 GMT-05:00 (Eastern Standard Time)`` (also ``GMT-0500``);
    ``None`` when unreadable."""
    if isinstance(value, str):
        text = _AJERA_ZONE_NAME.sub("", value.strip())
        text = _AJERA_GMT.sub(lambda m: f"{m.group(1)}:{m.group(2)}", text)
        return parse_timestamp(text)
    return parse_timestamp(value)


def _client_of(group: Any) -> tuple[str | None, str | None]:
    """The (key, name) of the client an invoice group bills: API version 2 puts
    ``ClientKey``/``ClientDescription`` on the flat group record, version 1 nests a ``Client``
    object (``ClientKey``, ``Description``) in each group of the project."""
    if not isinstance(group, Mapping):
        return None, None
    nested = group.get("Client")
    key = _key_of(group, "ClientKey", "Client Key") or _key_of(nested, "ClientKey", "Client Key", "Key")
    name = _name_of(group.get("ClientDescription")) or _name_of(group.get("ClientName")) or _name_of(nested)
    return key, name


class Project(AjeraModel):
    """A ``GetProjects`` project (or, when the detail is missing, the ``ListProjects`` record).

    The fields the conformed model needs, read under the names of Deltek's project pages and of
    answers from real tenants (docs/vendors/ajera.md). The client is on the project's invoice
    groups: with API version 2 the client reads the flat ``InvoiceGroups`` list and attaches
    the project's groups to its record (``InvoiceGroups``), the shape version 1 nests them in.
    """

    project_key: Key = Field(validation_alias=AliasChoices("ProjectKey", "Project Key"))
    id: str | None = Field(default=None, validation_alias=AliasChoices("ID", "Id", "ProjectID"))
    description: str | None = Field(
        default=None, validation_alias=AliasChoices("Description", "Project Description", "Name")
    )
    status: str | None = Field(default=None, validation_alias=AliasChoices("Status", "Project Status"))
    project_manager: Any = Field(default=None, validation_alias=AliasChoices("ProjectManager", "Project Manager"))
    client: Any = Field(default=None, validation_alias=AliasChoices("Client", "PrimaryClient"))
    client_key: Key | None = Field(default=None, validation_alias=AliasChoices("ClientKey", "Client Key"))
    client_name: str | None = Field(default=None, validation_alias=AliasChoices("ClientName", "Client Name"))
    invoice_groups: Any = Field(default=None, validation_alias=AliasChoices("InvoiceGroups", "Invoice Groups"))
    actual_start: OptionalDate = Field(
        default=None, validation_alias=AliasChoices("ActualStartDate", "Actual Start Date")
    )
    estimated_start: OptionalDate = Field(
        default=None, validation_alias=AliasChoices("EstimatedStartDate", "Estimated Start Date")
    )
    actual_completion: OptionalDate = Field(
        default=None, validation_alias=AliasChoices("ActualCompletionDate", "Actual Completion Date")
    )
    estimated_completion: OptionalDate = Field(
        default=None, validation_alias=AliasChoices("EstimatedCompletionDate", "Estimated Completion Date")
    )
    last_modified: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LastModifiedDate", "Last Modified Date", "ModifiedDate"),
    )

    @property
    def manager_name(self) -> str | None:
        return _name_of(self.project_manager)

    def _group_client(self) -> tuple[str | None, str | None]:
        """The first invoice group (in the order served) that names a client."""
        for group in self.invoice_groups if isinstance(self.invoice_groups, list) else []:
            key, name = _client_of(group)
            if key is not None or name is not None:
                return key, name
        return None, None

    @property
    def customer_id(self) -> str | None:
        if self.client_key is not None:
            return str(self.client_key)
        return _key_of(self.client, "ClientKey", "Client Key", "Key") or self._group_client()[0]

    @property
    def customer_name(self) -> str | None:
        return self.client_name or _name_of(self.client) or self._group_client()[1]

    @property
    def start_date(self) -> date | None:
        return self.actual_start or self.estimated_start

    @property
    def end_date(self) -> date | None:
        return self.actual_completion or self.estimated_completion

    @property
    def updated_at(self) -> datetime | None:
        return ajera_timestamp(self.last_modified)
