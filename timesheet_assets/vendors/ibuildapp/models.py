"""Pydantic models of the iBuildApp Timesheets payloads this pipeline reads.

The documentation is loose about types, so the models are too:

* ids are integers in most examples but the side tables are keyed by id *strings*; ids are
  normalised to strings so ``"7"`` and ``7`` join;
* timestamps are epoch seconds as integers (``1583905200``), as numeric strings
  (``"1566486923"``, task/work_history) or as ``"2019-08-13 12:04:03"`` (user/history), and
  any ISO 8601 spelling of the latter (``T``, fractions, no seconds, ``Z``/offsets, a bare
  date; no offset means UTC); all become timezone-aware UTC datetimes. ``0`` and ``""`` mean
  "not set" (the doc's examples use ``0`` as a placeholder for dates that were never filled
  in);
* counts shown as integers may arrive as ``""`` (``comments`` in the dashboard example);
* every object keeps unknown keys (``extra="allow"``).

Values no real entry can have are errors, so the record is quarantined with the reason rather
than distorting totals or breaking the frame: timestamps outside 1970..2099 (epoch seconds
overflowing a date included), NaN/infinite numbers, a negative duration or one longer than
31 days, negative or absurd counts (over 10,000 breaks), an ``end_time`` before ``start_time``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Required, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from ...ingest.values import parse_utc_timestamp

# Plausible instants for this API (it went online long after 1970); outside them a value is
# corrupt, and far-off years would also break timezone conversion and pandas' nanosecond range.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# A single tracked entry longer than this is a broken clock, not work.
MAX_ENTRY_SECONDS = 31 * 24 * 3600
MAX_COUNT = 10_000


def _in_range(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError("timestamp outside 1970..2099")
    return moment


def _from_epoch(number: float) -> datetime | None:
    if number == 0:
        return None
    try:
        moment = datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        # Pydantic turns only ValueError into a validation error; anything else would escape
        # validation and fail the whole page instead of quarantining this record.
        raise ValueError("timestamp outside 1970..2099") from None
    return _in_range(moment)


def epoch_to_utc(value: Any) -> datetime | None:
    """An iBuildApp timestamp as an aware UTC datetime; ``None`` for "not set".

    Raises ``ValueError`` for values that are present but unreadable, so the record is
    quarantined with a reason instead of silently losing its date.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _in_range(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            raise ValueError("timestamp outside 1970..2099") from None
        return _from_epoch(number)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return _from_epoch(number)
        # ISO 8601 text ("T" or space, fractions, "Z"/offset or none = UTC, a bare date).
        moment = parse_utc_timestamp(text)
        if moment is not None:
            return _in_range(moment)
    raise ValueError("not an epoch-seconds timestamp or ISO 8601 date/time text")


def id_text(value: Any) -> str | None:
    """Ids as strings (side tables are keyed by id strings); ``None`` when absent."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float, str)):
        text = str(value).strip()
        return text or None
    raise ValueError("an id must be an integer or a string")


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Timestamp = Annotated[datetime | None, BeforeValidator(epoch_to_utc)]
RequiredTimestamp = Annotated[datetime, BeforeValidator(epoch_to_utc)]
IdText = Annotated[str | None, BeforeValidator(id_text)]
RequiredId = Annotated[str, BeforeValidator(id_text)]
Count = Annotated[int | None, BeforeValidator(_blank_to_none)]
Number = Annotated[float | None, BeforeValidator(_blank_to_none)]


class _Payload(BaseModel):
    # NaN/Infinity parse from JSON (Python's decoder accepts them) but are never real values.
    model_config = ConfigDict(extra="allow", populate_by_name=True, allow_inf_nan=False)


class TimeEntry(_Payload):
    """One entry of ``ts/search`` ``data.time_entries``."""

    id: RequiredId
    user_id: RequiredId
    task_id: IdText = None
    schedule_id: IdText = None
    start_time: RequiredTimestamp
    end_time: Timestamp = None
    approve_date: Timestamp = None
    created: Timestamp = None
    updated: Timestamp = None
    duration: Number = Field(default=None, ge=0, le=MAX_ENTRY_SECONDS, description="Seconds.")
    breaks: Count = Field(default=None, ge=0, le=MAX_COUNT, description="How many breaks, not their length.")
    comments: Count = Field(default=None, ge=0, le=MAX_COUNT)
    status: str | None = None
    payment_status: str | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> TimeEntry:
        if self.end_time is not None and self.end_time < self.start_time:
            raise ValueError("end_time is before start_time")
        if (
            self.duration is None
            and self.end_time is not None
            and (self.end_time - self.start_time).total_seconds() > MAX_ENTRY_SECONDS
        ):
            # Its hours would be the span (conform.py): a year-long entry is bad data, not work.
            raise ValueError("no duration and end_time is more than 31 days after start_time")
        return self


# -- the fast path ------------------------------------------------------------------------------
# Epoch seconds of LATEST: integer timestamps in [1, this) are exactly the ones epoch_to_utc
# reads as an in-range instant (0 means "not set", negatives are before 1970).
LATEST_EPOCH = int(LATEST.timestamp())
_FastStart = Annotated[StrictInt, Field(gt=0, lt=LATEST_EPOCH)]
_FastTimestamp = Annotated[StrictInt | None, Field(ge=0, lt=LATEST_EPOCH)]
_FastCount = Annotated[StrictInt | None, Field(ge=0, le=MAX_COUNT)]


@with_config(ConfigDict(allow_inf_nan=False))
class TimeEntryFast(TypedDict, total=False):
    """``TimeEntry`` as the API usually sends it, in strict types pydantic-core checks without
    calling Python: integer ids, integer epoch seconds, numeric duration, integer counts,
    text statuses. Every entry it accepts is one ``TimeEntry`` accepts, read the same way
    (id → ``str(id)``; epoch ``0`` → not set; ``duration`` → float); everything else (id
    strings, text timestamps, ``""`` counts, booleans, …) takes the lenient per-record path.
    ``end_time`` before ``start_time`` is checked on the columns (``assets.py``). Other unknown
    keys are ignored here: the payload is taken from the record itself."""

    id: Required[StrictInt]
    user_id: Required[StrictInt]
    task_id: StrictInt | None
    schedule_id: StrictInt | None
    start_time: Required[_FastStart]
    end_time: _FastTimestamp
    approve_date: _FastTimestamp
    created: _FastTimestamp
    updated: _FastTimestamp
    duration: Annotated[StrictInt | StrictFloat | None, Field(ge=0, le=MAX_ENTRY_SECONDS)]
    breaks: _FastCount
    comments: _FastCount
    status: StrictStr | None
    payment_status: StrictStr | None
    # Not a TimeEntry field: an extra there (any value), carried along for the project join.
    project_id: Any


class User(_Payload):
    """A ``users`` side-table entry."""

    id: IdText = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @property
    def display_name(self) -> str | None:
        name = " ".join(p.strip() for p in (self.first_name, self.last_name) if p and p.strip())
        return name or None


class Task(_Payload):
    """A ``tasks`` side-table entry."""

    id: IdText = None
    name: str | None = None
    project: IdText = None
    duration: Number = None
    status: str | None = None


class Client(_Payload):
    """A ``clients`` side-table entry of ``project/search``."""

    id: IdText = None
    name: str | None = None
    status: str | None = None


class Project(_Payload):
    """One entry of ``project/search`` ``data.projects`` (also the ``projects`` side table of
    ``ts/search``)."""

    id: RequiredId
    name: str | None = None
    description: str | None = None
    category: str | None = None
    client_id: IdText = None
    duration_unit: str | None = None
    status: str | None = None
    planned_start_date: Timestamp = None
    actual_start_date: Timestamp = None
    planned_end_date: Timestamp = None
    actual_end_date: Timestamp = None
    estimated_duration: Number = None
    actual_duration: Number = None
    updated: Timestamp = None
    # Task ids; a PHP backend may serialise the list as an object, so either is accepted.
    tasks: list[Any] | dict[str, Any] | None = None


PayloadT = TypeVar("PayloadT", bound=_Payload)


def lenient(model: type[PayloadT], record: Mapping[str, Any] | None) -> PayloadT | None:
    """Side-table entries only supply names: one that does not validate gives no name rather
    than failing the time entry that points at it."""
    if not isinstance(record, Mapping):
        return None
    try:
        return model.model_validate(record)
    except ValueError:
        return None
