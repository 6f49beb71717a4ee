"""Order and repetition never matter: hypothesis properties of the lifecycle (SPEC §5).

Random histories of a customer with one to three subscriptions, one-off payments, refunds,
asynchronous checkout results, declined sign-ups, trials and app events, with invoices in
both payload shapes, folded in any order with repetitions, end in the state and the
tickets their ``created`` order gives.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.lifecycle import (
    ONBOARDING_DEADLINE,
    CustomerRecord,
    Event,
    OpenTicket,
    StateChanged,
    apply,
)
from tests.unit.processors.stripe_events import app_event, stripe_event

C = "cus_P1"
STUCK_MS = 3600 * 1000
CYCLE = {"billing_reason": "subscription_cycle"}

# (type, object fields, previous_attributes, about a subscription?) — everything the model
# distinguishes; "SUB" is replaced by the drawn subscription id
KINDS: list[tuple[str, dict[str, Any], dict[str, Any] | None, bool]] = [
    ("customer.subscription.created", {"status": "trialing"}, None, True),
    ("customer.subscription.created", {"status": "active"}, None, True),
    ("customer.subscription.created", {"status": "incomplete"}, None, True),
    ("customer.subscription.updated", {"status": "incomplete_expired"}, {"status": "x"}, True),
    ("customer.subscription.updated", {"status": "past_due"}, {"status": "active"}, True),
    ("customer.subscription.updated", {"status": "unpaid"}, {"status": "past_due"}, True),
    ("customer.subscription.updated", {"status": "active"}, {"status": "past_due"}, True),
    (
        "customer.subscription.updated",
        {"status": "active", "pause_collection": {"behavior": "void"}},
        {"pause_collection": None},
        True,
    ),
    ("customer.subscription.updated", {"status": "canceled"}, {"status": "active"}, True),
    ("customer.subscription.updated", {"status": "active"}, {"metadata": {}}, True),
    ("customer.subscription.paused", {"status": "paused"}, None, True),
    ("customer.subscription.resumed", {"status": "active"}, None, True),
    ("customer.subscription.deleted", {"status": "canceled"}, None, True),
    ("invoice.paid", {}, None, True),
    ("invoice.payment_succeeded", {}, None, True),
    ("invoice.payment_failed", {**CYCLE, "attempt_count": 1}, None, True),
    ("invoice.payment_failed", {**CYCLE, "attempt_count": 2}, None, True),
    ("invoice.payment_failed", {"billing_reason": "subscription_create"}, None, True),
    ("invoice.payment_action_required", {}, None, True),
    ("invoice.paid", {}, None, False),  # a one-off invoice
    ("invoice.payment_failed", {"billing_reason": "manual", "attempt_count": 2}, None, False),
    ("checkout.session.completed", {"mode": "subscription"}, None, True),
    ("checkout.session.completed", {"mode": "payment"}, None, False),
    ("checkout.session.completed", {"mode": "payment", "payment_status": "unpaid"}, None, False),
    ("checkout.session.async_payment_succeeded", {"mode": "payment"}, None, False),
    ("checkout.session.async_payment_failed", {"mode": "payment"}, None, False),
    ("charge.refunded", {"amount": 100, "amount_refunded": 100}, None, False),
    ("charge.refunded", {"amount": 100, "amount_refunded": 40}, None, False),
    ("charge.dispute.created", {}, None, False),
    ("customer.updated", {}, None, False),
    ("product.created", {}, None, False),
    ("app:onboarding.started", {}, None, False),
    ("app:onboarding.completed", {}, None, False),
    ("app:customer.linked", {}, None, False),
]


def build(index: int, kind: int, created: int, sub: int, obj: int, current: bool) -> Event:
    """One event; ``sub`` picks the subscription, ``obj`` the invoice/dispute, ``current``
    the payload shape of an invoice (basil's ``parent`` or the older ``subscription``)."""
    event_type, fields, previous, about_subscription = KINDS[kind]
    if event_type.startswith("app:"):
        return app_event(event_type[4:], f"app_{index}", created, C, f"user_{index % 3}")
    fields = dict(fields)
    subscription = f"sub_{sub}" if about_subscription else None
    if event_type.startswith("invoice."):
        fields["id"] = f"in_{obj}" if about_subscription else f"in_oneoff_{obj}"
        fields["subscription"] = None if current else subscription
        fields["parent"] = (
            {"type": "subscription_details", "subscription_details": {"subscription": subscription}}
            if current and subscription
            else None
        )
    elif event_type.startswith("customer.subscription."):
        fields["id"] = subscription
    elif event_type.startswith("checkout.session."):
        fields["subscription"] = subscription
    elif event_type == "charge.dispute.created":
        fields["id"] = f"dp_{obj}"
    return stripe_event(event_type, f"evt_{index:03d}", created, C, previous, **fields)


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    size = draw(st.integers(min_value=1, max_value=14))
    subscriptions = draw(st.integers(min_value=1, max_value=3))
    events = []
    for index in range(size):
        kind = draw(st.integers(min_value=0, max_value=len(KINDS) - 1))
        created = 1_000 + draw(st.integers(min_value=0, max_value=8)) * 600  # ties included
        sub = draw(st.integers(min_value=0, max_value=subscriptions - 1))
        obj = draw(st.integers(min_value=0, max_value=2))
        events.append(build(index, kind, created, sub, obj, draw(st.booleans())))
    return events


def run(events: list[Event]) -> tuple[CustomerRecord, set[str], str | None]:
    """Fold, then let the onboarding timer fire; return record, tickets, last CRM state."""
    record = CustomerRecord(C)
    tickets: list[str] = []
    last_crm: str | None = None
    latest = max(e.created for e in events)
    tick = app_event(ONBOARDING_DEADLINE, "deadline", latest + 7200, C)
    for event in [*events, tick]:
        applied = apply(record, event, stuck_after_ms=STUCK_MS)
        record = applied.record
        for effect in applied.effects:
            if isinstance(effect, OpenTicket):
                tickets.append(effect.ticket.key)
            if isinstance(effect, StateChanged):
                last_crm = effect.new_state
    assert len(tickets) == len(set(tickets)), "a ticket key fired twice"
    return record, set(tickets), last_crm


@settings(max_examples=300, deadline=None)
@given(data=st.data(), events=histories())
def test_any_permutation_and_duplication_ends_in_the_same_state_and_tickets(
    data: st.DataObject, events: list[Event]
) -> None:
    in_order = sorted(events, key=lambda e: (e.created, e.event_id))
    expected, expected_tickets, _ = run(in_order)

    duplicated = events + data.draw(st.lists(st.sampled_from(events), max_size=len(events) * 2))
    arrival = data.draw(st.permutations(duplicated))
    record, tickets, last_crm = run(arrival)

    assert record.state == expected.state
    assert tickets == expected_tickets
    assert last_crm == record.state  # the last CRM state sent is the final state
    assert (record.email, record.user_id) == (expected.email, expected.user_id)
    assert record.subscriptions == expected.subscriptions
    assert (record.customer_fact, record.customer_fact_position) == (
        expected.customer_fact,
        expected.customer_fact_position,
    )


@settings(max_examples=200, deadline=None)
@given(events=histories())
def test_changed_at_never_goes_backwards(events: list[Event]) -> None:
    record = CustomerRecord(C)
    for event in events:
        applied = apply(record, event, stuck_after_ms=STUCK_MS)
        for effect in applied.effects:
            if isinstance(effect, StateChanged):
                assert effect.changed_at_ms > record.state_changed_at_ms
        record = applied.record


@settings(max_examples=200, deadline=None)
@given(events=histories())
def test_an_ended_subscription_stays_ended(events: list[Event]) -> None:
    record = CustomerRecord(C)
    ended: set[str] = set()
    for event in events:
        record = apply(record, event, stuck_after_ms=STUCK_MS).record
        statuses = {s.subscription_id: s.status for s in record.subscriptions}
        assert all(statuses[s] == "ended" for s in ended)
        ended |= {s for s, status in statuses.items() if status == "ended"}


@settings(max_examples=200, deadline=None)
@given(events=histories())
def test_applying_any_event_again_changes_nothing(events: list[Event]) -> None:
    record = CustomerRecord(C)
    for event in events:
        record = apply(record, event, stuck_after_ms=STUCK_MS).record
    for event in events:
        again = apply(record, event, stuck_after_ms=STUCK_MS)
        assert (again.record, again.effects) == (record, ())
