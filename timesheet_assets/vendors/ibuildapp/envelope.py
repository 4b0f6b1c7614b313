"""The iBuildApp answer envelope: ``{"status": "SUCCESS" | "ERROR" | "NOT-MODIFIED", "message",
"error_code", "data", ...}``, and the login answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ...http import MalformedBody, VendorRejected, decode_json

# "Auth token not specified or incorrect." (documented with HTTP 401, may come under 200).
AUTH_ERROR_CODE = "9"


def envelope_message(body: Any) -> str | None:
    """``"<message> (error_code N)"`` for an iBuildApp ``status: ERROR`` body, else ``None``."""
    if not isinstance(body, Mapping) or str(body.get("status", "")).upper() != "ERROR":
        return None
    message = body.get("message")
    text = message.strip() if isinstance(message, str) and message.strip() else "error without a message"
    code = body.get("error_code")
    return f"{text} (error_code {code})" if code not in (None, "") else text


def is_auth_error(body: Mapping[str, Any]) -> bool:
    return str(body.get("error_code", "")).strip() == AUTH_ERROR_CODE


def is_not_modified(body: Mapping[str, Any]) -> bool:
    """``status: NOT-MODIFIED`` (user/dashboard, user/history): nothing changed since
    ``last_update``."""
    return str(body.get("status", "")).strip().upper() == "NOT-MODIFIED"


def parse_login(response: httpx.Response) -> str:
    body = decode_json(response)
    if not isinstance(body, dict):
        raise MalformedBody("expected a JSON object")
    message = envelope_message(body)
    if message is not None:
        # Never AuthExpired here: re-authenticating a failed login would only log in again.
        raise VendorRejected(f"login failed: {message}")
    token = body.get("token")
    if not isinstance(token, str) or not token.strip():
        raise VendorRejected("login answered without a token")
    return token.strip()
