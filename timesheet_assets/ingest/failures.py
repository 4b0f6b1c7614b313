"""Which vendor failures are worth retrying the whole step for."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import dagster as dg

from ..http import InsecureURLError, VendorHTTPError, VendorTransportError
from ..http.retry import RETRYABLE_STATUSES
from ..settings import SettingError


@contextmanager
def permanent_errors_fail_fast() -> Iterator[None]:
    """Let outages (timeouts, resets, 429/5xx after all attempts) reach the step's retry
    policy, but fail at once — without step retries — on errors no retry can fix: rejected
    credentials, 4xx answers, error envelopes, refused URLs, misconfiguration."""
    try:
        yield
    except VendorTransportError:
        raise
    except VendorHTTPError as exc:
        if exc.status in RETRYABLE_STATUSES:
            raise
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except (InsecureURLError, SettingError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
