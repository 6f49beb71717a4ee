"""Errors of the ingest service: the class decides the HTTP answer, never a string."""

from __future__ import annotations

from typing import Any

from paystream.errors import PaystreamError


class IngestError(PaystreamError):
    """Root of every error raised by the ingest service.

    A subclass names its answer in its header: ``class X(IngestError, status=503,
    reason="unavailable")``; without them it answers as its parent does.
    """

    #: HTTP status and the fixed ``reason`` of SPEC §3 this error answers with.
    status: int = 500
    reason: str = "internal"

    def __init_subclass__(
        cls, status: int | None = None, reason: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if reason is not None:
            cls.reason = reason


class RejectedRequest(IngestError):
    """Raised when a request is refused for good (4xx): retrying the same bytes cannot help."""


class InvalidSignature(RejectedRequest, status=401, reason="invalid_signature"):
    """Raised when no signature header, no matching v1, or a timestamp outside tolerance."""


class MalformedEvent(RejectedRequest, status=400, reason="malformed_event"):
    """Raised when a correctly signed body is not JSON or not the expected event shape."""


class ModeMismatch(RejectedRequest, status=403, reason="mode_mismatch"):
    """Raised when an event's ``livemode`` differs from ``STRIPE_MODE``."""


class TooLarge(RejectedRequest, status=413, reason="too_large"):
    """Raised when a request body exceeds the configured maximum size."""


class BodyTimeout(RejectedRequest, status=408, reason="request_timeout"):
    """Raised when the body did not arrive within its deadline (a trickling client): 408."""


class Overloaded(IngestError, status=503, reason="unavailable"):
    """Raised when too many requests are still waiting for their bodies (503, retry later)."""


class PublishUnavailable(IngestError, status=503, reason="unavailable"):
    """Raised when the broker did not acknowledge in time; the sender should retry (503)."""


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
