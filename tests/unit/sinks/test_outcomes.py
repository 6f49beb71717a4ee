"""sink.results and sink.dlq records: valid against their schemas, carrying the stages."""

from __future__ import annotations

import json

import pytest

from devstack.commands import crm_command, helpdesk_command
from paystream.hashing import customer_hash
from schemas.codec import default_codec
from sinks.outcomes import (
    dead_letter,
    dead_letter_log_fields,
    delivery_of,
    sink_result,
    sync_latency_s,
)


@pytest.mark.parametrize("outcome", ["delivered", "dry_run", "retry", "dead_lettered"])
def test_sink_result_encodes_and_carries_the_stage_timestamps(outcome: str) -> None:
    command = crm_command("cus_A", "active", 1_700_000_000)
    record = sink_result(
        "crm",
        command,
        outcome,
        attempts=2,
        reason_code=None,
        latency_ms=12.5,
        acked_at_ms=1_700_000_001_000,
    )
    decoded = default_codec().decode_as(
        "sink_result", default_codec().encode("sink_result", record)
    )
    assert decoded["outcome"] == outcome
    assert decoded["idempotency_key"] == command["idempotency_key"]
    assert decoded["event_created"] == 1_700_000_000
    assert decoded["received_at_ms"] == command["received_at_ms"]
    assert decoded["processed_at_ms"] == command["processed_at_ms"]
    assert decoded["acked_at_ms"] == 1_700_000_001_000
    assert decoded["correlation_id"] == command["correlation_id"]


def test_dead_letter_keeps_the_original_bytes_and_one_line() -> None:
    codec = default_codec()
    command = helpdesk_command()
    raw = codec.encode("helpdesk_command", command)
    record = dead_letter(
        "helpdesk",
        command,
        raw,
        reason_code="server_error",
        last_error="server_error:\n  Zendesk answered 503" + "x" * 500,
        attempts=3,
        failed_at_ms=1,
        source_topic="p.sink.helpdesk",
    )
    decoded = codec.decode_as("dead_letter", codec.encode("dead_letter", record))
    assert codec.decode_as("helpdesk_command", decoded["command"]) == command
    assert "\n" not in decoded["last_error"]
    assert len(decoded["last_error"]) <= 300
    assert decoded["idempotency_key"] == "paystream:failed_renewal:in_1"


@pytest.mark.parametrize(
    ("created", "acked_ms", "latency"),
    [
        (1_700_000_000, 1_700_000_002_500, 2.5),
        (0, 5, None),
        (1_700_000_010, 1_700_000_000_000, 0.0),
    ],
)
def test_sync_latency(created: int, acked_ms: int, latency: float | None) -> None:
    assert sync_latency_s({"event_created": created}, acked_ms) == latency


@pytest.mark.parametrize(
    "command",
    [
        {"idempotency_key": "crm:cus_RAW123:evt_9", "customer_id": "cus_RAW123"},
        {"idempotency_key": "paystream:dispute:du_1", "customer_id": "cus_RAW123"},
    ],
)
def test_a_dead_letter_log_line_carries_no_raw_customer_id(command: dict[str, str]) -> None:
    record = dead_letter(
        "crm",
        {**command, "cause_event_id": "evt_9", "correlation_id": "c1"},
        b"raw",
        reason_code="http_400",
        last_error="HubSpot 400: contact cus_RAW123 has an invalid property value",
        attempts=1,
        failed_at_ms=1,
        source_topic="p.sink.crm",
    )
    fields = dead_letter_log_fields(record, "k" * 32)
    assert "cus_RAW123" not in json.dumps(fields)
    assert fields["customer"] == customer_hash("cus_RAW123", "k" * 32)
    assert fields["cause_event_id"] == "evt_9"
    assert fields["reason_code"] == "http_400"
    assert "<customer> has an invalid property" in fields["last_error"]


H = "paystream-delivery"


@pytest.mark.parametrize(
    ("command", "headers", "delivery"),
    [
        ({}, None, "first"),
        ({}, [], "first"),
        ({"source": "webhook"}, None, "first"),
        ({"source": "reconcile"}, None, "reconcile"),  # the envelope's mark, if carried
        ({"delivery": "reconcile"}, None, "reconcile"),
        ({}, [(H, b"retry")], "retry"),  # the exception queue's re-send
        ({"source": "reconcile"}, [(H, b"retry")], "retry"),  # a person re-sent it
        ({}, {H: b"retry"}, "retry"),
        ({}, [(H, "retry")], "retry"),
        ({}, [("other", b"retry")], "first"),
        ({}, [(H, b"again")], "first"),  # unknown marks never become labels
        ({}, [(H, None)], "first"),
        ({"delivery": "bogus"}, None, "first"),
        ({"source": "demo"}, None, "first"),
    ],
)
def test_delivery_label(command: dict[str, str], headers: object, delivery: str) -> None:
    assert delivery_of(command, headers) == delivery  # type: ignore[arg-type]


@pytest.mark.parametrize("delivery", ["first", "retry", "reconcile"])
def test_sink_result_carries_the_delivery_label(delivery: str) -> None:
    command = crm_command("cus_A", "active", 1_700_000_000, delivery=delivery)
    record = sink_result(
        "crm", command, "delivered", attempts=1, reason_code=None, latency_ms=1.0, acked_at_ms=1
    )
    codec = default_codec()
    assert (
        codec.decode_as("sink_result", codec.encode("sink_result", record))["delivery"] == delivery
    )
