"""Pydantic models of the Blikk payloads the pipeline reads.

Written from the public API document, and lenient where it leaves room: unknown keys are kept
(``extra="allow"``), numbers may arrive as ints or numeric strings, ids and numbers shown as
strings may arrive as numbers, optional objects may be ``null`` or missing, and ``""`` in an
optional field that is not text (or ``[]`` where an object belongs) reads as absent.
Timestamps follow the document's format ``2022-07-01 04:43:12 +00:00``; ISO-8601 (``T``
separator, ``Z``) and offset-less values (read as UTC, the document calls them "datetime
utc") are accepted too.

Impossible values are validation errors, so the record is quarantined instead of landing
(or of crashing the run): non-finite numbers anywhere, ``hours`` outside 0..24 (a report is one
day), negative ``invoiceableHours``, ``breakMinutes`` outside 0..1440, and dates or timestamps
outside the years 1900..2200 (beyond them a timestamp cannot be stored, and converting one
with an offset near year 1 or 9999 overflows).

Fields the document marks *required* but that the pipeline can do without (``activity``,
``invoiceableHours``, ``createdDate`` …) are optional here so one odd record is not
quarantined for a value nobody needs; the ones a conformed row cannot exist without
(time report ``id``, ``date``, ``hours``, ``user.id``; project ``id``) stay required.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# "2022-07-01 04:43:12 +00:00": the space before the offset is not ISO-8601.
_SPACED_OFFSET = re.compile(r"^(?P<stamp>.*\d)\s+(?P<offset>[+-]\d{2}:?\d{2}|Z|UTC|GMT)$", re.IGNORECASE)
_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:$|[ T])")
# Dates and timestamps outside these years are impossible for Blikk data and would not fit
# the warehouse's timestamp range (pandas nanoseconds: 1677..2262).
MIN_YEAR, MAX_YEAR = 1900, 2200
MAX_REPORT_HOURS = 24.0
MAX_BREAK_MINUTES = 24 * 60


def _in_range(day: date) -> None:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValueError(f"year {day.year} is outside {MIN_YEAR}..{MAX_YEAR}")


def parse_blikk_datetime(value: Any) -> datetime | None:
    """A Blikk timestamp as an aware UTC datetime; ``None`` for null or empty.

    Raises ``ValueError`` for text that is not a timestamp.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if not text:
            return None
        match = _SPACED_OFFSET.match(text)
        if match:
            offset = match["offset"].upper()
            text = match["stamp"] + ("+00:00" if offset in ("Z", "UTC", "GMT") else offset)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    _in_range(moment)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # Not a ValueError: pydantic would let it escape validation and fail the whole run.
        raise ValueError("timestamp out of range") from None


def parse_blikk_date(value: Any) -> date | None:
    """The calendar day of a Blikk ``date``/``datetime`` value *as reported* (no timezone
    conversion: a work date stays the day the vendor shows). ``None`` for null or empty."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    match = _DATE_PREFIX.match(text)
    if not match:
        raise ValueError(f"not a date: {text[:40]!r}")
    day = date.fromisoformat(match.group(1))
    _in_range(day)
    return day


def _optional_datetime(value: Any) -> datetime | None:
    return parse_blikk_datetime(value)


def _optional_date(value: Any) -> date | None:
    return parse_blikk_date(value)


def _required_date(value: Any) -> date:
    parsed = parse_blikk_date(value)
    if parsed is None:
        raise ValueError("a date is required")
    return parsed


UtcDateTime = Annotated[datetime | None, BeforeValidator(_optional_datetime)]
OptionalDate = Annotated[date | None, BeforeValidator(_optional_date)]
WorkDate = Annotated[date, BeforeValidator(_required_date)]


def _blank_means_absent(annotation: Any) -> tuple[bool, bool]:
    """(``""`` reads as absent, ``[]`` reads as absent) for an optional field's type: text
    fields keep their ``""`` and list fields their ``[]``."""
    members = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    kinds = [kind for kind in members if kind is not type(None)]
    if any(kind is str or get_origin(kind) is list for kind in kinds):
        return False, False
    is_object = any(
        get_origin(kind) is dict or kind is dict or (isinstance(kind, type) and issubclass(kind, BaseModel))
        for kind in kinds
    )
    return True, is_object


class BlikkModel(BaseModel):
    # JSON has no NaN or Infinity, but Python's decoder accepts them (and "NaN" as a numeric
    # string would parse too): a non-finite number is never a real value.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, allow_inf_nan=False)

    # Optional non-text fields where "" (and, for objects, []) means "not set".
    _blank_fields: ClassVar[frozenset[str]] = frozenset()
    _empty_list_fields: ClassVar[frozenset[str]] = frozenset()

    objectName: str | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        blank, empty_list = set(), set()
        for name, info in cls.model_fields.items():
            if info.is_required():
                continue  # a required value that is blank stays invalid
            text_absent, list_absent = _blank_means_absent(info.annotation)
            if text_absent:
                blank.add(name)
            if list_absent:
                empty_list.add(name)
        cls._blank_fields = frozenset(blank)
        cls._empty_list_fields = frozenset(empty_list)

    @model_validator(mode="before")
    @classmethod
    def _blank_optional_values_are_absent(cls, data: Any) -> Any:
        # The document shows "" for empty text; an implementation may serve "" (or [] for an
        # object) wherever an optional value is absent, numbers and objects included.
        if not isinstance(data, dict):
            return data
        cleared = None
        for name in cls._blank_fields.intersection(data):
            value = data[name]
            if (isinstance(value, str) and not value.strip()) or (value == [] and name in cls._empty_list_fields):
                cleared = cleared if cleared is not None else dict(data)
                cleared[name] = None
        return cleared if cleared is not None else data


class NameRef(BlikkModel):
    """``generic.name_id`` and its relatives (``project.name_id`` adds ``number``)."""

    id: int | None = None
    name: str | None = None
    number: str | None = None


class ListEnvelope(BlikkModel):
    """``generic.pagedlist``. Items stay raw dicts: each is validated on its own so one bad
    record is quarantined instead of failing the page."""

    page: int | None = None
    pageSize: int | None = None
    itemCount: int | None = None
    totalItemCount: int | None = None
    totalPages: int | None = None
    items: list[Any] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _items_may_be_null(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("items") is None:
            return {**data, "items": []}
        return data


def _lenient_expiry(value: Any) -> datetime | None:
    # An unreadable expiry only costs the early renewal (the token is used until a 401);
    # it must not make the token itself unusable.
    try:
        return parse_blikk_datetime(value)
    except (TypeError, ValueError):
        return None


class TokenResponse(BlikkModel):
    accessToken: str = Field(min_length=1)
    expires: Annotated[datetime | None, BeforeValidator(_lenient_expiry)] = None


class ErrorBody(BlikkModel):
    """Every error shape the document shows (400, 401, 403, 429, 500)."""

    message: str | None = None
    modelState: dict[str, Any] | None = None
    permissionsRequired: list[str] | None = None
    ipAddressAllowed: bool | None = None
    requestId: str | None = None
    waitInSeconds: float | None = None


class TimeReport(BlikkModel):
    """``timereport.list`` (and ``timereport.detail``, a superset)."""

    id: int
    date: WorkDate
    clockStart: str | None = None
    clockEnd: str | None = None
    hours: float = Field(ge=0, le=MAX_REPORT_HOURS)
    invoiceableHours: float | None = Field(default=None, ge=0)
    breakMinutes: int | None = Field(default=None, ge=0, le=MAX_BREAK_MINUTES)
    cost: float | None = None
    rate: float | None = None
    discount: float | None = None
    comment: str | None = None
    internalComment: str | None = None
    # Kept as text: the document types sentToAttestDate as "string"; only whether it is set
    # matters for the status, and the timestamps are parsed leniently for reporting.
    sentToAttestDate: str | None = None
    attestedDate: str | None = None
    user: NameRef
    project: NameRef | None = None
    internalProject: NameRef | None = None
    absenceProject: NameRef | None = None
    contact: NameRef | None = None
    activity: NameRef | None = None
    timeCode: NameRef | None = None
    timeArticle: NameRef | None = None
    costCenter: NameRef | None = None
    invoiceId: int | None = None
    travelReportId: int | None = None
    allowanceReportId: int | None = None
    createdDate: UtcDateTime = None
    updatedDate: UtcDateTime = None

    @model_validator(mode="after")
    def _user_has_id(self) -> TimeReport:
        if self.user.id is None:
            raise ValueError("user.id is required (a time report belongs to a user)")
        return self

    @property
    def is_sent_to_attest(self) -> bool:
        return bool((self.sentToAttestDate or "").strip())

    @property
    def is_attested(self) -> bool:
        return bool((self.attestedDate or "").strip())

    @property
    def sent_to_attest_at(self) -> datetime | None:
        return _lenient_timestamp(self.sentToAttestDate)

    @property
    def attested_at(self) -> datetime | None:
        return _lenient_timestamp(self.attestedDate)


class ProjectStatus(BlikkModel):
    id: int | None = None
    name: str | None = None
    isCompletedStatus: bool | None = None


class Project(BlikkModel):
    """``project.list``."""

    id: int
    orderNumber: str | None = None
    title: str | None = None
    status: ProjectStatus | None = None
    startDate: OptionalDate = None
    endDate: OptionalDate = None
    invoiceType: str | None = None
    location: dict[str, Any] | None = None
    projectManager: NameRef | None = None
    customer: NameRef | None = None
    projectCollection: NameRef | None = None
    createdBy: NameRef | None = None
    updatedBy: NameRef | None = None
    created: UtcDateTime = None
    updated: UtcDateTime = None


class RegistryProject(BlikkModel):
    """``internalproject.list`` and ``absenceproject.list``: the other two registries a time
    report can be booked on."""

    id: int
    name: str | None = None
    isActive: bool | None = None
    commentRequiredWhenTimeReporting: bool | None = None
    createdBy: NameRef | None = None
    updatedBy: NameRef | None = None
    created: UtcDateTime = None
    updated: UtcDateTime = None


class AbsenceProject(RegistryProject):
    salaryCodeForMonthlySalary: str | None = None
    salaryCodeForHourlySalary: str | None = None
    refersToSickness: bool | None = None


class User(BlikkModel):
    """``user.list`` (and ``user.detail``)."""

    id: int
    firstName: str | None = None
    lastName: str | None = None
    startDate: OptionalDate = None
    endDate: OptionalDate = None
    timeReportingProfile: NameRef | None = None
    department: NameRef | None = None
    license: str | None = None
    permissions: list[str] | None = None
    createdBy: NameRef | None = None
    updatedBy: NameRef | None = None
    createdDate: UtcDateTime = None
    updatedDate: UtcDateTime = None

    @property
    def display_name(self) -> str | None:
        parts = [p.strip() for p in (self.firstName, self.lastName) if p and p.strip()]
        return " ".join(parts) or None


def _lenient_timestamp(value: str | None) -> datetime | None:
    try:
        return parse_blikk_datetime(value)
    except ValueError:
        return None


class UserDayHours(BlikkModel):
    """``timereport.userdaystatistics.datedata``: one day of one user."""

    date: WorkDate
    reportedHours: float | None = Field(default=None, ge=0)
    scheduledHours: float | None = None
    lockedDate: str | None = None
    attestedDate: str | None = None


class UserDayStatistics(BlikkModel):
    """``timereport.userdaystatistics``: a user with every day of the requested span."""

    userId: int
    name: str | None = None
    department: NameRef | None = None
    dates: list[UserDayHours] = Field(default_factory=list)
