"""AIMS360 settings read from the environment when the definitions load.

``AIMS360_VIEWS`` (views.py), the sensor's timings and bounds (``Aims360Settings``), and the
resource's plain settings (``resource_options``). See
docs/vendors/aims360.md for every variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Aims360ConfigError
from .resource import Aims360Resource
from .views import ViewSpec, parse_views


def _number(environ: Mapping[str, str], name: str, default: float, *, minimum: float, integer: bool = False):
    raw = environ.get(name, "").strip()
    if not raw:
        return int(default) if integer else float(default)
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise Aims360ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise Aims360ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Aims360Settings:
    views: tuple[ViewSpec, ...]
    sensor_interval_seconds: int = 60
    stall_timeout_seconds: float = 1800.0
    refresh_interval_seconds: float = 86400.0
    max_attempts: int = 3
    failure_cooldown_seconds: float = 3600.0
    poll_timeout_seconds: float = 1800.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Aims360Settings:
        env = os.environ if environ is None else environ
        return cls(
            views=parse_views(env.get("AIMS360_VIEWS")),
            sensor_interval_seconds=_number(env, "AIMS360_SENSOR_INTERVAL_SECONDS", 60, minimum=1, integer=True),
            stall_timeout_seconds=_number(env, "AIMS360_STALL_TIMEOUT_SECONDS", 1800, minimum=1),
            refresh_interval_seconds=_number(env, "AIMS360_REFRESH_INTERVAL_SECONDS", 86400, minimum=1),
            max_attempts=_number(env, "AIMS360_MAX_ATTEMPTS", 3, minimum=1, integer=True),
            failure_cooldown_seconds=_number(env, "AIMS360_FAILURE_COOLDOWN_SECONDS", 3600, minimum=0),
            poll_timeout_seconds=_number(env, "AIMS360_POLL_TIMEOUT_SECONDS", 1800, minimum=1),
        )


_CHOICES = {
    "output_format": ("AIMS360_OUTPUT_FORMAT", {"json": "JSON", "csv": "CSV", "excel": "Excel"}),
    "publishlink_scope": (
        "AIMS360_PUBLISHLINK_SCOPE",
        {"private": "Private", "peopleinorganization": "PeopleInOrganization", "public": "Public"},
    ),
    "status_method": ("AIMS360_STATUS_METHOD", {"get": "GET", "post": "POST"}),
}


def resource_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resource's plain settings (export format, publishlink scope and hosts, status
    method), checked when the definitions load: a value outside the documented ones fails there,
    naming the variable."""
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    for field_name, (variable, allowed) in _CHOICES.items():
        raw = env.get(variable, "").strip()
        if raw:
            key = "".join(ch for ch in raw.lower() if ch.isalnum())
            if key not in allowed:
                raise Aims360ConfigError(f"{variable} must be one of {', '.join(allowed.values())}, got {raw!r}")
            options[field_name] = allowed[key]
    hosts = [h.strip() for h in env.get("AIMS360_PUBLISHLINK_HOSTS", "").split(",") if h.strip()]
    if hosts:
        options["publishlink_hosts"] = hosts
    return options


def resource_from_env(environ: Mapping[str, str] | None = None) -> Aims360Resource:
    """The resource as the code location configures it (``definitions.aims360_resource``)."""
    from .definitions import aims360_resource

    return aims360_resource(environ)
