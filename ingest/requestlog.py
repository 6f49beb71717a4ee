"""The one JSON line per request, rendered directly: the hot path skips structlog's chain.

The line is assembled from escaped JSON literals (no dict, no ``json.dumps``, one
``strftime`` per second): the request log must stay a small part of a request's cost. Inside
a running event loop the lines of one loop iteration are written together at its end (one
``write`` system call for the several requests a batch of delivery reports completes, not one
per request); outside a loop each line is written at once.

Same shape as every other line (``paystream.logging``: ``event``, ``service``, ``level``,
``timestamp`` in ISO 8601 UTC) with a fixed set of fields that carry no payload, secret or
card data: correlation id, event id and type, outcome, status, latency and the hashed
customer id. Everything else the service logs goes through structlog. On a terminal (a
person reads it, speed matters less) the line goes through structlog too, so it is rendered
like every other line there (``paystream.logging``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
import uuid
from json.encoder import encode_basestring_ascii
from typing import TextIO

import structlog

from paystream.logging import for_a_person


def _json(value: str | None) -> str:
    """A JSON string literal (escaped, ASCII) or ``null``."""
    return "null" if value is None else encode_basestring_ascii(value)


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
        self._service_json = _json(service)
        self._second = -1
        self._stamp = ""
        self._stream = stream if stream is not None else sys.stderr
        self._pending: list[str] = []
        self.enabled = enabled
        self._console = structlog.get_logger(service) if for_a_person(self._stream) else None

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
        second = int(now)
        if second != self._second:  # strftime once per second, not per request
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        level = "info" if status < 500 else "warning" if status == 503 else "error"
        if self._console is not None:
            getattr(self._console, level)(
                event,
                correlation_id=correlation_id,
                event_id=event_id,
                type=type,
                customer=customer,
                status=status,
                outcome=outcome,
                latency_ms=latency_ms,
            )
            return
        line = (
            f'{{"correlation_id": {_json(correlation_id)}, "event_id": {_json(event_id)}, '
            f'"type": {_json(type)}, "customer": {_json(customer)}, "status": {status}, '
            f'"outcome": {_json(outcome)}, "latency_ms": {float(latency_ms)!r}, '
            f'"event": {_json(event)}, "service": {self._service_json}, "level": "{level}", '
            f'"timestamp": "{self._stamp}.{int((now - second) * 1e6):06d}Z"}}\n'
        )
        if self._pending:  # a flush is already scheduled for this loop iteration
            self._pending.append(line)
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no event loop: write it now
            self._write(line)
        else:
            self._pending.append(line)

    def flush(self) -> None:
        """Write the lines held for this loop iteration."""
        lines, self._pending = self._pending, []
        self._write("".join(lines))

    def _write(self, text: str) -> None:
        # The answer is decided (the event may already be in Kafka): a log that cannot be
        # written must not turn it into an error.
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(text)
