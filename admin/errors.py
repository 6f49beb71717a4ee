"""Errors of the admin view."""

from __future__ import annotations

from paystream.errors import PaystreamError


class AdminError(PaystreamError):
    """Root of every error raised by the admin view."""


class QueueUnavailable(AdminError):
    """Raised when a retry or dismissal could not be written to Kafka (nothing changed)."""


class QueueNotLoaded(AdminError):
    """Raised when the queue has not been read back from Kafka yet (within the wait)."""
