"""Bearer tokens / sessions for sandboxes: issue, validate, expire by time or by use."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from .faults import FaultKnobs


@dataclass
class IssuedToken:
    token: str
    principal: str
    expires_at: float | None
    uses: int = 0


class TokenStore:
    def __init__(self, knobs: FaultKnobs, clock=time.time) -> None:
        self._knobs = knobs
        self._clock = clock
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self, principal: str, lifetime_seconds: float | None = None) -> IssuedToken:
        token = secrets.token_urlsafe(24)
        expires = self._clock() + lifetime_seconds if lifetime_seconds else None
        issued = IssuedToken(token, principal, expires)
        with self._lock:
            self._tokens[token] = issued
            self.issued += 1
        return issued

    def validate(self, token: str | None) -> IssuedToken | None:
        """The live token, counting this use; ``None`` when unknown, expired or used up."""
        if not token:
            return None
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None:
                return None
            if issued.expires_at is not None and self._clock() >= issued.expires_at:
                return None
            limit = self._knobs.token_expiry_after_calls
            if limit is not None and issued.uses >= limit:
                return None
            issued.uses += 1
            return issued

    def revoke(self, token: str) -> bool:
        with self._lock:
            return self._tokens.pop(token, None) is not None

    def expire_all(self) -> None:
        with self._lock:
            for issued in self._tokens.values():
                issued.expires_at = 0.0


def bearer_token(headers) -> str | None:
    value = headers.get("authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None
