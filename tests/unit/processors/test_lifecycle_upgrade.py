"""Records written by the previous release (one ``base`` per customer) are read, upgraded and
folded on to the SPEC's state.

Each stored record below is what the previous release's ``CustomerRecord.to_json`` wrote
for the events named beside it (produced with that release's code, kept as bytes: what a
local table, a changelog or ``customer.lifecycle`` holds today).
"""

from __future__ import annotations

import json

import pytest

from processors.lifecycle import (
    ACTIVE,
    CANCELED,
    ONBOARDING_PENDING,
    PAYMENT_FAILED,
    REFUNDED,
    CustomerRecord,
    Event,
    apply,
)
from tests.unit.processors.stripe_events import app_event, stripe_event

C = "cus_A1"
_EMPTY = (
    '"email_position":null,"user_id_position":null,'
    '"onboarding_opened_by":null,"onboarding_completed_by":null,"tickets":[]}'
)
#: invoice.paid for sub_plan at t=100
PAID = (
    '{"customer_id":"cus_A1","state":"active","state_changed_at_ms":100000,'
    '"cause_event_id":"evt_1","cause_event_type":"invoice.paid","email":null,'
    '"user_id":null,"livemode":false,"base":"active","base_position":[100,1,"evt_1"],' + _EMPTY
)
#: invoice.paid at t=100, then invoice.payment_failed at t=200, both for sub_plan
FAILING = (
    '{"customer_id":"cus_A1","state":"payment_failed","state_changed_at_ms":200000,'
    '"cause_event_id":"evt_2","cause_event_type":"invoice.payment_failed","email":null,'
    '"user_id":null,"livemode":false,"base":"payment_failed",'
    '"base_position":[200,2,"evt_2"],' + _EMPTY
)
#: a paid one-off checkout at t=100 (email a@example.com), its full refund at t=200
REFUNDED_RECORD = (
    '{"customer_id":"cus_A1","state":"refunded","state_changed_at_ms":200000,'
    '"cause_event_id":"evt_2","cause_event_type":"charge.refunded","email":"a@example.com",'
    '"user_id":null,"livemode":false,"base":"refunded","base_position":[200,4,"evt_2"],'
    '"email_position":[100,"evt_1"],"user_id_position":null,"onboarding_opened_by":[100,"evt_1"],'
    '"onboarding_completed_by":null,"tickets":[]}'
)
#: a paid subscription checkout at t=100, onboarding open
ONBOARDING = (
    '{"customer_id":"cus_A1","state":"onboarding_pending","state_changed_at_ms":100000,'
    '"cause_event_id":"evt_1","cause_event_type":"checkout.session.completed","email":null,'
    '"user_id":null,"livemode":false,"base":"active","base_position":[100,1,"evt_1"],'
    '"email_position":null,"user_id_position":null,"onboarding_opened_by":[100,"evt_1"],'
    '"onboarding_completed_by":null,"tickets":[]}'
)


def invoice(kind: str, event_id: str, created: int, subscription: str) -> Event:
    return stripe_event(
        kind, event_id, created, C, None, id=f"in_{event_id}", subscription=subscription
    )


def deleted(event_id: str, created: int, subscription: str) -> Event:
    return stripe_event(
        "customer.subscription.deleted",
        event_id,
        created,
        C,
        None,
        id=subscription,
        status="canceled",
    )


CASES = [
    # the one subscription the old record knew ends: nothing live is left
    ("paid, then its subscription ends", PAID, [deleted("evt_3", 300, "sub_plan")], CANCELED),
    # a second subscription starts beside the old one: both paid
    (
        "paid, then an add-on is paid",
        PAID,
        [invoice("invoice.paid", "evt_3", 300, "sub_addon")],
        ACTIVE,
    ),
    # the failing subscription recovers
    ("failing, then paid", FAILING, [invoice("invoice.paid", "evt_3", 300, "sub_plan")], ACTIVE),
    # an add-on fails while the old subscription is paid: failing wins
    (
        "paid, then an add-on fails",
        PAID,
        [invoice("invoice.payment_failed", "evt_3", 300, "sub_addon")],
        PAYMENT_FAILED,
    ),
    # a refunded one-off customer subscribes: the subscription decides (its checkout opened
    # onboarding, never completed: active reads onboarding_pending)
    (
        "refunded, then subscribes",
        REFUNDED_RECORD,
        [invoice("invoice.paid", "evt_3", 300, "sub_plan")],
        ONBOARDING_PENDING,
    ),
    # onboarding completes on an upgraded record
    (
        "onboarding, then completed",
        ONBOARDING,
        [app_event("onboarding.completed", "app_3", 300, C, "user_1")],
        ACTIVE,
    ),
    # an event older than the stored base is stale, as it was
    (
        "paid, then an older failure",
        PAID,
        [invoice("invoice.payment_failed", "evt_0", 50, "sub_plan")],
        ACTIVE,
    ),
]


@pytest.mark.parametrize(
    ("stored", "events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_new_events_fold_into_an_upgraded_record(
    stored: str, events: list[Event], expected: str
) -> None:
    record = CustomerRecord.from_json(stored.encode())
    for event in events:
        record = apply(record, event).record
    assert record.state == expected
    # the upgraded record is a record of this release: it reads back as itself
    assert CustomerRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize("stored", [PAID, FAILING, REFUNDED_RECORD, ONBOARDING])
def test_an_upgraded_record_keeps_its_state_contact_and_onboarding(stored: str) -> None:
    old = CustomerRecord.from_json(stored.encode())
    fields = json.loads(stored)
    assert (old.state, old.email, old.cause_event_id) == (
        fields["state"],
        fields["email"],
        fields["cause_event_id"],
    )
    assert old.onboarding_open == (fields["onboarding_opened_by"] is not None)
    # replaying the event that set the old base changes nothing
    assert apply(old, Event(fields["cause_event_id"], "customer.updated", 1, C)).effects == ()


def test_a_refunded_record_reads_refunded_until_something_newer() -> None:
    record = CustomerRecord.from_json(REFUNDED_RECORD.encode())
    assert (record.state, record.customer_fact) == (REFUNDED, "refunded")
    assert record.subscriptions == ()
