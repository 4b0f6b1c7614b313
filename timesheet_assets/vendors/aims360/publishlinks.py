"""Downloading a job's output from its publishlink, with the bearer token only where it belongs.

* The token is sent only when the scope is Private or PeopleInOrganization (any case or
  spacing) **and** the link is on a trusted host: the configured API host, a host listed in
  ``AIMS360_PUBLISHLINK_HOSTS``, and — when the API host is one of AIMS360's regional API
  hosts — the other regional hosts (the Aqua page's example publishlink is on
  ``api.aims360.rest`` whatever host the tenant uses). A Public link is fetched without any
  credentials wherever it lives. A token-scoped link on any other host is refused before a
  request is made: fetching it without the token could only end in "Access Denied", and
  sending the token would hand it to a host nobody configured.
* A publishlink answering 404 or 410 is treated as expired/purged (``PublishlinkGone``).
* The body is read as the job's ``outputFormat`` (``exports.parse_export``).
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from ...http import VendorClient, VendorHTTPError, VendorOutageError
from .errors import PublishlinkGone, PublishlinkHostRefused
from .exports import ExportFile, parse_export
from .models import TOKEN_SCOPES, normalise_scope

# AIMS360's API hosts (the docs' examples and the hosts tenants are given): a publishlink on
# one of them, for a tenant configured with another, is still AIMS360's.
REGIONAL_API_HOSTS = ("api.aims360.rest", "apiwest.aims360.rest", "apieast.aims360.rest")
GONE_STATUSES = frozenset({404, 410})
MASKED_PATH = "/reports/v1.0/publishlink/***"


def trusted_publishlink_hosts(base_url: str, configured: Iterable[str]) -> tuple[str, ...]:
    """Hosts besides the API host that may receive the bearer token on a publishlink."""
    hosts = [h.strip().lower() for h in configured if h and h.strip()]
    try:
        api = httpx.URL(base_url.strip())
    except (httpx.InvalidURL, TypeError):
        return tuple(dict.fromkeys(hosts))
    api_host = (api.host or "").lower()
    if api.scheme == "https" and api_host in REGIONAL_API_HOSTS:
        hosts.extend(h for h in REGIONAL_API_HOSTS if h != api_host)
    return tuple(dict.fromkeys(hosts))


def download(client: VendorClient, link: str, scope: str | None, output_format: str, *, job_id: str = "") -> ExportFile:
    """Fetch a publishlink and parse it as ``output_format``."""
    url = client.url_for(link)  # refuses plain http outside loopback
    wants_token = normalise_scope(scope) in TOKEN_SCOPES
    if wants_token and not client.may_send_credentials_to(url):
        raise PublishlinkHostRefused(
            client.vendor,
            f"AIMS360 publishlink of job {job_id or '?'} is on host {url.host}, which is not "
            f"the configured API host {client.base_url.host}; its scope ({scope}) needs "
            "the bearer token, which is only sent to the API host. Add the host to "
            "AIMS360_PUBLISHLINK_HOSTS if it is a genuine AIMS360 host.",
        )

    def parse(response: httpx.Response) -> ExportFile:
        return parse_export(response.content, output_format, response.headers.get("content-type"))

    try:
        return client.request("GET", link, authenticate=wants_token, parse=parse)
    except VendorHTTPError as exc:
        # The link's path is a capability for Public links: keep it out of messages.
        masked = type(exc)(exc.vendor, exc.method, MASKED_PATH, exc.status, exc.attempts, exc.vendor_message)
        if isinstance(exc, VendorOutageError) and isinstance(masked, VendorOutageError):
            masked.retry_after_seconds = exc.retry_after_seconds
        if exc.status in GONE_STATUSES:
            raise PublishlinkGone(
                client.vendor,
                f"AIMS360 publishlink of job {job_id or '?'} is gone (HTTP {exc.status}"
                f"{': ' + exc.vendor_message if exc.vendor_message else ''}); the output "
                "expired or the job was purged",
            ) from None
        raise masked from None
