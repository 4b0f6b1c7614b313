"""AIMS360 bearer tokens: the password grant or a token generated in the ERP, kept per process.

``POST /authentication/v1/authentication/Token`` takes an OAuth password-grant form
(``grant_type=password``, ``client_id``, ``client_secret``, ``username``, ``password``) and
answers ``access_token``. Its lifetime is undocumented, so a token is reused (also across
sensor ticks, which each open a fresh resource) until a call answers 401, then fetched once
more. A token generated in the ERP (``AIMS360_ACCESS_TOKEN``) is used as is; when it is
rejected and no client credentials are configured, the error says so.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ...http import VendorAuthError, VendorClient, decode_json
from .errors import AccessTokenRejected, Aims360ConfigError

if TYPE_CHECKING:
    from .resource import Aims360Resource

TOKEN_PATH = "/authentication/v1/authentication/Token"
CREDENTIAL_VARIABLES = (
    "AIMS360_CLIENT_ID",
    "AIMS360_CLIENT_SECRET",
    "AIMS360_USERNAME",
    "AIMS360_PASSWORD",
)

# Sensor ticks open a fresh resource each time, so tokens are kept per process (per API host
# and credentials) instead of being fetched on every tick.
_TOKEN_CACHE: dict[str, str] = {}
_TOKEN_LOCK = threading.Lock()


def forget_cached_tokens() -> None:
    with _TOKEN_LOCK:
        _TOKEN_CACHE.clear()


def strip_bearer(token: str | None) -> str | None:
    """The token without a leading ``Bearer `` (as copied from the ERP); ``None`` when blank."""
    if not token or not token.strip():
        return None
    token = token.strip()
    return token[7:].strip() if token[:7].lower() == "bearer " else token


class Aims360Auth:
    """Bearer token from the password grant, or the ERP-generated token; refreshed on 401."""

    def __init__(self, resource: Aims360Resource, client: VendorClient) -> None:
        self._resource = resource
        self._client = client
        self._static = strip_bearer(resource.access_token)
        self._token: str | None = None
        self._static_rejected = False
        self._lock = threading.Lock()

    @property
    def _cache_key(self) -> str:
        # Keyed by every credential, so a changed password never reuses the old token.
        r = self._resource
        material = "\0".join(
            (str(self._client.base_url), r.client_id or "", r.client_secret or "", r.username or "", r.password or "")
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def token(self) -> str:
        with self._lock:
            if self._token is None:
                if self._static and not self._static_rejected:
                    self._token = self._static
                else:
                    with _TOKEN_LOCK:
                        cached = _TOKEN_CACHE.get(self._cache_key)
                    if cached:
                        self._client.redact.add(cached)
                    self._token = cached or self._fetch()
            return self._token

    def refresh(self) -> None:
        with self._lock:
            stale, self._token = self._token, None
            if stale is not None and stale == self._static:
                self._static_rejected = True
                if not self._resource.has_client_credentials:
                    raise AccessTokenRejected(
                        self._client.vendor,
                        "AIMS360 rejected AIMS360_ACCESS_TOKEN (HTTP 401); generate a new access "
                        "token in the ERP or configure " + ", ".join(CREDENTIAL_VARIABLES),
                    )
            with _TOKEN_LOCK:
                if _TOKEN_CACHE.get(self._cache_key) == stale:
                    _TOKEN_CACHE.pop(self._cache_key, None)
            self._token = self._fetch()

    def _fetch(self) -> str:
        r = self._resource
        if not r.has_client_credentials:
            raise Aims360ConfigError(r.missing_credentials_message())
        body = self._client.request(
            "POST",
            TOKEN_PATH,
            data={
                "grant_type": "password",
                "client_id": r.client_id,
                "client_secret": r.client_secret,
                "username": r.username,
                "password": r.password,
            },
            authenticate=False,
            parse=decode_json,
        )
        token = None
        if isinstance(body, dict):
            token = body.get("access_token") or body.get("accessToken") or body.get("token")
        if not isinstance(token, str) or not token:
            raise VendorAuthError(self._client.vendor, "POST", TOKEN_PATH, 200, 1, "token answer holds no access_token")
        self._client.redact.add(token)
        with _TOKEN_LOCK:
            _TOKEN_CACHE[self._cache_key] = token
        return token
