"""Is the configured login an administrator? ``ts/search`` documents ``user_id`` as "Optional for
admin": only an administrator is answered with every user's entries. A plain user's search
returns that user's entries alone, and loading them would replace every day of the warehouse
with one person's hours, so the load stops first.

The document's way to tell: ``POST user`` without ``user_id`` answers the current user, whose
``roles`` is "role in app. Default - ROLE_USER". The document never names the administrator's
role; it speaks of "admin" ("Optional for admin", "Visible only for admin",
``ADMIN_ACCESS_ONLY``) and its roles follow the ``ROLE_*`` convention, so the default accepts
any role whose name contains ``ADMIN`` (``ROLE_ADMIN``, ``ROLE_SUPER_ADMIN``). An account whose
administrator role has another name lists it in the resource's ``admin_roles``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ...http import VendorError
from ...settings import SettingError
from .models import id_text
from .resource import IBuildAppResource
from .session import ENV_EMAIL, ENV_PASSWORD, ENV_TOKEN


class IBuildAppNotAdmin(VendorError, SettingError):
    """The login cannot see every user's entries: a configuration problem, so the run fails at
    once (no step retry) and the warehouse keeps what it had."""


@dataclass(frozen=True)
class Account:
    user_id: str | None
    roles: tuple[str, ...]
    checked: bool


def _roles(user: Mapping[str, Any]) -> tuple[str, ...] | None:
    roles = user.get("roles")
    if isinstance(roles, str):
        roles = [roles]
    if isinstance(roles, Mapping):  # a PHP list serialised as an object
        roles = list(roles.values())
    if not isinstance(roles, list):
        return None
    return tuple(str(role).strip() for role in roles if isinstance(role, (str, int)) and str(role).strip())


def is_admin(roles: tuple[str, ...], patterns: list[str]) -> bool:
    return any(fnmatchcase(role.upper(), pattern.upper()) for role in roles for pattern in patterns)


def require_admin(resource: IBuildAppResource) -> Account:
    """The logged-in account, after checking it is an administrator (one ``POST user``);
    raises ``IBuildAppNotAdmin`` naming the roles it has."""
    if not resource.admin_roles:
        return Account(None, (), checked=False)
    user = resource.current_user()
    try:
        user_id = id_text(user.get("id"))
    except ValueError:
        user_id = None
    roles = _roles(user)
    who = f"the {resource.vendor_label} login (user {user_id or 'unknown'})"
    fix = (
        f"Log in as an administrator ({ENV_EMAIL}/{ENV_PASSWORD} or {ENV_TOKEN}), or list the "
        f"account's administrator role in the resource's admin_roles (now {resource.admin_roles})."
    )
    if roles is None:
        raise IBuildAppNotAdmin(
            resource.vendor_label,
            f"{who} answered POST user without 'roles', so it cannot be shown to be an administrator; "
            f"ts/search returns every user's entries only to administrators. {fix}",
        )
    if not is_admin(roles, resource.admin_roles):
        raise IBuildAppNotAdmin(
            resource.vendor_label,
            f"{who} is not an administrator (roles: {', '.join(roles) or 'none'}): ts/search returns "
            f"every user's time entries only to administrators ('user_id: Optional for admin'), so this "
            f"login would replace every day with its own entries. Nothing was loaded. {fix}",
        )
    return Account(user_id, roles, checked=True)
