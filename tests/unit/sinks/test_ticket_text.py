"""Helpdesk commands to Zendesk tickets: the text, the links, the amounts (sinks/ticket_text.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.commands import helpdesk_command
from paystream import vocabulary
from sinks import ticket_text


@pytest.mark.parametrize(
    ("livemode", "url"),
    [
        (False, "https://dashboard.stripe.com/test/customers/cus_9"),
        (True, "https://dashboard.stripe.com/customers/cus_9"),
    ],
)
def test_customer_dashboard_url_by_mode(livemode: bool, url: str) -> None:
    assert vocabulary.customer_dashboard_url("cus_9", livemode) == url


@pytest.mark.parametrize(
    ("object_id", "url"),
    [
        ("in_1", "https://dashboard.stripe.com/test/invoices/in_1"),
        ("du_1", "https://dashboard.stripe.com/test/disputes/du_1"),
        ("dp_1", "https://dashboard.stripe.com/test/disputes/dp_1"),
        ("cus_A:evt_1", None),
    ],
)
def test_object_dashboard_url(object_id: str, url: str | None) -> None:
    assert ticket_text.object_dashboard_url(object_id, False) == url


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("4900", "usd", "USD 49.00"),
        ("123456", "eur", "EUR 1,234.56"),
        ("5000", "jpy", "JPY 5,000"),
        ("12.5", "usd", "12.5 USD"),
        (None, "usd", None),
    ],
)
def test_format_amount(amount: str | None, currency: str, text: str | None) -> None:
    assert ticket_text.format_amount(amount, currency) == text


@pytest.mark.parametrize(
    ("trigger", "object_id", "priority", "subject_start", "link"),
    [
        (
            "failed_renewal",
            "in_9",
            "high",
            "Renewal payment failed twice (USD 49.00)",
            "invoices/in_9",
        ),
        ("chargeback", "du_9", "urgent", "Chargeback opened for USD 49.00", "disputes/du_9"),
        ("onboarding_stuck", "cus_A:evt_1", "normal", "Paid but onboarding not finished", None),
    ],
)
def test_ticket_for_each_trigger(
    trigger: str, object_id: str, priority: str, subject_start: str, link: str | None
) -> None:
    command = helpdesk_command(trigger, object_id)
    ticket = ticket_text.ticket_body(command)["ticket"]
    assert ticket["subject"] == f"{subject_start} — jenny@example.com"
    assert ticket["external_id"] == f"paystream:{trigger}:{object_id}"
    assert ticket["tags"] == ["paystream", trigger]
    assert ticket["priority"] == priority
    body = ticket["comment"]["body"]
    assert "https://dashboard.stripe.com/test/customers/cus_A" in body
    assert "What to do:" in body
    if link:
        assert f"https://dashboard.stripe.com/test/{link}" in body


def test_live_ticket_links_the_live_dashboard() -> None:
    body = ticket_text.ticket_body(helpdesk_command(livemode=True))["ticket"]["comment"]["body"]
    assert "https://dashboard.stripe.com/customers/cus_A" in body
    assert "/test/" not in body


def test_ticket_without_customer_still_says_so() -> None:
    command = helpdesk_command("chargeback", "du_7", customer="", email=None)
    ticket = ticket_text.ticket_body(command)["ticket"]
    assert "unknown customer" in ticket["subject"]
    assert "https://dashboard.stripe.com/test/disputes/du_7" in ticket["comment"]["body"]


@given(
    st.sampled_from(["failed_renewal", "chargeback", "onboarding_stuck", "something_new"]),
    st.dictionaries(
        st.sampled_from(["amount", "currency", "reason", "plan", "x"]), st.text(max_size=8)
    ),
    st.booleans(),
)
def test_ticket_body_is_a_pure_function(trigger: str, facts: dict[str, str], live: bool) -> None:
    command = helpdesk_command(trigger, "obj_1", facts=facts, livemode=live)
    first = ticket_text.ticket_body(command)
    assert first == ticket_text.ticket_body(dict(command))  # a replay sends the same request
    assert first["ticket"]["comment"]["body"].strip()
    assert first["ticket"]["subject"]
