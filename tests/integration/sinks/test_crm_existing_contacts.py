"""Issue 9, CRM: the sink against the strict HubSpot stand-in (one contact per email,
leads that exist before the customer, 409 or 207 conflicts, the daily limit)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
from paystream.metrics import PaystreamMetrics
from sinks.app import create_crm_sink
from sinks.settings import SinkSettings
from tests.integration.sinks.conftest import (
    RunningSink,
    dead_letters,
    final,
    final_results,
    send_commands,
)

pytestmark = pytest.mark.broker

Settings = Callable[..., SinkSettings]
EMPTY_READ = {"status": "COMPLETE", "results": [], "startedAt": "x", "completedAt": "x"}


def contacts_with(hubspot: HubSpotStandin, email: str) -> list[dict[str, object]]:
    return [
        c
        for c in hubspot.state()["contacts"]
        if str(c["properties"].get("email", "")).lower() == email.lower()
    ]


@pytest.mark.parametrize("race", [None, "409", "207"])
def test_a_lead_with_the_customers_email_is_linked_never_duplicated(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics, race: str | None
) -> None:
    """The lead from a website form receives the customer id and the billing state.

    ``race``: our reads miss the lead (it was created between read and write), so HubSpot
    itself refuses the upsert — a whole-batch 409 or a 207 with a per-input error; either
    way the next attempt reads the lead and links it.
    """
    lead = hubspot.seed_contact(email="Jenny@Example.com", firstname="Jenny")
    hubspot.multi_status = race == "207"
    if race is not None:
        hubspot.inject_read_answer(EMPTY_READ, count=2)  # both reads of the first attempt
    settings = sink_settings()
    commands = [
        crm_command("cus_J", "active", 1_700_000_100, email="jenny@example.com"),
        crm_command("cus_K", "active", 1_700_000_100, email="kim@example.com"),
    ]
    send_commands(settings, settings.topics.sink_crm, "crm_command", commands)
    with RunningSink(create_crm_sink(settings, metrics)):
        results = final_results(settings, {c["idempotency_key"] for c in commands})

    jenny = final(results[commands[0]["idempotency_key"]])
    assert (jenny["outcome"], jenny["reason_code"]) == ("delivered", "linked_existing_contact")
    linked = hubspot.contact_by("stripe_customer_id", "cus_J")
    assert linked is not None and linked["id"] == lead
    assert linked["properties"]["billing_state"] == "active"
    assert linked["properties"]["firstname"] == "Jenny"  # the lead's own data stays
    assert len(contacts_with(hubspot, "jenny@example.com")) == 1
    assert final(results[commands[1]["idempotency_key"]])["outcome"] == "delivered"
    if race is not None:
        conflicts = [r for r in hubspot.requests if r.status in (207, 409) and "upsert" in r.path]
        assert conflicts, "the race was not exercised"
        retries = [r for rs in results.values() for r in rs if r["outcome"] == "retry"]
        assert {r["reason_code"] for r in retries} == {"contact_conflict"}
    assert dead_letters(settings, 1, timeout=3) == []


def test_two_customers_with_one_email_never_merge_the_second_is_an_exception(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings()
    first = crm_command("cus_1", "active", 1_700_000_100, email="shared@example.com")
    second = crm_command("cus_2", "active", 1_700_000_200, email="shared@example.com")
    other = crm_command("cus_3", "active", 1_700_000_200, email="other@example.com")
    send_commands(settings, settings.topics.sink_crm, "crm_command", [first])
    with RunningSink(create_crm_sink(settings, metrics)):
        final_results(settings, {first["idempotency_key"]})
        send_commands(settings, settings.topics.sink_crm, "crm_command", [second, other])
        results = final_results(settings, {second["idempotency_key"], other["idempotency_key"]})

    refused = final(results[second["idempotency_key"]])
    assert (refused["outcome"], refused["reason_code"]) == (
        "dead_lettered",
        "email_held_by_other_customer",
    )
    assert final(results[other["idempotency_key"]])["outcome"] == "delivered"  # split off
    (letter,) = dead_letters(settings, 1)
    assert letter["reason_code"] == "email_held_by_other_customer"
    assert hubspot.contact_by("stripe_customer_id", "cus_2") is None  # nothing written
    (held,) = contacts_with(hubspot, "shared@example.com")
    assert held["properties"]["stripe_customer_id"] == "cus_1"


def test_an_email_changed_to_another_contacts_keeps_billing_current_and_flags_it(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings()
    hubspot.seed_contact(email="new@example.com", firstname="Lead")
    before = crm_command("cus_E", "active", 1_700_000_100, email="old@example.com")
    after = crm_command("cus_E", "payment_failed", 1_700_000_200, email="new@example.com")
    send_commands(settings, settings.topics.sink_crm, "crm_command", [before])
    with RunningSink(create_crm_sink(settings, metrics)):
        final_results(settings, {before["idempotency_key"]})
        send_commands(settings, settings.topics.sink_crm, "crm_command", [after])
        results = final_results(settings, {after["idempotency_key"]})

    outcome = final(results[after["idempotency_key"]])
    assert (outcome["outcome"], outcome["reason_code"]) == (
        "delivered",
        "email_held_by_other_contact",
    )
    customer = hubspot.contact_by("stripe_customer_id", "cus_E")
    assert customer is not None
    assert customer["properties"]["billing_state"] == "payment_failed"  # billing current
    assert customer["properties"]["email"] == "old@example.com"  # no silent merge
    assert len(contacts_with(hubspot, "new@example.com")) == 1
    (letter,) = dead_letters(settings, 1)  # and a person is asked to decide
    assert (letter["reason_code"], letter["idempotency_key"]) == (
        "email_held_by_other_contact",
        after["idempotency_key"],
    )


def test_a_state_change_and_a_contact_change_in_one_batch_keep_the_email(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    """The worker's order: a state change (no email yet), then the contact-only change
    carrying the email with the same change time and an older Stripe ``created``."""
    settings = sink_settings()
    commands = []
    for i in range(20):
        customer = f"cus_{i}"
        commands.append(crm_command(customer, "active", 1_700_000_200))
        commands.append(
            crm_command(
                customer,
                "active",
                1_700_000_200,
                email=f"c{i}@example.com",
                user_id=f"user_{i}",
                event_created=1_700_000_100,
                cause_event_id=f"evt_contact_{i}",
            )
        )
    send_commands(settings, settings.topics.sink_crm, "crm_command", commands)
    with RunningSink(create_crm_sink(settings, metrics)):
        final_results(settings, {c["idempotency_key"] for c in commands})

    for i in range(20):
        contact = hubspot.contact_by("stripe_customer_id", f"cus_{i}")
        assert contact is not None
        assert contact["properties"].get("email") == f"c{i}@example.com"
        assert contact["properties"].get("paystream_user_id") == f"user_{i}"


def test_the_daily_limit_pauses_the_sink_and_raises_the_gauge_never_dead_letters(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(paystream_sink_max_rate_limited=0, paystream_sink_max_attempts=1)
    hubspot.exhaust_daily_limit()
    command = crm_command("cus_D", "active", 1_700_000_100)
    send_commands(settings, settings.topics.sink_crm, "crm_command", [command])
    gauge = {"sink": "crm", "reason": "daily_limit_reached"}
    with RunningSink(create_crm_sink(settings, metrics)):
        deadline = time.monotonic() + 60
        while metrics.registry.get_sample_value("paystream_sink_paused", gauge) != 1:
            assert time.monotonic() < deadline, "the sink never paused"
            time.sleep(0.1)
        sent = len(hubspot.requests)
        time.sleep(2)  # paused: no request goes out, whatever the retry budgets say
        assert len(hubspot.requests) == sent

    daily = [r for r in hubspot.requests if r.status == 429]
    assert len(daily) == 1
    assert dead_letters(settings, 1, timeout=3) == []
    assert metrics.registry.get_sample_value("paystream_sink_paused", gauge) == 0
    assert hubspot.contact_by("stripe_customer_id", "cus_D") is None


def test_a_malformed_customer_id_dead_letters_that_command_only(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings()
    bad = [
        crm_command("cus_new\nline", "active", 1_700_000_100),
        crm_command("cus_bäd", "active", 1_700_000_100),
    ]
    good = [crm_command(f"cus_ok{i}", "active", 1_700_000_100) for i in range(4)]
    commands = [good[0], bad[0], good[1], bad[1], *good[2:]]
    send_commands(settings, settings.topics.sink_crm, "crm_command", commands)
    with RunningSink(create_crm_sink(settings, metrics)) as running:
        results = final_results(settings, {c["idempotency_key"] for c in commands})
        assert running.thread.is_alive()  # the process carries on

    for command in bad:
        outcome = final(results[command["idempotency_key"]])
        assert (outcome["outcome"], outcome["reason_code"]) == ("dead_lettered", "invalid_command")
    assert {final(results[c["idempotency_key"]])["outcome"] for c in good} == {"delivered"}
    assert all(hubspot.contact_by("stripe_customer_id", c["customer_id"]) for c in good)
    assert len(dead_letters(settings, 2)) == 2
