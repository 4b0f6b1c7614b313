"""Which vendor failures are worth retrying the whole step for, and how a failed step reads.

A step that fails for good says what failed first — vendor, method, endpoint path, status and
attempts — and records the requests it made, so the run's page answers "what broke" without
opening the chained errors (Dagster's own headline for a step whose retries ran out is
"Exceeded max_retries of N").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from ..http import InsecureURLError, MetricsSnapshot, RequestMetrics, VendorHTTPError, VendorOutageError
from ..settings import SettingError

# Request metrics of each step attempt when it first called a vendor, keyed by
# (run id, step key, attempt). Run workers are per run, so this stays small.
_STEP_BASELINES: dict[tuple[str, str, int], MetricsSnapshot] = {}


class _StepAttempt:
    """The Dagster step this code runs in (if any): its attempt and the vendor metrics so far."""

    def __init__(self, context: dg.OpExecutionContext) -> None:
        self.context = context
        self.attempt = context.retry_number  # earlier attempts of this step
        policy = context._step_execution_context.op_retry_policy  # noqa: SLF001 - no public accessor
        self.max_retries = policy.max_retries if policy is not None else 0
        key = (context.run_id, context._step_execution_context.step.key, self.attempt)  # noqa: SLF001
        self.baseline = _STEP_BASELINES.setdefault(key, self._metrics())

    @classmethod
    def current(cls) -> _StepAttempt | None:
        try:
            return cls(dg.OpExecutionContext.get())
        except dg.DagsterInvariantViolationError:
            return None  # called outside a run (a script, a unit test)

    def _metrics(self) -> MetricsSnapshot:
        total = MetricsSnapshot()
        for resource in self.context.resources._asdict().values():
            metrics = getattr(resource, "metrics", None)
            if isinstance(metrics, RequestMetrics):
                total = total + metrics.snapshot()
        return total

    @property
    def is_last(self) -> bool:
        return self.attempt >= self.max_retries

    def metadata(self, exc: VendorHTTPError | None) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        if exc is not None:
            facts = {
                "vendor": exc.vendor,
                "endpoint": f"{exc.method} {exc.path}",
                "status": exc.status if exc.status is not None else "no response",
                "request_attempts": exc.attempts,
            }
        facts["step_attempt"] = f"{self.attempt + 1} of {self.max_retries + 1}"
        return {**facts, **(self._metrics() - self.baseline).as_metadata()}


def _headline(exc: VendorHTTPError, step: _StepAttempt | None) -> str:
    text = str(exc)
    if step is not None and step.max_retries and isinstance(exc, VendorOutageError):
        text += f" (still failing on step attempt {step.attempt + 1} of {step.max_retries + 1})"
    return text


@contextmanager
def permanent_errors_fail_fast() -> Iterator[None]:
    """Let outages reach the step's retry policy — what the client retried until its attempts
    ran out (timeouts, resets, and the statuses the vendor's retry rules call transient, e.g.
    iBuildApp's 500) — but fail at once, without step retries, on errors no retry can fix:
    rejected credentials, other 4xx/5xx answers, error envelopes, refused URLs,
    misconfiguration. Inside a run, a step failing for good (a permanent error, or an outage
    on its last attempt) fails with the vendor, endpoint, status and attempts as its message
    and the step's request metrics as its metadata."""
    step = _StepAttempt.current()
    try:
        yield
    except VendorOutageError as exc:
        if step is None or not step.is_last:
            raise
        raise dg.Failure(description=_headline(exc, step), metadata=step.metadata(exc), allow_retries=False) from exc
    except VendorHTTPError as exc:
        metadata = step.metadata(exc) if step is not None else None
        raise dg.Failure(description=_headline(exc, step), metadata=metadata, allow_retries=False) from exc
    except (InsecureURLError, SettingError) as exc:
        metadata = step.metadata(None) if step is not None else None
        raise dg.Failure(description=str(exc), metadata=metadata, allow_retries=False) from exc
