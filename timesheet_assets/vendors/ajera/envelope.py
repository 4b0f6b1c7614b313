"""Reading Ajera's answer envelope ``{ResponseCode, Message, Errors[], Content, UsageKey}``.

* A non-200 ``ResponseCode`` or any ``Errors`` entry is a failure, also under HTTP 200.
  "The session is invalid" (``ResponseCode`` 401, or an ``Errors`` message saying the session
  or token is invalid/expired) is ``AuthExpired``: the shared client re-creates the session once
  and repeats the call. Anything else is ``VendorRejected`` with the vendor's message.
* No records may come as ``[]``, ``null``, a missing list or a ``null``/``""`` ``Content``
  (the documentation shows only a non-empty list). An answer that is none of these and not the
  documented shape fails at once (``VendorRejected``): it is valid JSON, so asking again would
  not change it, and reading it as "no records" would replace a window with nothing. A body
  that is not JSON at all (cut off, an HTML error page) is retried like a broken connection.
* A paged answer carries ``PageSize``, ``PageNumber`` and ``PageCount`` next to ``Content``
  (Deltek's general API page); ``page_count`` reads the latter when it is a whole number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from ...http import AuthExpired, MalformedBody, VendorHTTPError, VendorRejected, decode_json
from .models import Envelope

_SESSION_WORDS = ("session", "token")
_INVALID_WORDS = (
    "invalid",
    "expired",
    "not valid",
    "unknown",
    "timed out",
    "ended",
    "not found",
    "no longer",
    "not recognized",
    "unrecognized",
    "does not exist",
)


def _session_is_invalid(envelope: Envelope) -> bool:
    if envelope.response_code == 401:
        return True
    for text in envelope.error_texts():
        lowered = text.lower()
        if any(w in lowered for w in _SESSION_WORDS) and any(w in lowered for w in _INVALID_WORDS):
            return True
    return False


def _failure_text(method: str, envelope: Envelope) -> str:
    texts = envelope.error_texts()
    detail = "; ".join(texts) if texts else (envelope.message or "no message")
    code = envelope.response_code if envelope.response_code is not None else "missing"
    return f"{method}: ResponseCode {code}: {detail}"


def successful_envelope(method: str, response: httpx.Response, *, session_call: bool) -> Envelope:
    """The envelope of a successful answer; raises for everything else.

    ``session_call`` is true for calls that carry a session token: only those may ask for the
    session to be re-created (CreateAPISession itself failing is a credentials problem)."""
    try:
        body = decode_json(response)
    except MalformedBody as exc:
        raise MalformedBody(f"{method}: {exc}") from None
    if not isinstance(body, Mapping):
        raise MalformedBody(f"{method}: response body is not a JSON object")
    try:
        envelope = Envelope.model_validate(body)
    except ValidationError as exc:
        raise MalformedBody(f"{method}: response is not an Ajera envelope ({exc.error_count()} errors)") from None
    failed = bool(envelope.errors) or (envelope.response_code not in (None, 200))
    if not failed:
        return envelope
    if session_call and _session_is_invalid(envelope):
        raise AuthExpired(_failure_text(method, envelope))
    raise VendorRejected(_failure_text(method, envelope))


def read_envelope(method: str, response: httpx.Response, *, session_call: bool, records: str | None = None) -> Any:
    """The ``Content`` of a successful Ajera answer (or, with ``records``, the list
    ``Content[records]``); raises for everything else."""
    envelope = successful_envelope(method, response, session_call=session_call)
    return envelope.content if records is None else content_records(envelope.content, records, method)


def page_count(envelope: Envelope) -> int | None:
    """``PageCount`` of a paged answer when it is a whole number ≥ 0, else ``None``."""
    value = (envelope.model_extra or {}).get("PageCount")
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            return None
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def content_records(content: Any, name: str, method: str) -> list[Any]:
    """``Content[name]`` of a List/Get answer (the name matched in any case).

    No records may be said as ``[]``, ``null``, a ``Content`` without the list, or a ``null``
    or ``""`` ``Content``. What is refused as malformed: a ``Content`` that is some other
    value, a record list that is not a list, and a ``Content`` without the list that holds
    another non-empty list (records filed under a name we do not know must not read as "no
    records")."""
    if content is None or content == "":
        return []
    if not isinstance(content, Mapping):
        raise VendorRejected(f"{method}: malformed answer: Content is {type(content).__name__}, not an object")
    found = (
        name
        if name in content
        else next((k for k in content if isinstance(k, str) and k.lower() == name.lower()), None)
    )
    if found is None:
        if any(isinstance(v, list) and v for v in content.values()):
            raise VendorRejected(f"{method}: malformed answer: Content has no {name!r} list")
        return []
    records = content[found]
    if records is None:
        return []
    if not isinstance(records, list):
        raise VendorRejected(f"{method}: malformed answer: Content.{name} is not a list")
    return records


def named_failure(method: str, exc: VendorHTTPError) -> VendorHTTPError:
    """``exc`` with the Ajera method in its message (the path is the same for every method).
    A failure of the session call made on the way (``CreateAPISession``) keeps that name."""
    if getattr(exc, "ajera_method", None):
        return exc
    message = exc.vendor_message
    if message is not None and (message == method or message.startswith(f"{method}:")):
        named = exc
    else:
        named = type(exc)(
            exc.vendor, exc.method, exc.path, exc.status, exc.attempts, f"{method}: {message}" if message else method
        )
    named.ajera_method = method  # type: ignore[attr-defined]
    return named
