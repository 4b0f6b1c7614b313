"""Where the warehouse lives: ``TIMESHEET_WAREHOUSE`` is a DuckDB file path or a
``postgresql://`` URL.

A URL may carry a password (``postgresql://user:secret@host/db``); it may also come from
``TIMESHEET_WAREHOUSE_PASSWORD``. The password is kept apart from everything that is shown:
``display`` (what logs, metadata, the IO manager's table slices and every error message use)
never contains it, for a good URL or a malformed one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from ..settings import SettingError

CLOUD_SCHEMES = ("snowflake", "bigquery")
POSTGRES_SCHEMES = ("postgresql", "postgres")
MASK = "***"
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True)
class WarehouseTarget:
    """A parsed warehouse location. ``password`` is excluded from ``repr`` so a target printed
    by accident (a traceback's locals, a debugger) shows no secret."""

    kind: str  # "duckdb" or "postgresql"
    display: str
    path: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    dbname: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)

    def connect_kwargs(self) -> dict[str, object]:
        """Keyword arguments for the PostgreSQL driver: never a DSN string, which a driver
        may quote back in a parse error."""
        kwargs: dict[str, object] = {"host": self.host, "dbname": self.dbname, **self.options}
        if self.port:
            kwargs["port"] = self.port
        if self.user:
            kwargs["user"] = self.user
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def mask(self, text: str) -> str:
        """``text`` with this target's password replaced (driver messages, defence in depth)."""
        return mask_secrets(text, [self.password] if self.password else [])


def redact_url(text: str) -> str:
    """``scheme://user:***@host/...``: the password part of a URL's user info masked, however
    malformed the rest is; a ``password=`` query parameter masked too."""
    match = _URL.match(text.strip())
    if not match:
        return text
    rest = match.group("rest")
    authority_end = len(rest)
    for stop in "/?#":
        position = rest.find(stop, rest.rfind("@") + 1 if "@" in rest else 0)
        if position != -1:
            authority_end = min(authority_end, position)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        authority = f"{userinfo}@{host}"
    tail = re.sub(r"(?i)(password=)[^&#]*", r"\g<1>" + MASK, tail)
    return f"{match.group('scheme')}://{authority}{tail}"


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def parse_target(raw: str, password: str | None = None) -> WarehouseTarget:
    """Parse a ``TIMESHEET_WAREHOUSE`` value; ``password`` (``TIMESHEET_WAREHOUSE_PASSWORD``)
    is used when the URL carries none. Errors quote the value with its password masked."""
    raw = raw.strip()
    if not raw:
        raise SettingError("TIMESHEET_WAREHOUSE is empty: give a DuckDB file path or a postgresql:// URL")
    match = _URL.match(raw)
    if not match:
        return WarehouseTarget(kind="duckdb", display=raw, path=raw)
    shown = redact_url(raw)
    scheme = match.group("scheme").lower()
    if scheme not in POSTGRES_SCHEMES:
        # Only the scheme is quoted: other URL forms carry secrets where we cannot know them.
        shown = f"{scheme}://…"
    if scheme in CLOUD_SCHEMES:
        raise SettingError(
            f"TIMESHEET_WAREHOUSE {shown}: {scheme} is not offered as a warehouse, because Dagster's "
            f"{scheme.capitalize()} IO manager cannot replace a window, upsert or move a key in one "
            "transaction (see docs/operations.md, 'What each backend guarantees'); use a DuckDB "
            "file path or a postgresql:// URL"
        )
    if scheme not in POSTGRES_SCHEMES:
        raise SettingError(
            f"TIMESHEET_WAREHOUSE must be a DuckDB file path or a postgresql:// URL, got {shown} "
            f"(scheme {scheme!r} is not supported; see docs/operations.md, 'Warehouse')"
        )
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise SettingError(f"TIMESHEET_WAREHOUSE is not a valid PostgreSQL URL (bad port or host): {shown}") from None
    if not parts.hostname:
        raise SettingError(f"TIMESHEET_WAREHOUSE names no PostgreSQL host: {shown}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise SettingError(
            f"TIMESHEET_WAREHOUSE must name one database (postgresql://user@host:5432/warehouse), got {shown}"
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    url_password = options.pop("password", None)
    if parts.password is not None:
        url_password = unquote(parts.password)
    host = parts.hostname
    display = f"postgresql://{unquote(parts.username) + '@' if parts.username else ''}{host}"
    display += f":{port}" if port else ""
    display += f"/{dbname}"
    return WarehouseTarget(
        kind="postgresql",
        display=display,
        host=host,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        dbname=dbname,
        options=options,
        password=url_password or password or None,
    )
