"""Transport safety: which URLs may carry credentials, and scrubbing secrets from text."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import httpx

from .errors import InsecureURLError

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_safe_url(url: str, *, setting: str = "base URL") -> httpx.URL:
    """Return ``url`` parsed, refusing anything but https — except plain http to loopback,
    which is where the local sandboxes live."""
    parsed = httpx.URL(url)
    if parsed.scheme == "https" and parsed.host:
        return parsed
    if parsed.scheme == "http" and parsed.host and is_loopback_host(parsed.host):
        return parsed
    shown = f"{parsed.scheme}://{parsed.host}" if parsed.host else repr(url[:40])
    raise InsecureURLError(f"{setting} {shown} refused: only https:// is allowed (http:// only for loopback hosts)")


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


class SecretRedactor:
    """Replaces known secret values in any text that may reach logs, metadata or exceptions."""

    MASK = "***"

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        # Very short values would mask ordinary words; vendors' secrets are never that short.
        self._secrets.update(s for s in secrets if s and len(s) >= 4)
        if self._secrets:
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, text: str) -> str:
        if not self._pattern or not text:
            return text
        return self._pattern.sub(self.MASK, text)
