"""Errors of the processors stage: one root, retryable and permanent kept apart."""

from __future__ import annotations

from paystream.errors import PaystreamError


class ProcessorError(PaystreamError):
    """Root of every error raised by the worker (dedup, lifecycle, timers, web)."""


class RetryableProcessorError(ProcessorError):
    """Raised when a batch could not be published but may succeed if processed again."""


class BatchFailed(RetryableProcessorError):
    """Raised by the commit barrier once a batch failed: no offset may be committed (the
    worker stops; its successor processes the batch again)."""


class ResumePositionUnknown(RetryableProcessorError):
    """Raised before a commit when where the group resumed reading a partition could not be
    read from Kafka: nothing is committed (the worker stops; its successor reads again)."""


class PermanentProcessorError(ProcessorError):
    """Raised when input can never be processed as is (it is counted and skipped)."""


class MalformedEventError(PermanentProcessorError):
    """Raised when an input message is not a decodable paystream event."""


class FaustInternalsMoved(PermanentProcessorError):
    """Raised when a Faust internal the worker relies on (named) moved or changed shape."""

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"Faust internal changed: {symbol} (see processors/_faust.py; "
            "faust-streaming is pinned to the tested version in pyproject.toml)"
        )
        self.symbol = symbol
