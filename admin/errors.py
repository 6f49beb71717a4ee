"""Errors of the admin view."""

from __future__ import annotations

from paystream.errors import PaystreamError


class AdminError(PaystreamError):
    """Root of every error raised by the admin view."""


class QueueUnavailable(AdminError):
    """Raised when a retry or dismissal could not be written to Kafka (nothing changed)."""
