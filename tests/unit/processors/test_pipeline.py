"""A whole batch through ``BatchProcessor`` without Kafka: dedup, commands, keys, counts."""

from __future__ import annotations

import pytest

from processors.lifecycle import CustomerRecord
from processors.pipeline import BatchProcessor, InMessage
from schemas.codec import STRIPE_EVENT, default_codec
from schemas.topics import Topics
from sinks.outcomes import delivery_of
from tests.unit.processors.stripe_events import encoded_app, encoded_stripe, envelope, stripe_body

TOPICS = Topics("p.", 2)


@pytest.fixture
def processor() -> BatchProcessor:
    return BatchProcessor(TOPICS, default_codec(), stuck_after_ms=3_600_000)


def message(pair: tuple[str, bytes], topic: str = TOPICS.stripe_events) -> InMessage:
    return InMessage(topic, 0, pair[0].encode(), pair[1])


def by_topic(result: object, topic: str) -> list[dict[str, object]]:
    codec = default_codec()
    return [codec.decode(o.value)[1] for o in result.outputs if o.topic == topic]  # type: ignore[attr-defined]


def test_a_batch_builds_commands_with_deterministic_keys(processor: BatchProcessor) -> None:
    batch = [
        message(encoded_stripe("checkout.session.completed", "evt_1", 100, "cus_1")),
        message(
            encoded_app("onboarding.completed", "app_1", 150, "cus_1", "user_1"), TOPICS.app_events
        ),
        message(
            encoded_stripe(
                "invoice.payment_failed",
                "evt_2",
                200,
                "cus_1",
                billing_reason="subscription_cycle",
                attempt_count=2,
                id="in_9",
            )
        ),
    ]
    result = processor.process(batch, lambda c, p: None, lambda e, p: None, 5)
    crm = by_topic(result, TOPICS.sink_crm)
    assert [c["idempotency_key"] for c in crm] == [
        "crm:cus_1:evt_1",
        "crm:cus_1:app_1",
        "crm:cus_1:evt_2",
    ]
    assert [c["billing_state"] for c in crm] == ["onboarding_pending", "active", "payment_failed"]
    assert crm[2]["billing_state_changed_at_ms"] == 200_000
    assert crm[2]["user_id"] == "user_1"
    assert crm[2]["correlation_id"] == "corr-evt_2"
    assert crm[2]["processed_at_ms"] == 5
    lifecycle = by_topic(result, TOPICS.customer_lifecycle)
    assert [(c["previous_state"], c["new_state"]) for c in lifecycle] == [
        (None, "onboarding_pending"),
        ("onboarding_pending", "active"),
        ("active", "payment_failed"),
    ]
    (ticket,) = by_topic(result, TOPICS.sink_helpdesk)
    assert ticket["idempotency_key"] == "paystream:failed_renewal:in_9"
    assert all(o.key == b"cus_1" for o in result.outputs)
    assert result.records["cus_1"][1].state == "payment_failed"
    assert set(result.seen) == {"evt_1", "app app_1", "evt_2"}  # app ids: their own namespace


def test_duplicates_are_counted_and_emit_nothing(processor: BatchProcessor) -> None:
    first = encoded_stripe("invoice.paid", "evt_1", 100, "cus_1")
    result = processor.process(
        [message(first), message(first)], lambda c, p: None, lambda e, p: None, 1
    )
    assert len(by_topic(result, TOPICS.sink_crm)) == 1
    assert result.counts["invoice.paid", "applied"] == 1
    assert result.counts["invoice.paid", "duplicate"] == 1
    # the entry says what the first delivery did, and that it came again
    assert result.seen["evt_1"] == (0, b"100 applied duplicate")

    record = result.records["cus_1"][1]
    again = processor.process([message(first)], lambda c, p: record, lambda e, p: b"100", 1)
    assert again.outputs == [] and again.records == {}
    # an entry of an earlier release (created alone) is marked once, its outcome unknown
    assert again.seen == {"evt_1": (0, b"100 - duplicate")}
    assert again.counts["invoice.paid", "duplicate"] == 1
    marked = b"100 applied duplicate"
    third = processor.process([message(first)], lambda c, p: record, lambda e, p: marked, 1)
    assert third.seen == {}  # marked already: no further write


def test_the_entry_records_a_stale_event_as_stale(processor: BatchProcessor) -> None:
    newer = encoded_stripe("invoice.payment_failed", "evt_2", 200, "cus_1")
    older = encoded_stripe("invoice.paid", "evt_1", 100, "cus_1")
    result = processor.process(
        [message(newer), message(older)], lambda c, p: None, lambda e, p: None, 1
    )
    assert result.counts["invoice.paid", "stale"] == 1
    assert {k: v for k, (_p, v) in result.seen.items()} == {
        "evt_2": b"200 applied",
        "evt_1": b"100 stale",
    }


@pytest.mark.parametrize(
    ("deliveries", "seen_before", "recovered"),
    [
        # only reconcile brought it, never seen before: one event of the delivery gap
        (["reconcile"], False, {"invoice.paid": 1}),
        # reconcile listed it again after the webhook was processed: no gap
        (["reconcile"], True, {}),
        (["webhook", "reconcile"], False, {}),
        (["webhook"], False, {}),
        (["demo"], False, {}),
        # listed twice by two reconcile runs in one batch: counted once
        (["reconcile", "reconcile"], False, {"invoice.paid": 1}),
    ],
)
def test_reconciled_events_never_seen_are_the_delivery_gap(
    processor: BatchProcessor, deliveries: list[str], seen_before: bool, recovered: dict[str, int]
) -> None:
    batch = [
        message(encoded_stripe("invoice.paid", "evt_1", 100, "cus_1", delivered_by=d))
        for d in deliveries
    ]
    result = processor.process(
        batch, lambda c, p: None, lambda e, p: b"100" if seen_before else None, 1
    )
    assert dict(result.recovered) == recovered
    applied = 0 if seen_before else 1
    assert result.counts["invoice.paid", "applied"] == applied
    assert result.counts["invoice.paid", "duplicate"] == len(deliveries) - applied


def test_a_duplicate_lost_from_the_record_is_restored(processor: BatchProcessor) -> None:
    # the dedup entry survived a crash but the record did not: folding it again repairs it
    event = encoded_stripe("invoice.paid", "evt_1", 100, "cus_1")
    result = processor.process(
        [message(event)], lambda c, p: CustomerRecord("cus_1"), lambda e, p: b"100", 1
    )
    assert [c["idempotency_key"] for c in by_topic(result, TOPICS.sink_crm)] == ["crm:cus_1:evt_1"]


def test_stale_and_unhandled_are_counted(processor: BatchProcessor) -> None:
    batch = [
        message(encoded_stripe("invoice.payment_failed", "evt_2", 200, "cus_1")),
        message(encoded_stripe("invoice.paid", "evt_1", 100, "cus_1")),
        message(encoded_stripe("product.created", "evt_3", 300, None)),
    ]
    result = processor.process(batch, lambda c, p: None, lambda e, p: None, 1)
    assert result.counts["invoice.paid", "stale"] == 1
    assert result.counts["product.created", "ignored"] == 1
    assert len(by_topic(result, TOPICS.sink_crm)) == 1


def test_dispute_without_customer_still_opens_its_ticket(processor: BatchProcessor) -> None:
    pair = encoded_stripe("charge.dispute.created", "evt_d", 100, None, id="dp_1")
    assert pair[0] == "evt_d"  # ingest keys it by event id
    result = processor.process([message(pair)], lambda c, p: None, lambda e, p: None, 1)
    (ticket,) = by_topic(result, TOPICS.sink_helpdesk)
    assert ticket["idempotency_key"] == "paystream:chargeback:dp_1"
    assert ticket["customer_id"] == ""
    assert ticket["chargeback"]["charge_id"] == "ch_1IqtGAJDPojXS6LNstgEfUji"
    assert result.records == {}


@pytest.mark.parametrize("value", [b"", b"not avro", b"\xc3\x01" + b"\x00" * 8 + b"x"])
def test_malformed_input_is_counted_not_fatal(processor: BatchProcessor, value: bytes) -> None:
    good = encoded_stripe("invoice.paid", "evt_1", 100, "cus_1")
    batch = [InMessage(TOPICS.stripe_events, 0, b"k", value), message(good)]
    result = processor.process(batch, lambda c, p: None, lambda e, p: None, 1)
    assert result.counts["unknown", "malformed"] == 1
    assert len(by_topic(result, TOPICS.sink_crm)) == 1


def test_stripe_event_with_unreadable_raw_is_malformed(processor: BatchProcessor) -> None:
    from schemas.codec import STRIPE_EVENT

    record = {
        "event_id": "evt_x",
        "type": "invoice.paid",
        "created": 1,
        "livemode": False,
        "customer_id": "cus_1",
        "received_at_ms": 1,
        "correlation_id": "c",
        "raw": "{not json",
    }
    value = default_codec().encode(STRIPE_EVENT, record)
    result = processor.process(
        [InMessage(TOPICS.stripe_events, 0, b"cus_1", value)],
        lambda c, p: None,
        lambda e, p: None,
        1,
    )
    assert result.counts["unknown", "malformed"] == 1
    assert result.outputs == []


def test_a_repeated_dispute_opens_no_second_ticket(processor: BatchProcessor) -> None:
    pair = encoded_stripe("charge.dispute.created", "evt_d", 100, None, id="dp_1")
    first = processor.process(
        [message(pair), message(pair)], lambda c, p: None, lambda e, p: None, 1
    )
    assert len(by_topic(first, TOPICS.sink_helpdesk)) == 1
    later = processor.process([message(pair)], lambda c, p: None, lambda e, p: b"100", 1)
    assert later.outputs == []
    assert later.counts["charge.dispute.created", "duplicate"] == 1


@pytest.mark.parametrize(("live", "livemode"), [(False, True), (True, False)])
def test_an_event_of_the_other_mode_is_counted_and_never_folded(live: bool, livemode: bool) -> None:
    """Defence in depth behind ingest's 403: the worker re-checks ``livemode``."""
    processor = BatchProcessor(TOPICS, default_codec(), stuck_after_ms=3_600_000, live=live)

    def checkout(event_id: str, customer: str, livemode: bool) -> tuple[str, bytes]:
        body = stripe_body("checkout.session.completed", event_id, 100, customer)
        body["livemode"] = livemode
        return customer, default_codec().encode(STRIPE_EVENT, envelope(body, customer))

    batch = [
        message(checkout("evt_x", "cus_x", livemode)),
        message(checkout("evt_y", "cus_y", live)),
    ]
    result = processor.process(batch, lambda c, p: None, lambda e, p: None, 5)
    assert result.counts["checkout.session.completed", "mode_mismatch"] == 1
    assert set(result.records) == {"cus_y"}
    assert set(result.seen) == {"evt_y"}
    assert all(o.key == b"cus_y" for o in result.outputs)
    assert result.outputs


@pytest.mark.parametrize(
    ("delivered_by", "delivery"),
    [("webhook", "first"), ("reconcile", "reconcile"), ("demo", "first")],
)
def test_sink_commands_carry_how_their_cause_arrived(
    processor: BatchProcessor, delivered_by: str, delivery: str
) -> None:
    """The envelope's source reaches sink.crm, sink.helpdesk and customer.lifecycle, where it
    picks the sync latency's ``delivery`` label (an event ``reconcile`` recovered is no first
    delivery)."""
    failed = encoded_stripe(
        "invoice.payment_failed",
        "evt_2",
        200,
        "cus_1",
        billing_reason="subscription_cycle",
        attempt_count=2,
        id="in_9",
        delivered_by=delivered_by,
    )
    result = processor.process([message(failed)], lambda c, p: None, lambda e, p: None, 5)
    commands = [
        *by_topic(result, TOPICS.sink_crm),
        *by_topic(result, TOPICS.sink_helpdesk),
        *by_topic(result, TOPICS.customer_lifecycle),  # the product webhook's input
    ]
    assert len(commands) == 3
    for command in commands:
        assert command["source"] == delivered_by
        assert delivery_of(command, None) == delivery
