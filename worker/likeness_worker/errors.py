"""Step errors carry a code and whether retrying can help; the retry policy is data.

``StepFailure`` is what engines raise (or what the runtime turns other exceptions into). Its
``code`` is one of the contracts' ErrorCode values (generated; a code added there without a rule
here stops the worker at import). ``RETRY_POLICY`` says per code whether
the step may be retried in this worker (Dramatiq retries, with backoff) and whether the api may
retry the job as a new attempt (``retryable`` in the event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dramatiq.middleware.time_limit import TimeLimitExceeded

from .generated.tables import ERROR_CODES, ErrorCode
from .media.errors import BadInput, Cancelled, ToolFailed, ToolTimeout


@dataclass(frozen=True)
class RetryRule:
    retryable: bool  # reported to the api: a new attempt may succeed
    in_process: bool  # the worker retries the step itself (bounded by WORKER_STEP_RETRIES)


RETRY_POLICY: dict[ErrorCode, RetryRule] = {
    "bad_input": RetryRule(retryable=False, in_process=False),  # never retried: the input must change
    "cancelled": RetryRule(retryable=True, in_process=False),  # the user stopped it; they may run it again
    "engine_unavailable": RetryRule(retryable=True, in_process=True),
    "engine_failed": RetryRule(retryable=True, in_process=True),
    "out_of_memory": RetryRule(retryable=True, in_process=False),  # a fresh process may fit; this one won't
    "timeout": RetryRule(retryable=True, in_process=False),
    "internal": RetryRule(retryable=True, in_process=False),
    # The api's script step reports it; a worker never raises it, but every code has a rule.
    "llm_unavailable": RetryRule(retryable=True, in_process=True),
}
if set(RETRY_POLICY) != set(ERROR_CODES):
    raise ImportError(f"RETRY_POLICY must have a rule for exactly the contracts' error codes {ERROR_CODES}")


class StepFailure(Exception):
    def __init__(self, code: ErrorCode, message: str, *, retryable: bool | None = None) -> None:
        if code not in RETRY_POLICY:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message[:4000]
        self.retryable = RETRY_POLICY[code].retryable if retryable is None else retryable

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


def classify(exc: BaseException) -> StepFailure:
    """Map any exception from an engine or a media function to a StepFailure."""
    if isinstance(exc, StepFailure):
        return exc
    if isinstance(exc, BadInput):
        return StepFailure("bad_input", str(exc) or "bad input")
    if isinstance(exc, Cancelled):
        return StepFailure("cancelled", str(exc) or "cancelled")
    if isinstance(exc, (ToolTimeout, TimeLimitExceeded)):
        return StepFailure("timeout", str(exc) or "time limit exceeded")
    if isinstance(exc, ToolFailed):
        return StepFailure("engine_failed", str(exc))
    if isinstance(exc, MemoryError):
        return StepFailure("out_of_memory", "out of memory")
    if isinstance(exc, FileNotFoundError) and getattr(exc, "filename", None):
        return StepFailure("engine_unavailable", f"missing: {exc.filename}")
    return StepFailure("internal", f"{type(exc).__name__}: {exc}")
