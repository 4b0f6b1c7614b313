"""Whether one walk of an offset-paged search read the whole list, and what to do when the
list moved under the offset (a record added, deleted or moved while the pages were read).

Offset paging over a list that changes shifts the records after the change: a deletion before
the offset makes the next page skip one record, an insertion makes it repeat one. A walk is
taken as the whole list when every page reported the same ``count`` and the distinct records
read equal it. Otherwise the search is read again (up to ``max_list_reads``); the first clean
read is the answer. When no read is clean, the union of the reads (the latest copy of each
record) is kept if it holds at least as many distinct records as the last ``count`` — nothing
the vendor still counts was lost, at the price of possibly keeping a record deleted during the
reads until the next run, which the reconciliation check reports — and otherwise the run fails
rather than replace days with a partial list.

A ``count`` that never exceeded the rows read so far may count the page rather than the search
(docs/vendors/ibuildapp.md, Paging): such a walk cannot be checked and is taken as read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from ...http import VendorOutageError

if TYPE_CHECKING:
    from .resource import IBuildAppResource, SearchPage

T = TypeVar("T")


@dataclass
class ListRead:
    """What one walk of a paged search reported, page by page."""

    counts: list[int] = field(default_factory=list)
    count_is_total: bool = False
    pages: int = 0
    rows: int = 0

    def observe(self, page: SearchPage) -> None:
        self.pages += 1
        self.rows += len(page.rows)
        if page.reported_count is not None:
            self.counts.append(page.reported_count)
            # A count above the rows read up to the end of this page can only be the search's.
            if page.reported_count > page.offset + len(page.rows):
                self.count_is_total = True

    @property
    def last_count(self) -> int | None:
        return self.counts[-1] if self.counts else None

    @property
    def checkable(self) -> bool:
        """Whether ``count`` is known to be the search's total (single-page answers whose
        count equals their rows are too: either reading gives the same number)."""
        return self.count_is_total or (self.pages == 1 and self.last_count == self.rows)

    def problem(self, distinct: int) -> str | None:
        """Why this walk cannot be taken as the whole list (``distinct``: the distinct records
        it read), or ``None``."""
        if not self.counts or not self.checkable:
            return None
        if len(set(self.counts)) > 1:
            return f"count moved from {self.counts[0]} to {self.counts[-1]} during the read"
        if distinct != self.counts[-1]:
            return f"{distinct} distinct records read, count is {self.counts[-1]}"
        return None


@dataclass
class ListOutcome(Generic[T]):
    """The reads a search took and whether one of them was clean (then ``kept`` is that read
    alone, else every read, oldest first)."""

    kept: list[T]
    reads: int
    clean: bool
    problems: list[str]
    last: ListRead


def read_until_clean(
    resource: IBuildAppResource, endpoint: str, read_once: Callable[[], tuple[T, ListRead, int]]
) -> ListOutcome[T]:
    """Call ``read_once`` (one walk: its result, its ``ListRead``, its distinct records) until
    a walk is clean or ``resource.max_list_reads`` walks were made."""
    kept: list[T] = []
    problems: list[str] = []
    read = ListRead()
    for attempt in range(1, resource.max_list_reads + 1):
        value, read, distinct = read_once()
        problem = read.problem(distinct)
        if problem is None:
            return ListOutcome([value], attempt, True, problems, read)
        problems.append(problem)
        kept.append(value)
        more = attempt < resource.max_list_reads
        resource.client.log.warning(
            "%s %s changed while it was read (%s)%s",
            resource.vendor_label,
            endpoint,
            problem,
            "; reading it again" if more else "; no clean read left",
        )
    return ListOutcome(kept, len(kept), False, problems, read)


def require_complete_union(
    resource: IBuildAppResource, endpoint: str, outcome: ListOutcome, union_distinct: int
) -> None:
    """Fail (an outage: a later step retry may find the list quiet) when the union of unclean
    reads holds fewer distinct records than the vendor's last ``count``."""
    last = outcome.last
    if last.last_count is None or not last.checkable or union_distinct >= last.last_count:
        return
    raise VendorOutageError(
        resource.vendor_label,
        "POST",
        f"{resource.api_prefix}/{endpoint}",
        200,
        outcome.reads,
        f"the list kept changing while it was read and is incomplete: count is {last.last_count}, "
        f"{union_distinct} distinct records in {outcome.reads} reads ({'; '.join(outcome.problems)})",
    )
