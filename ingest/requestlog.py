"""The one JSON line per request, rendered directly: the hot path skips structlog's chain.

Same shape as every other line (``paystream.logging``: ``event``, ``service``, ``level``,
``timestamp`` in ISO 8601 UTC) with a fixed set of fields that carry no payload, secret or
card data: correlation id, event id and type, outcome, status, latency and the hashed
customer id. Everything else the service logs goes through structlog.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import TextIO


class RequestIds:
    """Correlation ids for requests without a usable ``X-Request-Id``: unique and cheap
    (a random per-process prefix and a counter; no uuid per request)."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16] + "-"
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


class RequestLog:
    """Writes one request's line to ``stream`` (stderr by default) when ``enabled``."""

    def __init__(self, service: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self._service = service
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = enabled

    def write(
        self,
        event: str,
        *,
        correlation_id: str,
        event_id: str | None,
        type: str | None,
        customer: str | None,
        status: int,
        outcome: str,
        latency_ms: float,
        now: float,
    ) -> None:
        if not self.enabled:
            return
        line = {
            "correlation_id": correlation_id,
            "event_id": event_id,
            "type": type,
            "customer": customer,
            "status": status,
            "outcome": outcome,
            "latency_ms": latency_ms,
            "event": event,
            "service": self._service,
            "level": "info" if status < 500 else "warning" if status == 503 else "error",
            "timestamp": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        }
        # The answer is decided (the event may already be in Kafka): a log that cannot be
        # written must not turn it into an error.
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(json.dumps(line) + "\n")
