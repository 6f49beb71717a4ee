"""Contract: the ticket the helpdesk sink renders from what the worker really emits.

Stripe events go through the real ``BatchProcessor`` and the Avro codec (the bytes on
``sink.helpdesk``); the sink's ``ticket_body`` renders the decoded command. A support
person must read money as ``USD 49.00`` (zero-decimal currencies as they are) and times as
dates — never raw cents, a unix time or "the amount due".
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from processors.lifecycle import ONBOARDING_DEADLINE
from processors.pipeline import BatchProcessor, InMessage
from schemas.codec import default_codec
from schemas.topics import Topics
from sinks.ticket_text import ticket_body
from tests.unit.processors.stripe_events import encoded_app, encoded_stripe

TOPICS = Topics("p.", 2)
DAY = 86_400
T0 = 1_767_225_600  # 1 Jan 2026 00:00 UTC


def tickets_for(batch: list[tuple[str, tuple[str, bytes]]]) -> list[dict[str, Any]]:
    """Run ``(topic, (key, value))`` pairs through the worker; the helpdesk commands out."""
    processor = BatchProcessor(TOPICS, default_codec(), stuck_after_ms=DAY * 1000)
    messages = [InMessage(topic, 0, key.encode(), value) for topic, (key, value) in batch]
    result = processor.process(messages, lambda c, p: None, lambda e, p: None, 5)
    codec = default_codec()
    return [
        codec.decode_as("helpdesk_command", o.value)
        for o in result.outputs
        if o.topic == TOPICS.sink_helpdesk
    ]


def rendered(command: dict[str, Any]) -> str:
    ticket = ticket_body(command)["ticket"]
    return ticket["subject"] + "\n" + ticket["comment"]["body"]


def failed_renewal(amount: int, currency: str) -> list[tuple[str, tuple[str, bytes]]]:
    return [
        (
            TOPICS.stripe_events,
            encoded_stripe(
                "invoice.payment_failed",
                "evt_f",
                T0,
                "cus_1",
                id="in_9",
                billing_reason="subscription_cycle",
                attempt_count=2,
                amount_due=amount,
                currency=currency,
                number="INV-0042",
                next_payment_attempt=T0 + 3 * DAY,
            ),
        )
    ]


@pytest.mark.parametrize(
    ("amount", "currency", "money", "raw"),
    [
        (4900, "usd", "USD 49.00", "4900"),
        (123456, "eur", "EUR 1,234.56", "123456"),
        (5000, "jpy", "JPY 5,000", "5000.00"),
    ],
)
def test_failed_renewal_ticket_shows_money_and_dates(
    amount: int, currency: str, money: str, raw: str
) -> None:
    (command,) = tickets_for(failed_renewal(amount, currency))
    assert command["failed_renewal"]["amount_due"] == amount  # typed in the schema
    text = rendered(command)
    assert f"Renewal payment failed twice ({money})" in text
    assert f"tried to charge {money} twice" in text
    assert "the amount due" not in text
    assert raw not in text.replace(money, "")
    assert "Next automatic retry: 4 Jan 2026, 00:00 UTC" in text
    assert "Invoice number: INV-0042" in text
    assert str(T0 + 3 * DAY) not in text


def test_chargeback_ticket_shows_amount_reason_and_deadline() -> None:
    (command,) = tickets_for(
        [
            (
                TOPICS.stripe_events,
                encoded_stripe(
                    "charge.dispute.created",
                    "evt_d",
                    T0,
                    "cus_2",
                    id="du_7",
                    amount=1000,
                    currency="usd",
                    reason="fraudulent",
                    evidence_details={"due_by": T0 + 10 * DAY + 3600},
                ),
            )
        ]
    )
    assert command["chargeback"]["amount"] == 1000
    text = rendered(command)
    assert "Chargeback opened for USD 10.00" in text
    assert "(reason: fraudulent)" in text
    assert "Evidence due by: 11 Jan 2026, 01:00 UTC" in text
    assert str(T0 + 10 * DAY + 3600) not in text


def test_onboarding_stuck_ticket_shows_since_when_as_a_date() -> None:
    commands = tickets_for(
        [
            (
                TOPICS.stripe_events,
                encoded_stripe("checkout.session.completed", "evt_c", T0, "cus_3"),
            ),
            (
                TOPICS.app_events,
                encoded_app(ONBOARDING_DEADLINE, "deadline:cus_3:evt_c", T0 + 2 * DAY, "cus_3"),
            ),
        ]
    )
    (command,) = [c for c in commands if c["trigger"] == "onboarding_stuck"]
    assert command["onboarding_stuck"] == {"opened_by_event_id": "evt_c", "opened_at": T0}
    text = rendered(command)
    assert "Onboarding open since: 1 Jan 2026, 00:00 UTC" in text
    assert not re.search(r"\b1[6-9]\d{8}\b", text), "a unix time reached the ticket"


def test_the_worker_writes_the_typed_facts_alone() -> None:
    (command,) = tickets_for(failed_renewal(4900, "usd"))
    assert command["facts"] == {}
    assert command["failed_renewal"]["amount_due"] == 4900


def test_a_v1_command_still_renders_its_amount() -> None:
    """Records written before the typed facts (v1) carried ``amount_due`` as a string."""
    (command,) = tickets_for(failed_renewal(4900, "usd"))
    # the string map a worker up to 0.1.0 wrote for this invoice, without the typed record
    old_facts = {"invoice": "in_9", "attempt_count": "2", "amount_due": "4900", "currency": "usd"}
    v1 = {**command, "failed_renewal": None, "facts": old_facts}
    assert "Renewal payment failed twice (USD 49.00)" in rendered(v1)
