"""Logs: JSON lines for machines, structlog's console lines on a terminal, never a trace."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from ingest.requestlog import RequestLog
from paystream.logging import configure_logging, for_a_person


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a person's would."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h).__name__ == "_Handler"]:
        root.removeHandler(handler)


def log_some(stream: io.StringIO) -> list[str]:
    configure_logging("ingest", "info", stream)
    structlog.get_logger("ingest").info("broker_connected", topic="t", secret="whsec_x")
    try:
        raise ValueError("card 4242424242424242")
    except ValueError:
        structlog.get_logger("ingest").error("unexpected_error", exc_info=True)
        logging.getLogger("aiokafka").exception("fetch failed")
    logging.getLogger("faust").warning("rebalance %s", "done")
    return stream.getvalue().splitlines()


def test_not_a_terminal_gets_json_lines_without_escape_codes() -> None:
    lines = log_some(io.StringIO())
    assert len(lines) == 4
    entries = [json.loads(line) for line in lines]
    assert [e["event"] for e in entries] == [
        "broker_connected",
        "unexpected_error",
        "fetch failed",
        "rebalance done",
    ]
    assert all(e["service"] == "ingest" and "timestamp" in e for e in entries)
    assert entries[1]["error"] == entries[2]["error"] == "ValueError"
    assert entries[2]["logger"] == "aiokafka"
    text = "\n".join(lines)
    assert "\x1b" not in text
    assert "whsec_x" not in text and "4242" not in text and "Traceback" not in text


def test_a_terminal_gets_readable_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    lines = log_some(Terminal())
    assert len(lines) == 4
    assert not any(line.startswith("{") for line in lines)
    assert "broker_connected" in lines[0] and "topic" in lines[0]
    assert "\x1b[" in lines[0]  # colours, for a person
    text = "\n".join(lines)
    assert "whsec_x" not in text and "4242" not in text and "Traceback" not in text
    assert "ValueError" in lines[1] and "aiokafka" in lines[2]


def test_no_color_on_a_terminal_means_no_escape_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    lines = log_some(Terminal())
    assert "\x1b" not in "\n".join(lines)
    assert "broker_connected" in lines[0]


def test_who_reads_a_stream() -> None:
    assert for_a_person(Terminal())
    assert not for_a_person(io.StringIO())
    closed = io.StringIO()
    closed.close()  # isatty() raises on a closed stream
    assert not for_a_person(closed)


def test_request_lines_on_a_terminal_read_like_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    stream = Terminal()
    configure_logging("ingest", "info", stream)
    RequestLog("ingest", stream=stream).write(
        "webhook",
        correlation_id="c-1",
        event_id="evt_1",
        type="invoice.paid",
        customer="h1",
        status=200,
        outcome="ok",
        latency_ms=1.5,
        now=1_700_000_000.25,
    )
    [line] = stream.getvalue().splitlines()
    assert not line.startswith("{")
    assert "webhook" in line and "event_id=evt_1" in line and "status=200" in line
