"""A gate at a sandbox's door, for tests about concurrent clients: it holds the requests it
is asked to hold — before their arrival is stamped, so before any rate limit counts them —
until the ones held so far satisfy a condition, then lets them all in at once and every
later request straight through. Whatever the machine's load, the held requests then reach
the vendor together: "two runs at once send more than the limit in one window" becomes a
fact the test arranges instead of a race it hopes to win."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from starlette.requests import Request


class ArrivalGate:
    def __init__(
        self,
        holds: Callable[[Request], bool],
        opens_when: Callable[[Sequence[Request]], bool],
        timeout_seconds: float = 120.0,
    ) -> None:
        self.holds = holds
        self.opens_when = opens_when
        self.timeout_seconds = timeout_seconds
        self.held: list[Request] = []
        # How the gate opened: "condition", or "timeout" (the test then fails, saying so,
        # rather than hanging its clients).
        self.opened: str | None = None
        self._event: asyncio.Event | None = None  # made on the server's loop, at first use

    async def enter(self, request: Request) -> None:
        if self.opened is not None or not self.holds(request):
            return
        if self._event is None:
            self._event = asyncio.Event()
        self.held.append(request)
        if self.opens_when(self.held):
            self.opened = "condition"
            self._event.set()
            return
        try:
            await asyncio.wait_for(self._event.wait(), self.timeout_seconds)
        except TimeoutError:
            if self.opened is None:
                self.opened = "timeout"
                self._event.set()
