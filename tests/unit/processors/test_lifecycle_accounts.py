"""The state of real accounts (SPEC §5): several subscriptions, one-off payments beside them,
asynchronous payment methods, declined sign-ups and trials. One row per case."""

from __future__ import annotations

from typing import Any

import pytest

from paystream.vocabulary import HANDLED_APP_EVENT_TYPES, HANDLED_STRIPE_EVENT_TYPES
from processors.lifecycle import (
    ACTIVE,
    CANCELED,
    ONBOARDING_PENDING,
    PAUSED,
    PAYMENT_FAILED,
    REFUNDED,
    CustomerRecord,
    Event,
    Subscription,
    apply,
    classify,
    derive_state,
)
from tests.unit.processors.stripe_events import app_event, stripe_event

C = "cus_A1"
PLAN, ADDON = "sub_plan", "sub_addon"
_n = iter(range(1, 10_000))


def ev(kind: str, created: int, previous: dict[str, Any] | None = None, **fields: Any) -> Event:
    return stripe_event(kind, f"evt_{next(_n):04d}", created, C, previous, **fields)


def sub(
    kind: str, created: int, subscription: str, status: str, previous: dict[str, Any] | None = None
) -> Event:
    """A ``customer.subscription.*`` event; ``previous`` is its ``previous_attributes``."""
    return ev(
        f"customer.subscription.{kind}",
        created,
        previous,
        id=subscription,
        status=status,
        pause_collection=None,
    )


def invoice(kind: str, created: int, subscription: str | None, **fields: Any) -> Event:
    """An invoice event in the pre-basil shape (``invoice.subscription``)."""
    fields.setdefault("id", f"in_{next(_n)}")
    return ev(kind, created, subscription=subscription, **fields)


def checkout(created: int, mode: str, status: str = "paid", **fields: Any) -> Event:
    kind = "checkout.session.completed"
    return ev(kind, created, mode=mode, payment_status=status, **fields)


def app(kind: str, created: int) -> Event:
    return app_event(kind, f"app_{next(_n)}", created, C, "user_1")


def fold(events: list[Event]) -> CustomerRecord:
    record = CustomerRecord(C)
    for event in events:
        record = apply(record, event).record
    return record


CASES: list[tuple[str, list[Event], str | None]] = [
    (
        "add-on canceled while the main plan is active: stays active",
        [
            invoice("invoice.paid", 100, PLAN),
            invoice("invoice.paid", 110, ADDON),
            sub("deleted", 200, ADDON, "canceled"),
        ],
        ACTIVE,
    ),
    (
        "both canceled: canceled",
        [
            invoice("invoice.paid", 100, PLAN),
            sub("deleted", 150, PLAN, "canceled"),
            sub("deleted", 200, ADDON, "canceled"),
        ],
        CANCELED,
    ),
    (
        "a one-off refund for a subscriber: stays active",
        [
            invoice("invoice.paid", 100, PLAN),
            checkout(150, "payment"),
            app("onboarding.completed", 160),
            ev("charge.refunded", 200, amount=900, amount_refunded=900),
        ],
        ACTIVE,
    ),
    (
        "a full refund of the only (one-off) payment: refunded",
        [checkout(100, "payment"), ev("charge.refunded", 200, amount=900, amount_refunded=900)],
        REFUNDED,
    ),
    (
        "a partial refund changes nothing",
        [checkout(100, "payment"), ev("charge.refunded", 200, amount=900, amount_refunded=100)],
        ONBOARDING_PENDING,
    ),
    ("ACH checkout unpaid: no state yet", [checkout(100, "payment", "unpaid")], None),
    (
        "ACH checkout unpaid, then async_payment_succeeded: onboarding opens",
        [
            checkout(100, "payment", "unpaid"),
            ev("checkout.session.async_payment_succeeded", 300, mode="payment"),
        ],
        ONBOARDING_PENDING,
    ),
    (
        "ACH checkout unpaid, then async_payment_failed: payment_failed",
        [
            checkout(100, "payment", "unpaid"),
            ev("checkout.session.async_payment_failed", 300, mode="payment"),
        ],
        PAYMENT_FAILED,
    ),
    (
        "async payment failed, later a one-off paid: active",
        [
            ev("checkout.session.async_payment_failed", 100, mode="payment"),
            app("onboarding.completed", 150),
            invoice("invoice.paid", 200, None),
        ],
        ACTIVE,
    ),
    (
        "a one-off invoice failed: payment_failed",
        [invoice("invoice.payment_failed", 100, None)],
        PAYMENT_FAILED,
    ),
    (
        "subscription checkout paid: onboarding opens",
        [checkout(100, "subscription", subscription=PLAN)],
        ONBOARDING_PENDING,
    ),
    ("setup-mode checkout: no state", [checkout(100, "setup", "no_payment_required")], None),
    (
        "card declined at sign-up: subscription.created incomplete",
        [sub("created", 100, PLAN, "incomplete")],
        PAYMENT_FAILED,
    ),
    (
        "incomplete, then incomplete_expired: canceled",
        [
            sub("created", 100, PLAN, "incomplete"),
            sub("updated", 200, PLAN, "incomplete_expired", {"status": "incomplete"}),
        ],
        CANCELED,
    ),
    (
        "incomplete, then paid: active",
        [sub("created", 100, PLAN, "incomplete"), invoice("invoice.paid", 200, PLAN)],
        ACTIVE,
    ),
    ("trialing: active", [sub("created", 100, PLAN, "trialing")], ACTIVE),
    ("subscription.created active: active", [sub("created", 100, PLAN, "active")], ACTIVE),
    (
        "trial ends unpaid: past_due",
        [
            sub("created", 100, PLAN, "trialing"),
            sub("updated", 200, PLAN, "past_due", {"status": "trialing"}),
        ],
        PAYMENT_FAILED,
    ),
    (
        "invoice.payment_action_required (3-D Secure) on a subscription: payment_failed",
        [
            invoice("invoice.paid", 100, PLAN),
            invoice("invoice.payment_action_required", 200, PLAN),
        ],
        PAYMENT_FAILED,
    ),
    (
        "invoice.payment_action_required on a one-off invoice: no state",
        [invoice("invoice.payment_action_required", 100, None)],
        None,
    ),
    (
        "any subscription failing wins over a paid one",
        [invoice("invoice.paid", 300, PLAN), invoice("invoice.payment_failed", 100, ADDON)],
        PAYMENT_FAILED,
    ),
    (
        "paid wins over paused",
        [sub("paused", 300, PLAN, "paused"), invoice("invoice.paid", 100, ADDON)],
        ACTIVE,
    ),
    ("paused alone: paused", [sub("paused", 100, PLAN, "paused")], PAUSED),
    (
        "pause_collection set on an active subscription: paused",
        [
            invoice("invoice.paid", 100, PLAN),
            ev(
                "customer.subscription.updated",
                200,
                {"pause_collection": None},
                id=PLAN,
                status="active",
                pause_collection={"behavior": "void"},
            ),
        ],
        PAUSED,
    ),
    (
        "a live subscription wins over any customer-level fact",
        [sub("paused", 100, PLAN, "paused"), invoice("invoice.paid", 300, None)],
        PAUSED,
    ),
    (
        "ended is terminal: a final invoice paid after cancellation",
        [sub("deleted", 100, PLAN, "canceled"), invoice("invoice.paid", 200, PLAN)],
        CANCELED,
    ),
    (
        "ended is terminal: a late update",
        [
            sub("deleted", 100, PLAN, "canceled"),
            sub("updated", 200, PLAN, "active", {"status": "past_due"}),
        ],
        CANCELED,
    ),
    (
        "a one-off payment after the subscription ended: active",
        [
            sub("deleted", 100, PLAN, "canceled"),
            app("onboarding.completed", 150),
            invoice("invoice.paid", 200, None),
        ],
        ACTIVE,
    ),
    (
        "a subscription ending after a one-off payment: canceled",
        [invoice("invoice.paid", 100, None), sub("deleted", 200, PLAN, "canceled")],
        CANCELED,
    ),
    (
        "subscription metadata changed: nothing",
        [sub("paused", 100, PLAN, "paused"), sub("updated", 200, PLAN, "active", {"metadata": {}})],
        PAUSED,
    ),
    (
        "same second on one subscription: failing beats paid (paid arrives last)",
        [
            invoice("invoice.payment_failed", 100, PLAN),
            invoice("invoice.paid", 100, PLAN, id="in_z"),
        ],
        PAYMENT_FAILED,
    ),
    (
        "same second on one subscription: failing beats paid (failed arrives last)",
        [
            invoice("invoice.paid", 100, PLAN, id="in_z"),
            invoice("invoice.payment_failed", 100, PLAN),
        ],
        PAYMENT_FAILED,
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_case(events: list[Event], expected: str | None) -> None:
    assert fold(events).state == expected
    assert fold(list(reversed(events))).state == expected


P = (1, 1, "evt_x")


@pytest.mark.parametrize(
    ("statuses", "fact", "onboarding_open", "expected"),
    [
        (("failing", "paid", "paused"), "paid", False, PAYMENT_FAILED),
        (("paid", "paused", "ended"), "failed", False, ACTIVE),
        (("paid",), None, True, ONBOARDING_PENDING),
        (("paused", "ended"), "paid", True, PAUSED),
        (("ended",), "paid", True, ONBOARDING_PENDING),
        (("ended",), "paid", False, ACTIVE),
        (("ended",), "failed", False, PAYMENT_FAILED),
        (("ended",), "refunded", False, REFUNDED),
        (("ended",), "ended", False, CANCELED),
        ((), None, True, None),
    ],
)
def test_derivation_order(
    statuses: tuple[str, ...], fact: str | None, onboarding_open: bool, expected: str | None
) -> None:
    subscriptions = tuple(Subscription(f"sub_{i}", s, P) for i, s in enumerate(statuses))
    assert derive_state(subscriptions, fact, onboarding_open) == expected


def test_a_subscription_keeps_its_status_and_since_when() -> None:
    record = fold(
        [
            invoice("invoice.paid", 100, PLAN),
            invoice("invoice.payment_failed", 200, ADDON),
            sub("deleted", 300, ADDON, "canceled"),
            invoice("invoice.paid", 400, ADDON),  # after cancellation: changes nothing
        ]
    )
    assert record.public()["subscriptions"] == [
        {"id": ADDON, "status": "ended", "since_ms": 300_000},
        {"id": PLAN, "status": "paid", "since_ms": 100_000},
    ]
    assert record.state == ACTIVE
    assert CustomerRecord.from_json(record.to_json()) == record


def test_an_event_passed_over_is_stale_and_the_cause_is_the_change() -> None:
    record = fold([sub("deleted", 100, PLAN, "canceled")])
    assert (record.cause_event_type, record.state) == ("customer.subscription.deleted", CANCELED)
    late = apply(record, invoice("invoice.paid", 200, PLAN))
    assert (late.outcome, late.effects, late.record) == ("stale", (), record)
    older = apply(record, invoice("invoice.paid", 50, ADDON))
    assert older.outcome == "applied"
    assert older.record.state == ACTIVE
    assert older.record.cause_event_type == "invoice.paid"


def test_an_older_event_of_the_same_subscription_is_stale() -> None:
    record = fold([invoice("invoice.paid", 200, PLAN)])
    applied = apply(record, invoice("invoice.payment_failed", 100, PLAN))
    assert (applied.outcome, applied.effects) == ("stale", ())


def minimal(kind: str) -> Event:
    """The smallest object that says something for ``kind``."""
    obj: dict[str, Any] = {"id": "obj_1", "customer": C, "status": "active"}
    obj.update(amount=1, amount_refunded=1, payment_status="paid", mode="payment")
    return Event("evt_1", kind, 100, C, object=obj)


@pytest.mark.parametrize("kind", HANDLED_STRIPE_EVENT_TYPES)
def test_every_event_type_to_enable_is_handled(kind: str) -> None:
    assert classify(minimal(kind)).handled


@pytest.mark.parametrize(
    "kind",
    [
        "checkout.session.expired",
        "invoice.finalized",
        "invoice.updated",
        "customer.subscription.trial_will_end",
        "charge.succeeded",
        "product.created",
    ],
)
def test_other_event_types_are_ignored(kind: str) -> None:
    assert not classify(minimal(kind)).handled
    assert apply(CustomerRecord(C), minimal(kind)).outcome == "ignored"


@pytest.mark.parametrize("kind", HANDLED_APP_EVENT_TYPES)
def test_every_app_event_type_is_handled(kind: str) -> None:
    assert classify(app_event(kind, "app_1", 100, C, "user_1")).handled
