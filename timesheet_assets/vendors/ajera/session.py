"""The Ajera session: the auth hook of the shared client, and one method call.

* ``CreateAPISession`` carries ``Username``/``Password``/``APIVersion``/``UseSessionCookie`` at
  the top level of the body, as Deltek's general API page and Ajera's own clients send them
  (the password is not repeated in ``MethodArguments``). The session is reused until
  ``SessionExpiration`` (less a margin); an expiration already past when the session is created
  says nothing usable (the server's clock or zone differs) and is ignored.
* The session token travels in the body, not in a header. The shared client asks the auth hook
  to ``sign_body`` before every attempt; this hook returns the body with the current
  ``SessionToken`` written in, so the repeat after a re-created session carries the new token.
* Every request says ``Accept: application/json``, as the document's examples do.
* Every failure message names the Ajera method after the path (all methods share one URL):
  ``Ajera POST /AjeraAPI.ashx failed with HTTP 503 after 3 attempts: GetTimesheets: ...``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import ValidationError

from ...http import VendorClient, VendorHTTPError, VendorRejected
from .envelope import content_records, named_failure, page_count, read_envelope, successful_envelope
from .models import SessionContent, parse_timestamp

if TYPE_CHECKING:
    from .resource import AjeraResource

ACCEPT_JSON = {"Accept": "application/json"}
T = TypeVar("T")


def session_expiration(value: Any) -> datetime | None:
    """``SessionExpiration`` as an aware UTC time: an ISO timestamp (read as UTC without an
    offset) or epoch seconds (milliseconds when that large); ``None`` when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_timestamp(value) if isinstance(value, (str, datetime)) else None


class AjeraSession:
    """The ``AuthHook`` of the shared client: owns the Ajera session token."""

    def __init__(self, resource: AjeraResource, client: VendorClient) -> None:
        self._resource = resource
        self._client = client
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at: datetime | None = None
        # The token this thread last signed a call with. ``refresh`` takes no arguments, so this
        # is how it tells "my call was refused with the current session" (re-create it) from
        # "another thread already replaced the session I was refused with" (reuse the new one).
        self._signed = threading.local()

    # -- AuthHook ------------------------------------------------------------------------------
    def headers(self) -> Mapping[str, str]:
        return {}  # the session travels in the body (``sign_body``), never in a header

    def sign_body(self, json_body: Any) -> Any:
        """The body of one attempt with the current ``SessionToken`` written in (a copy; the
        caller's body is left as it was, so every attempt is signed afresh)."""
        token = self.token()
        self._signed.token = token
        if not isinstance(json_body, Mapping):
            return json_body
        return {**json_body, "SessionToken": token}

    def refresh(self) -> None:
        used = getattr(self._signed, "token", None)
        with self._lock:
            # Another thread may already have replaced the token this call was rejected with.
            if used is None or used == self._token:
                self._token = None
                self._create_locked()

    # -- session ------------------------------------------------------------------------------
    def token(self) -> str:
        with self._lock:
            if self._token is None or (self._renew_at is not None and self._client.clock.now() >= self._renew_at):
                self._create_locked()
            assert self._token is not None
            return self._token

    @property
    def active_token(self) -> str | None:
        return self._token

    def _create_locked(self) -> None:
        res = self._resource
        credentials = {
            "Username": res.username,
            "Password": res.password,
            "APIVersion": res.api_version,
            "UseSessionCookie": False,
        }

        def parse(response: httpx.Response) -> SessionContent:
            content = read_envelope("CreateAPISession", response, session_call=False)
            try:
                return SessionContent.model_validate(content)
            except ValidationError:
                raise VendorRejected("CreateAPISession: malformed answer: Content carries no SessionToken") from None

        try:
            session = self._client.request(
                "POST",
                res.endpoint,
                # At the top level of the body, as Deltek's general API page shows it; the
                # password is sent once.
                json_body={"Method": "CreateAPISession", **credentials},
                headers=ACCEPT_JSON,
                authenticate=False,
                parse=parse,
            )
        except VendorHTTPError as exc:
            raise named_failure("CreateAPISession", exc) from None
        self._client.redact.add(session.session_token)
        self._token = session.session_token
        self._renew_at = None
        expires = session_expiration(session.session_expiration)
        now = self._client.clock.now()
        if expires is not None and expires > now:
            # A session shorter than twice the margin is renewed half-way through its life
            # instead of (uselessly) before every call.
            margin = min(timedelta(seconds=res.session_renew_margin_seconds), (expires - now) / 2)
            self._renew_at = expires - margin
        elif expires is not None:
            self._client.log.warning(
                "Ajera: SessionExpiration is already past when the session was created; "
                "the session is kept until the API says it is invalid"
            )

    def end(self) -> None:
        with self._lock:
            token, self._token = self._token, None
        if token is None:
            return
        try:
            self._client.request(
                "POST",
                self._resource.endpoint,
                json_body={"Method": "EndAPISession", "SessionToken": token},
                headers=ACCEPT_JSON,
                authenticate=False,
                parse=lambda r: read_envelope("EndAPISession", r, session_call=False),
            )
        except VendorHTTPError as exc:
            raise named_failure("EndAPISession", exc) from None

    # -- one call ----------------------------------------------------------------------------
    def call(self, method: str, arguments: Mapping[str, Any] | None, records: str | None = None) -> Any:
        """One method call; ``sign_body`` adds the ``SessionToken`` to every attempt. Returns
        ``Content``, or with ``records`` the list ``Content[records]``."""
        body: dict[str, Any] = {"Method": method, "MethodArguments": dict(arguments or {})}
        return self._post(method, body, lambda r: read_envelope(method, r, session_call=True, records=records))

    def call_page(
        self, method: str, arguments: Mapping[str, Any] | None, records: str, number: int, size: int
    ) -> tuple[list[Any], int | None]:
        """One page of a list method: ``PageResults``, ``PageNumber`` and ``PageSize`` travel
        beside ``MethodArguments`` (Deltek's general API page), not inside it. Returns the
        page's records and the answer's ``PageCount`` (``None`` when it gives none)."""
        body: dict[str, Any] = {
            "Method": method,
            "PageResults": True,
            "PageNumber": number,
            "PageSize": size,
            "MethodArguments": dict(arguments or {}),
        }

        def parse(response: httpx.Response) -> tuple[list[Any], int | None]:
            envelope = successful_envelope(method, response, session_call=True)
            return content_records(envelope.content, records, method), page_count(envelope)

        return self._post(method, body, parse)

    def _post(self, method: str, body: dict[str, Any], parse: Callable[[httpx.Response], T]) -> T:
        try:
            return self._client.request(
                "POST", self._resource.endpoint, json_body=body, headers=ACCEPT_JSON, parse=parse
            )
        except VendorHTTPError as exc:
            raise named_failure(method, exc) from None
