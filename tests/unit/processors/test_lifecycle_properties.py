"""Order and repetition never matter: hypothesis properties of the lifecycle (SPEC §5)."""

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

# (type, object fields, previous_attributes) — everything the state machine distinguishes
KINDS: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    ("checkout.session.completed", {}, None),
    ("checkout.session.completed", {"payment_status": "unpaid"}, None),
    ("invoice.paid", {}, None),
    ("invoice.payment_succeeded", {}, None),
    ("invoice.payment_failed", {"billing_reason": "subscription_cycle", "attempt_count": 1}, None),
    ("invoice.payment_failed", {"billing_reason": "subscription_cycle", "attempt_count": 2}, None),
    ("invoice.payment_failed", {"billing_reason": "subscription_cycle", "attempt_count": 3}, None),
    ("customer.subscription.updated", {"status": "past_due"}, {"status": "active"}),
    ("customer.subscription.updated", {"status": "active"}, {"status": "past_due"}),
    (
        "customer.subscription.updated",
        {"status": "active", "pause_collection": {"behavior": "void"}},
        {"pause_collection": None},
    ),
    ("customer.subscription.updated", {"status": "canceled"}, {"status": "active"}),
    ("customer.subscription.updated", {"status": "active"}, {"metadata": {}}),
    ("customer.subscription.paused", {}, None),
    ("customer.subscription.resumed", {}, None),
    ("customer.subscription.deleted", {}, None),
    ("charge.refunded", {"amount": 100, "amount_refunded": 100}, None),
    ("charge.refunded", {"amount": 100, "amount_refunded": 40}, None),
    ("charge.dispute.created", {}, None),
    ("customer.updated", {}, None),
    ("product.created", {}, None),
    ("app:onboarding.started", {}, None),
    ("app:onboarding.completed", {}, None),
    ("app:customer.linked", {}, None),
]


def build(index: int, kind: int, created: int, invoice: int) -> Event:
    event_type, fields, previous = KINDS[kind]
    if event_type.startswith("app:"):
        return app_event(event_type[4:], f"app_{index}", created, C, f"user_{index % 3}")
    fields = dict(fields)
    if event_type.startswith("invoice."):
        fields["id"] = f"in_{invoice}"
    if event_type == "charge.dispute.created":
        fields["id"] = f"dp_{invoice}"
    return stripe_event(event_type, f"evt_{index:03d}", created, C, previous, **fields)


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    size = draw(st.integers(min_value=1, max_value=12))
    events = []
    for index in range(size):
        kind = draw(st.integers(min_value=0, max_value=len(KINDS) - 1))
        created = 1_000 + draw(st.integers(min_value=0, max_value=8)) * 600  # ties included
        invoice = draw(st.integers(min_value=0, max_value=2))
        events.append(build(index, kind, created, invoice))
    return events


def run(events: list[Event]) -> tuple[CustomerRecord, set[str], str | None, int]:
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
    return record, set(tickets), last_crm, len(tickets)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), events=histories())
def test_any_permutation_and_duplication_ends_in_the_same_state_and_tickets(
    data: st.DataObject, events: list[Event]
) -> None:
    in_order = sorted(events, key=lambda e: (e.created, e.event_id))
    expected, expected_tickets, _, _ = run(in_order)

    duplicated = events + data.draw(st.lists(st.sampled_from(events), max_size=len(events) * 2))
    arrival = data.draw(st.permutations(duplicated))
    record, tickets, last_crm, _ = run(arrival)

    assert record.state == expected.state
    assert tickets == expected_tickets
    assert last_crm == record.state  # the last CRM state sent is the final state
    assert (record.email, record.user_id) == (expected.email, expected.user_id)
    assert record.base_position == expected.base_position


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
