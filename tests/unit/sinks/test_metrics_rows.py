"""Pure core of the metrics sink: messages → rows, the customer hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.hashing import customer_hash
from paystream.runtime.store import TABLE_COLUMNS
from schemas.codec import (
    LIFECYCLE_CHANGE,
    SINK_RESULT,
    STRIPE_EVENT,
    SchemaError,
    default_codec,
)
from sinks.metrics_rows import to_row

ENVELOPE: dict[str, Any] = {
    "event_id": "evt_1NqBxk2eZvKYlo2C",
    "type": "invoice.paid",
    "created": 1_764_200_000,
    "livemode": False,
    "api_version": "2024-06-20",
    "customer_id": "cus_PayStream01",
    "received_at_ms": 1_764_200_000_250,
    "correlation_id": "req_abc",
    "source": "webhook",
    "raw": '{"id": "evt_1NqBxk2eZvKYlo2C"}',
}
CHANGE: dict[str, Any] = {
    "customer_id": "cus_PayStream01",
    "user_id": "u_1",
    "email": "ada@example.com",
    "previous_state": None,
    "new_state": "active",
    "cause_event_id": "evt_1",
    "cause_event_type": "invoice.paid",
    "event_created": 1_764_200_000,
    "changed_at_ms": 1_764_200_000_500,
    "received_at_ms": 1_764_200_000_250,
    "processed_at_ms": 1_764_200_000_500,
    "livemode": False,
    "correlation_id": "req_abc",
}
RESULT: dict[str, Any] = {
    "sink": "crm",
    "idempotency_key": "crm:cus_PayStream01:evt_1",
    "outcome": "delivered",
    "attempts": 2,
    "reason_code": None,
    "latency_ms": 88.5,
    "customer_id": "cus_PayStream01",
    "cause_event_id": "evt_1",
    "cause_event_type": "invoice.paid",
    "event_created": 1_764_200_000,
    "received_at_ms": 1_764_200_000_250,
    "processed_at_ms": 1_764_200_000_500,
    "acked_at_ms": 1_764_200_001_750,
    "correlation_id": "req_abc",
}


@pytest.mark.parametrize(
    ("schema", "record", "table"),
    [
        (STRIPE_EVENT, ENVELOPE, "webhook_events"),
        (LIFECYCLE_CHANGE, CHANGE, "lifecycle_changes"),
        (SINK_RESULT, RESULT, "sink_attempts"),
    ],
)
def test_each_topic_lands_in_its_table_with_every_column(
    schema: str, record: dict[str, Any], table: str
) -> None:
    codec = default_codec()
    decoded_schema, decoded = codec.decode(codec.encode(schema, record))
    row = to_row(decoded_schema, decoded, "k")
    assert row.table == table
    assert len(row.values) == len(TABLE_COLUMNS[table])
    values = dict(zip(TABLE_COLUMNS[table], row.values, strict=True))
    assert values["customer_hash"] == customer_hash("cus_PayStream01", "k")
    assert "cus_PayStream01" not in repr(row)
    assert "ada@example.com" not in repr(row)
    # Decoding the same message again gives the same row and key (re-delivery collapses).
    assert to_row(*codec.decode(codec.encode(schema, record)), "k") == row


def test_sink_attempt_row_keeps_the_stage_timestamps() -> None:
    row = to_row(SINK_RESULT, RESULT)
    values = dict(zip(TABLE_COLUMNS["sink_attempts"], row.values, strict=True))
    assert values["event_created"] == datetime(2025, 11, 26, 23, 33, 20, tzinfo=UTC)
    assert values["acked_at"] == datetime(2025, 11, 26, 23, 33, 21, 750_000, tzinfo=UTC)
    assert values["reason_code"] == ""
    assert values["attempts"] == 2


@pytest.mark.parametrize(
    ("changed", "same_key"),
    [
        ({"correlation_id": "req_retry", "received_at_ms": 1_764_200_060_000}, False),
        ({"raw": "{}"}, True),  # the body is not stored; the same delivery is the same row
    ],
)
def test_a_stripe_retry_is_a_new_row_and_a_redelivery_is_not(
    changed: dict[str, Any], same_key: bool
) -> None:
    assert (to_row(STRIPE_EVENT, ENVELOPE).key == to_row(STRIPE_EVENT, ENVELOPE | changed).key) is (
        same_key
    )


def test_webhook_without_customer_stores_an_empty_hash() -> None:
    row = to_row(STRIPE_EVENT, ENVELOPE | {"customer_id": None})
    assert row.values[TABLE_COLUMNS["webhook_events"].index("customer_hash")] == ""


def test_other_schemas_are_refused() -> None:
    with pytest.raises(SchemaError):
        to_row("crm_command", {})


@given(st.text(min_size=1, max_size=40), st.text(max_size=20), st.text(max_size=20))
def test_customer_hash_is_stable_keyed_and_hides_the_id(cid: str, key: str, other: str) -> None:
    h = customer_hash(cid, key)
    assert h == customer_hash(cid, key)
    assert len(h) == 32
    assert int(h, 16) >= 0
    if len(cid) > 8:
        assert cid not in h
    if other.rstrip("\x00") != key.rstrip("\x00"):  # HMAC pads short keys with NULs
        assert customer_hash(cid, other) != h


@pytest.mark.parametrize(
    ("schema", "record"),
    [
        (SINK_RESULT, RESULT | {"attempts": -1}),
        (SINK_RESULT, RESULT | {"attempts": 70_000}),
        (SINK_RESULT, RESULT | {"latency_ms": float("nan")}),
        (SINK_RESULT, RESULT | {"acked_at_ms": -5}),
        (STRIPE_EVENT, ENVELOPE | {"created": 2**40}),
        (LIFECYCLE_CHANGE, CHANGE | {"processed_at_ms": 2**62}),
    ],
)
def test_values_the_store_cannot_hold_make_the_message_a_bad_one(
    schema: str, record: dict[str, Any]
) -> None:
    """Refused here (skipped and logged by the sink), never retried forever as an insert."""
    with pytest.raises(ValueError):
        to_row(schema, record)


@pytest.mark.parametrize(
    ("record", "delivery"),
    [
        (RESULT | {"delivery": "first"}, "first"),
        (RESULT | {"delivery": "retry"}, "retry"),
        (RESULT | {"delivery": "reconcile"}, "reconcile"),
        ({k: v for k, v in RESULT.items() if k != "delivery"}, "first"),  # a v1 record
        (RESULT | {"delivery": "bogus"}, "first"),  # never a value of its own
    ],
)
def test_sink_attempts_keep_the_delivery(record: dict[str, Any], delivery: str) -> None:
    row = to_row(SINK_RESULT, record)
    assert (
        dict(zip(TABLE_COLUMNS["sink_attempts"], row.values, strict=True))["delivery"] == delivery
    )
