"""The HTTP core shared by all vendors: limiter, retrying client, metrics, transport safety."""

from .client import AuthHook, MalformedBody, VendorClient, decode_json, default_error_message
from .clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock
from .errors import (
    AuthExpired,
    InsecureURLError,
    VendorAuthError,
    VendorError,
    VendorHTTPError,
    VendorOutageError,
    VendorRejected,
    VendorTransportError,
)
from .limiter import RateLimiter
from .metrics import MetricsSnapshot, RequestMetrics
from .retry import RetryPolicy, parse_retry_after
from .security import SecretRedactor, ensure_safe_url, is_loopback_host

__all__ = [
    "AuthExpired",
    "AuthHook",
    "Clock",
    "FakeClock",
    "InsecureURLError",
    "MalformedBody",
    "MetricsSnapshot",
    "RateLimiter",
    "RequestMetrics",
    "RetryPolicy",
    "SYSTEM_CLOCK",
    "SecretRedactor",
    "SystemClock",
    "VendorAuthError",
    "VendorClient",
    "VendorError",
    "VendorHTTPError",
    "VendorOutageError",
    "VendorRejected",
    "VendorTransportError",
    "decode_json",
    "default_error_message",
    "ensure_safe_url",
    "is_loopback_host",
    "parse_retry_after",
]
