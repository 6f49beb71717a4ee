"""Errors of the ingest service: the class decides the HTTP answer, never a string."""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error raised by the ingest service."""

    #: HTTP status and the fixed ``reason`` of SPEC §3 this error answers with.
    status: int = 500
    reason: str = "internal"


class RejectedRequest(IngestError):
    """Raised when a request is refused for good (4xx): retrying the same bytes cannot help."""


class InvalidSignature(RejectedRequest):
    """Raised when no signature header, no matching v1, or a timestamp outside tolerance."""

    status = 401
    reason = "invalid_signature"


class MalformedEvent(RejectedRequest):
    """Raised when a correctly signed body is not JSON or not the expected event shape."""

    status = 400
    reason = "malformed_event"


class ModeMismatch(RejectedRequest):
    """Raised when an event's ``livemode`` differs from ``STRIPE_MODE``."""

    status = 403
    reason = "mode_mismatch"


class TooLarge(RejectedRequest):
    """Raised when a request body exceeds the configured maximum size."""

    status = 413
    reason = "too_large"


class BodyTimeout(RejectedRequest):
    """Raised when the body did not arrive within its deadline (a trickling client): 408."""

    status = 408
    reason = "request_timeout"


class Overloaded(IngestError):
    """Raised when too many requests are still waiting for their bodies (503, retry later)."""

    status = 503
    reason = "unavailable"


class PublishUnavailable(IngestError):
    """Raised when the broker did not acknowledge in time; the sender should retry (503)."""

    status = 503
    reason = "unavailable"


class PublishTimeout(PublishUnavailable):
    """Raised when no delivery report arrived within the publish deadline."""


class PublishFailed(PublishUnavailable):
    """Raised when the delivery report carried an error or the producer refused the message."""


class ReconcileError(IngestError):
    """Root of the errors of ``paystream reconcile`` (the Events API side of ingest)."""


class ReconcileRefused(ReconcileError):
    """Raised when a reconcile run cannot start: bad window, API key or setting (exit 2)."""


class ListingFailed(ReconcileError):
    """Raised when the Events API could not be paged through to the end (exit 1)."""
