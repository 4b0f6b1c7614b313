"""What users do to their time data after the first load, as every sandbox offers it.

Each vendor sandbox implements ``SourceMutations`` on its own records, the way the vendor's
users and API would change them (an edit stamps the vendor's updated-at, a deletion removes
the record or flags it as the vendor does). Tests and the demo call it directly, or over HTTP
through ``POST /_sandbox/mutate`` with ``{"op": ..., ...}``; ``expected_lines`` says what
``conformed/timesheets`` must then hold for the vendor, entry by entry.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol, runtime_checkable

import pandas as pd

EXPECTED_COLUMNS = ("entry_id", "work_date", "total_hours", "status")
OPERATIONS = ("edit_hours", "move", "approve", "delete", "add_late")


@runtime_checkable
class SourceMutations(Protocol):
    """Keys are the conformed ``entry_id`` of a line."""

    def entry_keys(self, first: date, last: date) -> list[str]:
        """Lines the vendor serves for work dates ``first``..``last``, in a stable order."""
        ...

    def edit_hours(self, key: str, delta: float) -> None:
        """Add ``delta`` hours to a line (the vendor's updated-at moves)."""
        ...

    def move(self, key: str, day: date) -> str:
        """Change a line's work date; returns its key afterwards (unchanged where the vendor
        keeps its id, new where the key names the day)."""
        ...

    def approve(self, key: str) -> None:
        """The vendor's approval (attest, approve, approve_date)."""
        ...

    def delete(self, key: str) -> None:
        """Remove a line as the vendor's users can."""
        ...

    def add_late(self, day: date) -> str:
        """A line for ``day`` entered now; returns its key."""
        ...

    def expected_lines(self, first: date, last: date) -> pd.DataFrame:
        """``EXPECTED_COLUMNS`` for every line ``conformed/timesheets`` must hold for this
        vendor on work dates ``first``..``last``."""
        ...


def apply(mutations: SourceMutations, request: dict[str, Any]) -> dict[str, Any]:
    """One ``POST /_sandbox/mutate`` body: ``{"op": "move", "key": "17", "day": "2026-03-02"}``."""
    op = request.get("op")
    if op not in OPERATIONS:
        raise ValueError(f"op must be one of {', '.join(OPERATIONS)}, got {op!r}")
    if op == "add_late":
        return {"key": mutations.add_late(date.fromisoformat(str(request["day"])))}
    key = str(request["key"])
    if op == "edit_hours":
        mutations.edit_hours(key, float(request.get("delta", 0.5)))
    elif op == "move":
        return {"key": mutations.move(key, date.fromisoformat(str(request["day"])))}
    elif op == "approve":
        mutations.approve(key)
    else:
        mutations.delete(key)
    return {"key": key}
