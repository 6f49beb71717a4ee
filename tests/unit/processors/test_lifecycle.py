"""The lifecycle state machine of SPEC §5: one row per table line, then the edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from processors.lifecycle import (
    ACTIVE,
    CANCELED,
    ONBOARDING_DEADLINE,
    ONBOARDING_PENDING,
    PAUSED,
    PAYMENT_FAILED,
    REFUNDED,
    ContactChanged,
    CustomerRecord,
    Event,
    OpenTicket,
    StateChanged,
    apply,
    apply_orphan,
)
from tests.unit.processors.stripe_events import app_event, stripe_event

C = "cus_T1"
HOUR_MS = 3600 * 1000


def fold(events: list[Event], record: CustomerRecord | None = None) -> CustomerRecord:
    record = record or CustomerRecord(C)
    for event in events:
        record = apply(record, event, stuck_after_ms=HOUR_MS).record
    return record


#: the subscription of the invoice fixture: subscription events default to the same one
SUB = "sub_JsuPyCPhXWfZar"


def ev(kind: str, n: int, created: int, **fields: Any) -> Event:
    if kind.startswith("customer.subscription."):
        fields.setdefault("id", SUB)
    return stripe_event(kind, f"evt_{n}", created, C, **fields)


def checkout(n: int = 1, created: int = 100, **fields: Any) -> Event:
    return ev("checkout.session.completed", n, created, **fields)


def completed(n: int = 1, created: int = 100) -> Event:
    return app_event("onboarding.completed", f"app_{n}", created, C, "user_1")


def sub_updated(
    n: int, created: int, previous: dict[str, Any] | None = None, **fields: Any
) -> Event:
    fields.setdefault("id", SUB)
    return stripe_event("customer.subscription.updated", f"evt_{n}", created, C, previous, **fields)


# (description, events before, the event, expected state after)
ROWS: list[tuple[str, list[Event], Event, str | None]] = [
    ("checkout paid opens onboarding", [], checkout(), ONBOARDING_PENDING),
    (
        "checkout without payment needed",
        [],
        checkout(payment_status="no_payment_required"),
        ONBOARDING_PENDING,
    ),
    ("checkout unpaid sets no state", [], checkout(payment_status="unpaid"), None),
    ("checkout after onboarding completed", [completed(1, 50)], checkout(2, 100), ACTIVE),
    ("onboarding completed: pending -> active", [checkout(1, 100)], completed(2, 200), ACTIVE),
    (
        "onboarding completed while payment failed",
        [checkout(1, 100), ev("invoice.payment_failed", 2, 150)],
        completed(3, 200),
        PAYMENT_FAILED,
    ),
    ("invoice.paid -> active", [], ev("invoice.paid", 1, 100), ACTIVE),
    ("invoice.payment_succeeded -> active", [], ev("invoice.payment_succeeded", 1, 100), ACTIVE),
    (
        "invoice.paid while onboarding open",
        [checkout(1, 100)],
        ev("invoice.paid", 2, 200),
        ONBOARDING_PENDING,
    ),
    (
        "invoice.paid clears payment_failed",
        [ev("invoice.payment_failed", 1, 100)],
        ev("invoice.paid", 2, 200),
        ACTIVE,
    ),
    (
        "invoice.payment_failed",
        [ev("invoice.paid", 1, 100)],
        ev("invoice.payment_failed", 2, 200),
        PAYMENT_FAILED,
    ),
    (
        "subscription pause_collection set, status active",
        [ev("invoice.paid", 1, 100)],
        sub_updated(2, 200, {"pause_collection": None}, pause_collection={"behavior": "void"}),
        PAUSED,
    ),
    (
        "subscription status paused",
        [ev("invoice.paid", 1, 100)],
        sub_updated(2, 200, {"status": "active"}, status="paused"),
        PAUSED,
    ),
    (
        "subscription past_due",
        [ev("invoice.paid", 1, 100)],
        sub_updated(2, 200, {"status": "active"}, status="past_due"),
        PAYMENT_FAILED,
    ),
    (
        "subscription unpaid",
        [ev("invoice.paid", 1, 100)],
        sub_updated(2, 200, {"status": "past_due"}, status="unpaid"),
        PAYMENT_FAILED,
    ),
    (
        "subscription active from paused",
        [ev("customer.subscription.paused", 1, 100)],
        sub_updated(2, 200, {"status": "paused"}, status="active"),
        ACTIVE,
    ),
    (
        "subscription trialing from payment_failed",
        [ev("invoice.payment_failed", 1, 100)],
        sub_updated(2, 200, {"status": "past_due"}, status="trialing"),
        ACTIVE,
    ),
    (
        "subscription canceled",
        [ev("invoice.paid", 1, 100)],
        sub_updated(2, 200, {"status": "active"}, status="canceled"),
        CANCELED,
    ),
    (
        "subscription metadata change says nothing",
        [ev("customer.subscription.paused", 1, 100)],
        sub_updated(2, 200, {"metadata": {"x": None}}, status="active"),
        PAUSED,
    ),
    (
        "subscription.paused",
        [ev("invoice.paid", 1, 100)],
        ev("customer.subscription.paused", 2, 200),
        PAUSED,
    ),
    (
        "subscription.resumed",
        [ev("customer.subscription.paused", 1, 100)],
        ev("customer.subscription.resumed", 2, 200),
        ACTIVE,
    ),
    (
        "subscription.deleted",
        [ev("invoice.paid", 1, 100)],
        ev("customer.subscription.deleted", 2, 200),
        CANCELED,
    ),
    (
        "full refund of a one-off payment",
        [ev("invoice.paid", 1, 100, subscription=None)],
        ev("charge.refunded", 2, 200, amount=2500, amount_refunded=2500),
        REFUNDED,
    ),
    (
        "full refund while a subscription is paid: no change",
        [ev("invoice.paid", 1, 100)],
        ev("charge.refunded", 2, 200, amount=2500, amount_refunded=2500),
        ACTIVE,
    ),
    (
        "partial refund changes no state",
        [ev("invoice.paid", 1, 100)],
        ev("charge.refunded", 2, 200, amount=2500, amount_refunded=1000),
        ACTIVE,
    ),
    (
        "stale: older than the event that set the state",
        [ev("invoice.payment_failed", 2, 200)],
        ev("invoice.paid", 1, 100),
        PAYMENT_FAILED,
    ),
    (
        "late checkout still opens onboarding",
        [ev("invoice.paid", 2, 200)],
        checkout(1, 100),
        ONBOARDING_PENDING,
    ),
    (
        "same second: the stronger state wins (failed after paid)",
        [ev("invoice.paid", 9, 100)],
        ev("invoice.payment_failed", 1, 100),
        PAYMENT_FAILED,
    ),
    (
        "same second: the stronger state wins (paid after failed)",
        [ev("invoice.payment_failed", 1, 100)],
        ev("invoice.paid", 9, 100),
        PAYMENT_FAILED,
    ),
    (
        "same second: canceled beats payment_failed",
        [ev("customer.subscription.deleted", 1, 100)],
        ev("invoice.payment_failed", 2, 100),
        CANCELED,
    ),
    (
        "unhandled type: recorded, no effect",
        [ev("invoice.paid", 1, 100)],
        ev("product.created", 2, 200),
        ACTIVE,
    ),
]


@pytest.mark.parametrize(
    ("before", "event", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_table_row(before: list[Event], event: Event, expected: str | None) -> None:
    assert fold([*before, event]).state == expected


def test_state_change_effect_carries_the_cause() -> None:
    record = fold([ev("invoice.paid", 1, 100)])
    applied = apply(record, ev("invoice.payment_failed", 2, 200))
    assert applied.effects == (StateChanged(ACTIVE, PAYMENT_FAILED, 200_000),)
    assert applied.record.cause_event_id == "evt_2"
    assert applied.record.cause_event_type == "invoice.payment_failed"
    assert applied.record.state_changed_at_ms == 200_000
    assert applied.outcome == "applied"


def test_stale_event_is_reported_stale_and_emits_nothing() -> None:
    record = fold([ev("invoice.payment_failed", 2, 200)])
    applied = apply(record, ev("invoice.paid", 1, 100))
    assert applied.outcome == "stale"
    assert applied.effects == ()
    assert applied.record.cause_event_id == "evt_2"


def test_unhandled_event_is_ignored_and_leaves_the_record() -> None:
    record = fold([ev("invoice.paid", 1, 100)])
    applied = apply(record, ev("product.created", 2, 200))
    assert (applied.outcome, applied.effects, applied.record) == ("ignored", (), record)


def test_applying_an_event_twice_changes_nothing() -> None:
    events = [
        checkout(1, 100),
        ev("invoice.payment_failed", 2, 200, billing_reason="subscription_cycle", attempt_count=3),
    ]
    record = fold(events)
    for event in events:
        again = apply(record, event)
        assert again.record == record
        assert again.effects == ()


def test_changed_at_is_strictly_increasing_when_a_late_fact_changes_the_state() -> None:
    record = fold([ev("invoice.paid", 2, 200)])
    applied = apply(record, checkout(1, 100))
    assert applied.record.state == ONBOARDING_PENDING
    assert applied.record.state_changed_at_ms == 200_001
    assert applied.record.cause_event_id == "evt_1"


def test_email_and_user_id_are_kept() -> None:
    record = fold([checkout(1, 100), app_event("customer.linked", "app_9", 150, C, "user_42")])
    assert record.email == "billz@supabase.io"
    assert record.user_id == "user_42"
    record = fold([ev("invoice.paid", 3, 50, metadata={"user_id": "older"})], record)
    assert record.user_id == "user_42"  # the newest carrier wins


def test_contact_change_without_state_change_updates_the_crm() -> None:
    record = fold([ev("invoice.paid", 1, 100)])
    applied = apply(record, app_event("customer.linked", "app_1", 200, C, "user_7"))
    assert applied.effects == (ContactChanged(),)


# -- helpdesk tickets -------------------------------------------------------------------


def failed(
    n: int, created: int, attempt: int, reason: str = "subscription_cycle", invoice: str = "in_1"
) -> Event:
    return ev(
        "invoice.payment_failed",
        n,
        created,
        billing_reason=reason,
        attempt_count=attempt,
        id=invoice,
    )


def tickets(events: list[Event]) -> set[str]:
    record = CustomerRecord(C)
    opened: list[str] = []
    for event in events:
        applied = apply(record, event, stuck_after_ms=HOUR_MS)
        record = applied.record
        opened += [e.ticket.key for e in applied.effects if isinstance(e, OpenTicket)]
    assert len(opened) == len(set(opened)), "a ticket key opened twice"
    return set(opened)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([failed(1, 100, 1)], set()),
        ([failed(1, 100, 2)], {"paystream:failed_renewal:in_1"}),
        ([failed(1, 100, 2, reason="subscription_create")], set()),
        (
            [failed(1, 100, 2), failed(2, 200, 3), failed(3, 300, 4)],
            {"paystream:failed_renewal:in_1"},
        ),
        (
            [failed(1, 100, 2), failed(2, 200, 2, invoice="in_2")],
            {"paystream:failed_renewal:in_1", "paystream:failed_renewal:in_2"},
        ),
        (
            [ev("charge.dispute.created", 1, 100, id="dp_1")],
            {"paystream:chargeback:dp_1"},
        ),
    ],
    ids=[
        "first-attempt",
        "second-attempt",
        "not-a-renewal",
        "once-per-invoice",
        "two-invoices",
        "chargeback",
    ],
)
def test_ticket_triggers(events: list[Event], expected: set[str]) -> None:
    assert tickets(events) == expected


def test_chargeback_without_customer_is_an_orphan_ticket() -> None:
    dispute = stripe_event("charge.dispute.created", "evt_d", 100, None, id="dp_9")
    assert dispute.customer_id is None
    (effect,) = apply_orphan(dispute)
    assert isinstance(effect, OpenTicket)
    assert effect.ticket.key == "paystream:chargeback:dp_9"
    assert effect.ticket.details["charge_id"] == "ch_1IqtGAJDPojXS6LNstgEfUji"


def deadline(created: int) -> Event:
    return app_event(ONBOARDING_DEADLINE, f"deadline:{C}:evt_1", created, C)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([checkout(1, 1000), deadline(1000 + 3599)], set()),
        ([checkout(1, 1000), deadline(1000 + 3600)], {f"paystream:onboarding_stuck:{C}:evt_1"}),
        (
            [checkout(1, 1000), deadline(1000 + 3600), deadline(1000 + 7200)],
            {f"paystream:onboarding_stuck:{C}:evt_1"},
        ),
        ([checkout(1, 1000), completed(2, 2000), deadline(1000 + 3600)], set()),
        ([ev("invoice.paid", 1, 1000), deadline(1000 + 9999)], set()),
        # the earliest checkout is the one that opened onboarding
        (
            [checkout(5, 1500), checkout(1, 1000), deadline(9000)],
            {f"paystream:onboarding_stuck:{C}:evt_1"},
        ),
    ],
    ids=["not-yet", "due", "once", "completed", "never-opened", "earliest-opener"],
)
def test_onboarding_stuck(events: list[Event], expected: set[str]) -> None:
    assert tickets(events) == expected


def test_record_json_round_trip() -> None:
    record = fold([checkout(1, 100), failed(2, 200, 2), completed(3, 300)])
    assert CustomerRecord.from_json(record.to_json()) == record
    assert record.public()["billing_state"] == PAYMENT_FAILED
    assert record.public()["onboarding"] == "completed"
