"""Structured logs (structlog) on stderr: one line per event, no stack traces.

JSON lines, except on a terminal, where a person reads them: there structlog's console
renderer (colours unless ``NO_COLOR`` is set). A stream that is not a terminal never gets
an escape code. Lines of the libraries' stdlib loggers (Faust, aiokafka, ...) are rendered
the same way. Exceptions are reduced to their type; keys that could carry secrets or card
data are dropped before rendering.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

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
    ``logger.exception``: a multi-line traceback whose exception text holds the attacker's
    bytes, at ``debug`` or ``error`` depending on the error. This handler replaces aiohttp's
    output with one fixed event at a level that fits (a client's fault is a warning): never
    the message or the exception text, only the error's type and the status aiohttp sent.
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


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler ``configure_logging`` installs (replaced when called again)."""


def for_a_person(stream: TextIO) -> bool:
    """True when ``stream`` is a terminal (people read it), False for files and pipes."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def configure_logging(service: str, level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger for one process."""
    out = sys.stderr if stream is None else stream
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (
        structlog.dev.ConsoleRenderer(
            colors="NO_COLOR" not in os.environ, exception_formatter=structlog.dev.plain_traceback
        )
        if for_a_person(out)
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _one_line_errors,
        _drop_sensitive,
    ]
    handler = _Handler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    protocol_errors = HttpProtocolErrors()
    for name in AIOHTTP_ERROR_LOGGERS:
        aiohttp_logger = logging.getLogger(name)
        aiohttp_logger.handlers = [protocol_errors]
        aiohttp_logger.propagate = False
        aiohttp_logger.setLevel(logging.DEBUG)  # a non-HTTP first request is logged at debug
