"""Errors of the AIMS360 client, each saying whether a retry could help: the ``SettingError``
ones need a changed setting, ``VendorError`` ones are failures of the API or its jobs."""

from __future__ import annotations

from ...http.errors import VendorError
from ...settings import SettingError


class Aims360ConfigError(SettingError):
    """AIMS360 settings are missing or malformed; the message names the variables."""


class PublishlinkGone(VendorError):
    """The publishlink answered 404/410: the output expired or the job was purged."""


class PublishlinkHostRefused(VendorError, SettingError):
    """A token-scoped publishlink on a host that is not trusted with the bearer token (a
    setting to change, ``AIMS360_PUBLISHLINK_HOSTS``: no retry can fix it)."""


class ExportJobFailed(VendorError):
    """A job ended Failed, vanished, or did not complete in time (manual materialization)."""


class AccessTokenRejected(VendorError, SettingError):
    """The ERP-generated token was refused and there are no client credentials to get another
    (a setting to change: no retry can fix it)."""
