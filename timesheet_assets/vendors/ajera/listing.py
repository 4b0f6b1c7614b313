"""Complete lists from Ajera: paged list methods, and ``ListTimesheets`` despite its cap.

Paging (``ListProjects``, ``ListEmployees``): ``PageResults``/``PageNumber``/``PageSize`` beside
``MethodArguments``. The list ends at ``PageCount`` when the answer gives it. A server that
gives no ``PageCount`` is read to the first empty page or the first page shorter than the ones
before it (a first page shorter than ``PageSize`` costs one more call: the server may serve
fewer records per page than asked); a server that ignores paging and answers every page with
the same records is stopped at the first page that only repeats.

``ListTimesheets`` is not paged (its document shows no paging). People using the real API report
a hard cap: an answer never holds more than 500 timesheets and says nothing when it was cut.
So an answer of exactly ``list_cap`` records is treated as truncated and the request is split:
a range longer than seven days into seven-day ranges, a seven-day range by ``FilterByEmployee``
(the employees from ``ListEmployees``, in groups that are halved again while an answer is
still full). One employee with a full answer for seven days cannot be split further: the run
fails saying so rather than landing a partial week.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ...http import VendorRejected
from .records import batched, employee_key

if TYPE_CHECKING:
    from .resource import AjeraResource

LOGGER = logging.getLogger(__name__)

SPLIT_DAYS = 7


def read_all_pages(
    fetch_page: Callable[[int], tuple[list[Any], int | None]], key_of: Callable[[Any], Any], method: str
) -> tuple[list[Any], int]:
    """Every record of a paged list (distinct by ``key_of`` where it has one) and the pages read."""
    records: list[Any] = []
    seen: set[Any] = set()
    page = 1
    served_per_page: int | None = None  # what a full page holds on this server
    while True:
        batch, count = fetch_page(page)
        keys = [key_of(r) for r in batch]
        if batch and all(k is not None and k in seen for k in keys):
            # A server that ignores paging answers every page with page one.
            LOGGER.warning("Ajera: %s page %d only repeats earlier records; stopping", method, page)
            return records, page
        for record, key in zip(batch, keys):
            if key is None or key not in seen:
                records.append(record)
            if key is not None:
                seen.add(key)
        if count is not None:
            if page >= count:
                return records, page
        elif not batch or (served_per_page is not None and len(batch) < served_per_page):
            return records, page
        if not batch:
            # PageCount says there are more pages but this one is empty: the list ended early.
            return records, page
        if served_per_page is None:
            served_per_page = len(batch)
        page += 1


@dataclass
class TimesheetListing:
    """``ListTimesheets`` over a ``TimesheetDate`` range, split until no answer is full."""

    resource: AjeraResource
    calls: int = 0
    truncated: int = 0
    _employees: list[int] | None = None

    def weeks(self, earliest: date, latest: date) -> list[Any]:
        """Every list record with a ``TimesheetDate`` in ``earliest``..``latest``, each range at
        most ``list_window_days`` long so no single answer grows without bound. Once an answer
        was cut off, the rest of the range is asked for in seven-day ranges straight away."""
        out: list[Any] = []
        start = earliest
        days = self.resource.list_window_days
        while start <= latest:
            end = min(latest, start + timedelta(days=days - 1))
            truncated = self.truncated
            out.extend(self._complete(start, end, None))
            if self.truncated > truncated:
                days = SPLIT_DAYS
            start = end + timedelta(days=1)
        return out

    def _complete(self, start: date, end: date, employees: list[int] | None) -> list[Any]:
        self.calls += 1
        records = self.resource.list_timesheets(start, end, employees=employees)
        if len(records) != self.resource.list_cap:
            return records
        self.truncated += 1
        LOGGER.warning(
            "Ajera: ListTimesheets %s..%s%s answered exactly %d records (the API's cap): splitting",
            start,
            end,
            f" for {len(employees)} employee(s)" if employees else "",
            len(records),
        )
        if (end - start).days + 1 > SPLIT_DAYS:
            out: list[Any] = []
            piece = start
            while piece <= end:
                piece_end = min(end, piece + timedelta(days=SPLIT_DAYS - 1))
                out.extend(self._complete(piece, piece_end, employees))
                piece = piece_end + timedelta(days=1)
            return out
        if employees is None:
            everyone = self.employees()
            groups = batched(everyone, max(1, self.resource.list_cap // 2))
        elif len(employees) > 1:
            middle = len(employees) // 2
            groups = [employees[:middle], employees[middle:]]
        else:
            raise VendorRejected(
                f"ListTimesheets: employee {employees[0]} has {len(records)} timesheets dated "
                f"{start}..{end}, the most one answer holds; the list cannot be split further"
            )
        if not groups:
            raise VendorRejected(
                f"ListTimesheets: {start}..{end} answered {len(records)} records (the API's cap) "
                "and ListEmployees lists nobody to split the request by"
            )
        return [record for group in groups for record in self._complete(start, end, group)]

    def employees(self) -> list[int]:
        """Every employee key ``ListEmployees`` knows (read once per listing)."""
        if self._employees is None:
            records, _ = self.resource.list_employees()
            self._employees = list(dict.fromkeys(k for k in map(employee_key, records) if k is not None))
        return self._employees
