"""Which vendor failures are worth retrying the whole step for."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import dagster as dg

from ..http import InsecureURLError, VendorHTTPError, VendorOutageError
from ..settings import SettingError


@contextmanager
def permanent_errors_fail_fast() -> Iterator[None]:
    """Let outages reach the step's retry policy — what the client retried until its attempts
    ran out (timeouts, resets, and the statuses the vendor's retry rules call transient, e.g.
    iBuildApp's 500) — but fail at once, without step retries, on errors no retry can fix:
    rejected credentials, other 4xx/5xx answers, error envelopes, refused URLs,
    misconfiguration."""
    try:
        yield
    except VendorOutageError:
        raise
    except VendorHTTPError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except (InsecureURLError, SettingError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
