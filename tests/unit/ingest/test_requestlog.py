"""ingest.requestlog: cheap correlation ids and the per-request JSON line."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.requestlog import RequestIds, RequestLog


def test_request_ids_are_unique_within_and_across_processes() -> None:
    first, second = RequestIds(), RequestIds()
    ids = [first() for _ in range(1000)] + [second() for _ in range(1000)]
    assert len(set(ids)) == 2000
    assert all(i.isascii() and " " not in i and len(i) <= 128 for i in ids)


@pytest.mark.parametrize(
    ("status", "level"), [(200, "info"), (401, "info"), (503, "warning"), (500, "error")]
)
def test_one_json_line_per_request(status: int, level: str) -> None:
    stream = io.StringIO()
    RequestLog("ingest", stream=stream).write(
        "webhook",
        correlation_id="c-1",
        event_id="evt_1",
        type="invoice.paid",
        customer="0123456789abcdef",
        status=status,
        outcome="ok",
        latency_ms=1.5,
        now=1_700_000_000.25,
    )
    [line] = stream.getvalue().splitlines()
    assert json.loads(line) == {
        "correlation_id": "c-1",
        "event_id": "evt_1",
        "type": "invoice.paid",
        "customer": "0123456789abcdef",
        "status": status,
        "outcome": "ok",
        "latency_ms": 1.5,
        "event": "webhook",
        "service": "ingest",
        "level": level,
        "timestamp": "2023-11-14T22:13:20.250000Z",
    }


def test_disabled_log_writes_nothing_and_a_closed_stream_is_not_an_error() -> None:
    stream = io.StringIO()
    fields = dict(
        correlation_id="c",
        event_id=None,
        type=None,
        customer=None,
        status=401,
        outcome="invalid_signature",
        latency_ms=0.1,
        now=0.0,
    )
    RequestLog("ingest", enabled=False, stream=stream).write("webhook", **fields)  # type: ignore[arg-type]
    assert stream.getvalue() == ""
    stream.close()
    RequestLog("ingest", stream=stream).write("webhook", **fields)  # type: ignore[arg-type]


def test_repeated_client_complaints_are_logged_once_per_window() -> None:
    from ingest.publisher import _Throttle

    throttle = _Throttle()
    assert [throttle("refused"), throttle("refused"), throttle("other")] == [True, False, True]


@given(
    text=st.text(max_size=50),
    optional=st.none() | st.text(max_size=30),
    latency=st.floats(min_value=0, max_value=1e6),
    now=st.floats(min_value=0, max_value=4e9),
)
def test_any_field_values_give_one_valid_json_line(
    text: str, optional: str | None, latency: float, now: float
) -> None:
    stream = io.StringIO()
    RequestLog("ingest", stream=stream).write(
        "webhook",
        correlation_id=text,
        event_id=optional,
        type=text,
        customer=optional,
        status=400,
        outcome="malformed_event",
        latency_ms=latency,
        now=now,
    )
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert (entry["correlation_id"], entry["event_id"], entry["latency_ms"]) == (
        text,
        optional,
        latency,
    )
    assert entry["timestamp"].endswith("Z") and len(entry["timestamp"]) == 27
