"""Blikk's error bodies, read into the message a failed request carries."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from ...http import decode_json, default_error_message
from .models import ErrorBody


def blikk_error_message(response: httpx.Response) -> str | None:
    """The vendor's message plus the details its error bodies carry: ``modelState`` (400),
    ``permissionsRequired`` / ``ipAddressAllowed`` (403), ``requestId`` (500),
    ``waitInSeconds`` (429)."""
    try:
        payload = decode_json(response) if response.content else None
    except Exception:  # noqa: BLE001 - not JSON: fall back to the text
        payload = None
    if not isinstance(payload, dict):
        if response.status_code == 404 and not response.content.strip():
            return "no such resource URL"
        return default_error_message(response)
    try:
        body = ErrorBody.model_validate(payload)
    except ValidationError:
        return default_error_message(response)
    parts: list[str] = []
    if body.message:
        parts.append(body.message.rstrip())
    if body.modelState:
        problems = []
        for name, messages in body.modelState.items():
            text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            problems.append(f"{name}: {text}" if name else text)
        parts.append("; ".join(problems))
    if body.permissionsRequired:
        parts.append("permissions required: " + ", ".join(body.permissionsRequired))
    if body.ipAddressAllowed is False and not (body.message and "IP" in body.message):
        parts.append("this IP address is not on the API application's allow list")
    if body.requestId:
        parts.append(f"request id {body.requestId}")
    if body.waitInSeconds is not None and not parts:
        parts.append(f"rate limited, wait {body.waitInSeconds:g} s")
    return " — ".join(parts) or default_error_message(response)
