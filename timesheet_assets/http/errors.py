"""Errors raised by the HTTP core. Messages name vendor, method, path, status and attempts;
never headers, query strings or credentials."""

from __future__ import annotations


class VendorError(Exception):
    """Base for every failure talking to a vendor."""

    def __init__(self, vendor: str, message: str) -> None:
        self.vendor = vendor
        super().__init__(message)


class VendorHTTPError(VendorError):
    """The vendor answered with an error (HTTP status or an error envelope)."""

    def __init__(
        self,
        vendor: str,
        method: str,
        path: str,
        status: int | None,
        attempts: int,
        vendor_message: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.attempts = attempts
        self.vendor_message = vendor_message
        status_text = f"HTTP {status}" if status is not None else "no response"
        plural = "attempt" if attempts == 1 else "attempts"
        text = f"{vendor} {method} {path} failed with {status_text} after {attempts} {plural}"
        if vendor_message:
            text += f": {vendor_message}"
        super().__init__(vendor, text)


class VendorOutageError(VendorHTTPError):
    """A status the vendor's retry rules treat as transient (429, 5xx, and whatever the vendor
    adds) kept coming until the attempts ran out, or the vendor asked for a longer wait than
    the client waits inside a step: worth a later step retry. ``retry_after_seconds`` is the
    wait the vendor asked for, when it named one."""

    def __init__(
        self,
        vendor: str,
        method: str,
        path: str,
        status: int | None,
        attempts: int,
        vendor_message: str | None = None,
        *,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(vendor, method, path, status, attempts, vendor_message)
        self.retry_after_seconds = retry_after_seconds


class VendorTransportError(VendorOutageError):
    """Timeouts, refused or reset connections, truncated bodies — after all retries."""


class VendorAuthError(VendorHTTPError):
    """Credentials were rejected (after the one permitted re-authentication)."""


class AuthExpired(Exception):
    """Raised by a vendor's response check when the body says the session/token is no longer
    valid although HTTP said otherwise; the client re-authenticates once, like on a 401."""


class VendorRejected(Exception):
    """Raised by a vendor's response parser when an error envelope arrives under HTTP 2xx
    (Ajera ``Errors``, iBuildApp ``status: ERROR``); the client turns it into a
    ``VendorHTTPError`` naming the endpoint and quoting the message."""


class InsecureURLError(ValueError):
    """A base URL or link that would send credentials over plain HTTP to a non-loopback host."""
