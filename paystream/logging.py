"""Structured JSON logs (structlog) on stderr: one line per event, no stack traces.

Exceptions are reduced to their type and a short message; keys that could carry secrets
or card data are dropped before rendering.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_FORBIDDEN_KEYS = frozenset(
    {"secret", "secrets", "token", "password", "authorization", "card", "number", "cvc", "raw"}
)


def _drop_sensitive(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in [k for k in event if k.lower() in _FORBIDDEN_KEYS]:
        event.pop(key)
    return event


def _one_line_errors(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    exc_info = event.pop("exc_info", None)
    if exc_info:
        exc = exc_info[1] if isinstance(exc_info, tuple) else sys.exc_info()[1]
        if isinstance(exc, BaseException):
            event["error"] = type(exc).__name__
    return event


#: aiohttp's loggers that report errors of the HTTP protocol (malformed requests, handlers
#: that failed outside our own ``try``); their records carry tracebacks and request bytes.
AIOHTTP_ERROR_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.internal")


class HttpProtocolErrors(logging.Handler):
    """aiohttp's "Error handling request" records as one JSON line: the type and status only.

    aiohttp logs a malformed request (bad header, bad chunk, a NUL in the path) with
    ``logger.exception``: a multi-line traceback whose message holds the attacker's bytes.
    A logging filter cannot reshape that into our JSON line, so this handler replaces
    aiohttp's output: never the message or the exception text, only what kind of error it
    was and the status aiohttp answered with.
    """

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None and record.levelno < logging.WARNING:
            return  # aiohttp's debug chatter (disconnections, keep-alive)
        status = getattr(exc, "code", None) if exc is not None else None
        status = status if isinstance(status, int) and 400 <= status < 600 else 500
        log = structlog.get_logger("aiohttp")
        fields: dict[str, Any] = {"status": status, "error": type(exc).__name__ if exc else None}
        if status < 500:
            log.warning("http_protocol_error", **fields)
        else:
            log.error("http_protocol_error", **fields)


def configure_logging(service: str, level: str = "info") -> None:
    """Configure structlog and the stdlib root logger for one process."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(
        level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(message)s"
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _one_line_errors,
            _drop_sensitive,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    protocol_errors = HttpProtocolErrors()
    for name in AIOHTTP_ERROR_LOGGERS:
        aiohttp_logger = logging.getLogger(name)
        aiohttp_logger.handlers = [protocol_errors]
        aiohttp_logger.propagate = False
        aiohttp_logger.setLevel(logging.DEBUG)  # a non-HTTP first request is logged at debug
