"""The sinks' errors: the class, not a string, decides retry versus dead-letter."""

from __future__ import annotations

from paystream.errors import PaystreamError
from sinks.retry import UNAVAILABLE


class SinkError(PaystreamError):
    """Root of every error raised by the sinks."""


class RetryableSinkError(SinkError):
    """Raised when a call may succeed later (429, 5xx, timeout, connection error)."""

    def __init__(self, reason_code: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{reason_code}: {detail}")
        self.reason_code = reason_code
        self.detail = detail
        #: seconds the API asked us to wait (``Retry-After``), None when it did not say
        self.retry_after = retry_after


class PermanentSinkError(SinkError):
    """Raised when a call can never succeed as sent (a 4xx other than 429, a bad command)."""

    def __init__(self, reason_code: str, detail: str) -> None:
        super().__init__(f"{reason_code}: {detail}")
        self.reason_code = reason_code
        self.detail = detail


class DestinationUnavailable(RetryableSinkError):
    """Raised when the destination (the metrics store) cannot take a write now.

    The runner backs off (pausing its partitions) and retries without limit: nothing is
    dead-lettered, the data waits in Kafka.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(UNAVAILABLE, detail)


class DailyLimitReached(RetryableSinkError):
    """Raised when HubSpot answers 429 with ``policyName: DAILY``: pause until the reset."""


class OutcomeNotWritten(SinkError):
    """Raised when a result or dead-letter record could not be produced: the runner stops
    without committing, so the batch is read again by whoever runs next."""
