"""Commands → HubSpot inputs and Zendesk tickets: tables and properties, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.commands import crm_command, helpdesk_command
from sinks import mapping


@pytest.mark.parametrize(
    ("livemode", "url"),
    [
        (False, "https://dashboard.stripe.com/test/customers/cus_9"),
        (True, "https://dashboard.stripe.com/customers/cus_9"),
    ],
)
def test_customer_dashboard_url_by_mode(livemode: bool, url: str) -> None:
    assert mapping.customer_dashboard_url("cus_9", livemode) == url


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
    assert mapping.object_dashboard_url(object_id, False) == url


def test_crm_input_has_the_spec_property_set() -> None:
    command = crm_command("cus_A", "payment_failed", 1_700_000_000, email="a@x.io", user_id="u1")
    assert mapping.crm_input(command) == {
        "idProperty": "stripe_customer_id",
        "id": "cus_A",
        "properties": {
            "stripe_customer_id": "cus_A",
            "billing_state": "payment_failed",
            "billing_state_changed_at": "2023-11-14T22:13:20.000Z",
            "email": "a@x.io",
            "paystream_user_id": "u1",
        },
    }


def test_crm_input_leaves_out_unknown_email_and_user() -> None:
    props = mapping.crm_input(crm_command())["properties"]
    assert "email" not in props
    assert "paystream_user_id" not in props


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("2023-11-14T22:13:20.000Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.123+00:00", 1_700_000_000_123),
        ("1700000000000", 1_700_000_000_000),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_parse_crm_datetime(value: str | None, ms: int | None) -> None:
    assert mapping.parse_crm_datetime(value) == ms


@given(st.integers(0, 4_102_444_800_000))
def test_iso8601_round_trips(ms: int) -> None:
    assert mapping.parse_crm_datetime(mapping.iso8601_ms(ms)) == ms


def test_coalesce_keeps_the_newest_state_per_customer() -> None:
    commands = [
        crm_command("cus_A", "onboarding_pending", 100),
        crm_command("cus_B", "active", 100),
        crm_command("cus_A", "payment_failed", 300),
        crm_command("cus_A", "active", 200),  # late, older than payment_failed
    ]
    upserts = mapping.coalesce_crm(commands)
    assert [(u.customer_id, u.input["properties"]["billing_state"]) for u in upserts] == [
        ("cus_A", "payment_failed"),
        ("cus_B", "active"),
    ]
    assert upserts[0].newest == 2
    assert upserts[0].covers == (0, 2, 3)
    assert upserts[1].covers == (1,)


def test_coalesce_tie_goes_to_the_later_command() -> None:
    commands = [crm_command("cus_A", "active", 100), crm_command("cus_A", "paused", 100)]
    assert mapping.coalesce_crm(commands)[0].input["properties"]["billing_state"] == "paused"


states = st.sampled_from(["active", "paused", "payment_failed", "canceled"])
crm_batches = st.lists(
    st.tuples(st.sampled_from(["cus_A", "cus_B", "cus_C"]), states, st.integers(1, 50)),
    min_size=1,
    max_size=40,
)


@given(crm_batches)
def test_coalesce_properties(batch: list[tuple[str, str, int]]) -> None:
    commands = [
        crm_command(c, s, t, cause_event_id=f"evt_{i}") for i, (c, s, t) in enumerate(batch)
    ]
    upserts = mapping.coalesce_crm(commands)
    # one input per customer: HubSpot refuses duplicate ids in one batch
    assert len({u.customer_id for u in upserts}) == len(upserts) == len({c for c, _, _ in batch})
    # every command is covered exactly once
    assert sorted(i for u in upserts for i in u.covers) == list(range(len(commands)))
    for u in upserts:
        newest = max(t for c, _, t in batch if c == u.customer_id)
        assert u.changed_at_ms == newest * 1000
        assert all(commands[i]["customer_id"] == u.customer_id for i in u.covers)


@pytest.mark.parametrize(
    ("held", "sent", "stale"),
    [
        ({}, ["cus_A"], []),
        ({"cus_A": None}, ["cus_A"], []),
        ({"cus_A": 99_000}, ["cus_A"], []),
        ({"cus_A": 100_000}, ["cus_A"], []),  # same time: re-sending is harmless
        ({"cus_A": 101_000}, [], ["cus_A"]),
    ],
)
def test_split_stale(held: dict[str, int | None], sent: list[str], stale: list[str]) -> None:
    upserts = mapping.coalesce_crm([crm_command("cus_A", "active", 100)])
    fresh, old = mapping.split_stale(upserts, held)
    assert [u.customer_id for u in fresh] == sent
    assert [u.customer_id for u in old] == stale


def test_current_changed_at_reads_a_batch_read_answer() -> None:
    answer: dict[str, Any] = {
        "results": [
            {
                "id": "1",
                "properties": {
                    "stripe_customer_id": "cus_A",
                    "billing_state_changed_at": "2023-11-14T22:13:20Z",
                },
            },
            {
                "id": "2",
                "properties": {"stripe_customer_id": "cus_B", "billing_state_changed_at": None},
            },
        ],
        "errors": [{"category": "OBJECT_NOT_FOUND", "context": {"ids": ["cus_C"]}}],
    }
    assert mapping.current_changed_at(answer) == {"cus_A": 1_700_000_000_000, "cus_B": None}


@given(st.integers(0, 450), st.integers(1, 150))
def test_chunks_respect_hubspots_limit(n: int, size: int) -> None:
    upserts = mapping.coalesce_crm([crm_command(f"cus_{i}") for i in range(n)])
    parts = mapping.chunks(upserts, size)
    assert all(1 <= len(p) <= min(size, 100) for p in parts)
    assert [u for p in parts for u in p] == upserts


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
    assert mapping.format_amount(amount, currency) == text


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
    ticket = mapping.ticket_body(command)["ticket"]
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
    body = mapping.ticket_body(helpdesk_command(livemode=True))["ticket"]["comment"]["body"]
    assert "https://dashboard.stripe.com/customers/cus_A" in body
    assert "/test/" not in body


def test_ticket_without_customer_still_says_so() -> None:
    command = helpdesk_command("chargeback", "du_7", customer="", email=None)
    ticket = mapping.ticket_body(command)["ticket"]
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
    first = mapping.ticket_body(command)
    assert first == mapping.ticket_body(dict(command))  # a replay sends the same request
    assert first["ticket"]["comment"]["body"].strip()
    assert first["ticket"]["subject"]
