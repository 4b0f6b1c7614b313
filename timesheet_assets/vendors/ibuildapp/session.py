"""The iBuildApp session: a bearer token from ``IBUILDAPP_TOKEN`` or a lazy e-mail/password
login, renewed once per refused call."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...http import VendorClient, VendorError
from ...settings import SettingError
from .envelope import parse_login

if TYPE_CHECKING:
    from .resource import IBuildAppResource

ENV_BASE_URL = "IBUILDAPP_BASE_URL"
ENV_APP_CODE = "IBUILDAPP_APP_CODE"
ENV_TOKEN = "IBUILDAPP_TOKEN"
ENV_EMAIL = "IBUILDAPP_EMAIL"
ENV_PASSWORD = "IBUILDAPP_PASSWORD"
ENV_TIMEZONE = "IBUILDAPP_TIMEZONE"


class IBuildAppTokenRejected(VendorError, SettingError):
    """The configured token was refused and there are no credentials to get a new one: a
    configuration problem (it names the variables to set), so it fails the run at once."""


@dataclass(repr=False)
class Session:
    """The AuthHook: a bearer token, from configuration or a lazy login; ``refresh`` logs in
    again once per rejected call (the shared client guarantees "once")."""

    resource: IBuildAppResource
    client: VendorClient
    token: str | None = None
    logins: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.token = self.resource.token or None

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self.token is None:
                self.token = self._login()
            return {"Authorization": f"Bearer {self.token}"}

    def refresh(self) -> None:
        if not self.resource.can_log_in:
            raise IBuildAppTokenRejected(
                self.resource.vendor_label,
                f"{self.resource.vendor_label} rejected the configured {ENV_TOKEN} (expired or "
                f"revoked) and no {ENV_EMAIL}/{ENV_PASSWORD} are configured to log in again; "
                f"set a fresh {ENV_TOKEN} or both {ENV_EMAIL} and {ENV_PASSWORD}",
            )
        with self._lock:
            self.token = None
            self.token = self._login()

    def _login(self) -> str:
        res = self.resource
        token = self.client.request(
            "POST",
            res.login_url_path,
            json_body={"email": res.email, "password": res.password},
            authenticate=False,
            parse=parse_login,
        )
        # The session token is as secret as the password from here on.
        self.client.redact.add(token)
        self.logins += 1
        return token
