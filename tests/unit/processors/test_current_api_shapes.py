"""Events in the shape of Stripe's current API versions (``2025-03-31.basil`` and later),
built from Stripe's own published objects (``tests/fixtures/stripe-openapi``, see its
NOTICE), read as the 2020-03-02 ones are: an invoice's subscription under
``parent.subscription_details``, charges without ``invoice``; and the same event id
rendered at two API versions (an endpoint upgrade) takes effect once."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ingest.envelope import parse_stripe_event
from processors.commands import helpdesk_command
from processors.lifecycle import (
    ACTIVE,
    ONBOARDING_PENDING,
    PAUSED,
    PAYMENT_FAILED,
    REFUNDED,
    CustomerRecord,
    Event,
    OpenTicket,
    apply,
    invoice_subscription,
)
from processors.pipeline import BatchProcessor, InMessage
from schemas.codec import default_codec
from schemas.topics import Topics
from sinks.ticket_text import ticket_body

OPENAPI = Path(__file__).resolve().parents[2] / "fixtures" / "stripe-openapi"
BASIL = "2025-03-31.basil"
C = "cus_QXg1o8vcGmoR32"  # the customer Stripe's invoice and subscription fixtures name


@cache
def _object(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OPENAPI / f"{name}.json").read_text())
    return loaded


def obj(name: str, **fields: Any) -> dict[str, Any]:
    """A copy of one of Stripe's published objects, with ``fields`` changed."""
    return {**copy.deepcopy(_object(name)), "customer": C, **fields}


def event(kind: str, event_id: str, created: int, data: dict[str, Any]) -> Event:
    return Event(event_id, kind, created, C, object=data)


def fold(*events: Event) -> CustomerRecord:
    record = CustomerRecord(C)
    for e in events:
        record = apply(record, e).record
    return record


def test_the_published_objects_are_of_the_current_shape() -> None:
    """What this file relies on: if Stripe's fixtures change shape, this says so first."""
    invoice = _object("invoice")
    assert invoice.get("subscription") is None
    assert invoice["parent"]["subscription_details"]["subscription"]
    assert "invoice" not in _object("charge")


def test_an_invoice_names_its_subscription_in_either_shape() -> None:
    current = obj("invoice")
    sub = current["parent"]["subscription_details"]["subscription"]
    legacy = {**obj("invoice"), "parent": None, "subscription": sub}
    assert invoice_subscription(current) == invoice_subscription(legacy) == sub
    assert invoice_subscription({**current, "parent": None}) is None  # a one-off invoice


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([event("invoice.paid", "evt_1", 100, obj("invoice", status="paid"))], ACTIVE),
        (
            [
                event("invoice.paid", "evt_1", 100, obj("invoice", status="paid")),
                event("invoice.payment_failed", "evt_2", 200, obj("invoice", status="open")),
            ],
            PAYMENT_FAILED,
        ),
        # a one-off invoice (no parent subscription) paid: the customer-level fact
        ([event("invoice.paid", "evt_1", 100, obj("invoice", parent=None))], ACTIVE),
        # Stripe's subscription fixture has pause_collection set
        ([event("customer.subscription.updated", "evt_1", 100, obj("subscription"))], PAUSED),
        (
            [
                event(
                    "charge.refunded",
                    "evt_1",
                    100,
                    obj("charge", amount_refunded=100, refunded=True),
                )
            ],
            REFUNDED,
        ),
        # ACH/SEPA: completed unpaid (Stripe's fixture), then the async result
        (
            [
                event("checkout.session.completed", "evt_1", 100, obj("checkout_session")),
                event(
                    "checkout.session.async_payment_succeeded",
                    "evt_2",
                    200,
                    obj("checkout_session", payment_status="paid"),
                ),
            ],
            ONBOARDING_PENDING,
        ),
        ([event("checkout.session.completed", "evt_1", 100, obj("checkout_session"))], None),
    ],
    ids=["paid", "then-failed", "one-off", "paused", "refunded", "async-paid", "async-waiting"],
)
def test_current_shapes_give_the_state(events: list[Event], expected: str | None) -> None:
    assert fold(*events).state == expected


def test_a_failed_renewal_ticket_names_its_subscription_in_the_current_shape() -> None:
    invoice = obj("invoice", billing_reason="subscription_cycle", attempt_count=2, status="open")
    failed = event("invoice.payment_failed", "evt_9", 300, invoice)
    applied = apply(CustomerRecord(C), failed)
    (ticket,) = [e.ticket for e in applied.effects if isinstance(e, OpenTicket)]
    sub = invoice["parent"]["subscription_details"]["subscription"]
    assert ticket.details["subscription_id"] == sub
    body = ticket_body(helpdesk_command(ticket, C, applied.record, failed, 1))
    assert f"Subscription: {sub}" in body["ticket"]["comment"]["body"]


def stripe_message(event_id: str, api_version: str, data: dict[str, Any]) -> InMessage:
    body = {
        "id": event_id,
        "object": "event",
        "api_version": api_version,
        "created": 100,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "invoice.paid",
        "data": {"object": data},
    }
    out = parse_stripe_event(
        json.dumps(body), live=False, received_at_ms=1, correlation_id=f"req-{api_version}"
    )
    assert out.record["api_version"] == api_version
    value = default_codec().encode(out.schema, out.record)
    return InMessage(TOPICS.stripe_events, 0, out.key.encode(), value)


TOPICS = Topics("p.", 2)


def test_one_event_at_two_api_versions_takes_effect_once() -> None:
    """Stripe's endpoint upgrade: the same event id rendered at the old and the new version
    (https://docs.stripe.com/webhooks/versioning), whichever comes first."""
    sub = "sub_upgrade"
    old = {**obj("invoice", status="paid"), "parent": None, "subscription": sub}
    new = obj("invoice", status="paid")
    new["parent"]["subscription_details"]["subscription"] = sub
    processor = BatchProcessor(TOPICS, default_codec(), stuck_after_ms=3_600_000)
    for first, second in ((old, new), (new, old)):
        versions = ("2020-03-02", BASIL) if first is old else (BASIL, "2020-03-02")
        batch = [
            stripe_message("evt_up", versions[0], first),
            stripe_message("evt_up", versions[1], second),
        ]
        result = processor.process(batch, lambda c, p: None, lambda e, p: None, 5)
        crm = [o for o in result.outputs if o.topic == TOPICS.sink_crm]
        assert len(crm) == 1
        assert result.counts["invoice.paid", "applied"] == 1
        assert result.counts["invoice.paid", "duplicate"] == 1
        # counted by version (paystream_events_total{api_version}): the upgrade is visible
        assert result.tally == {
            ("invoice.paid", "applied", versions[0]): 1,
            ("invoice.paid", "duplicate", versions[1]): 1,
        }
