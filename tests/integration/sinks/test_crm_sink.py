"""The CRM sink against the real broker and the HubSpot stand-in."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
from paystream.metrics import PaystreamMetrics
from schemas.codec import default_codec
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


def states_written(hubspot: HubSpotStandin, customer: str) -> list[str]:
    return [p["billing_state"] for c, p in hubspot.writes if c == customer]


def changed_written(hubspot: HubSpotStandin, customer: str) -> list[str]:
    return [p["billing_state_changed_at"] for c, p in hubspot.writes if c == customer]


def test_newest_state_per_customer_lands_in_the_crm(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings()
    commands = [
        crm_command("cus_A", "onboarding_pending", 1_700_000_100, email="a@example.com"),
        # an event `paystream reconcile` recovered: its latency is not a first delivery's
        crm_command("cus_B", "active", 1_700_000_100, user_id="user_b", source="reconcile"),
        crm_command("cus_A", "active", 1_700_000_200, email="a@example.com"),
        crm_command("cus_A", "payment_failed", 1_700_000_300, email="a@example.com"),
    ]
    send_commands(settings, settings.topics.sink_crm, "crm_command", commands)
    with RunningSink(create_crm_sink(settings, metrics)):
        results = final_results(settings, {c["idempotency_key"] for c in commands})

    assert {final(r)["outcome"] for r in results.values()} == {"delivered"}
    deliveries = {k: final(r)["delivery"] for k, r in results.items()}
    assert deliveries[commands[1]["idempotency_key"]] == "reconcile"
    assert sorted(deliveries.values()) == ["first", "first", "first", "reconcile"]
    a = hubspot.contact_by("stripe_customer_id", "cus_A")
    b = hubspot.contact_by("stripe_customer_id", "cus_B")
    assert a is not None and b is not None
    assert a["properties"]["billing_state"] == "payment_failed"
    assert a["properties"]["billing_state_changed_at"] == "2023-11-14T22:18:20.000Z"
    assert a["properties"]["email"] == "a@example.com"
    assert b["properties"]["paystream_user_id"] == "user_b"
    # never an older state after a newer one
    written = changed_written(hubspot, "cus_A")
    assert written == sorted(written)
    for request in hubspot.requests_to("batch/upsert"):
        assert request.headers.get("Content-Type") == "application/json"
        assert len(request.body["inputs"]) <= 100
    delivered = metrics.registry.get_sample_value(
        "paystream_sink_requests_total", {"sink": "crm", "outcome": "delivered"}
    )
    assert delivered == 4
    for delivery, count in (("first", 3), ("reconcile", 1)):
        labels = {"sink": "crm", "delivery": delivery}
        assert (
            metrics.registry.get_sample_value("paystream_sync_latency_seconds_count", labels)
            == count
        )


def test_an_older_state_never_overwrites_a_newer_one(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    """A replay after a crash re-sends an old command: the CRM already holds a newer state."""
    settings = sink_settings()
    newer = crm_command("cus_A", "canceled", 1_700_000_500)
    older = crm_command("cus_A", "active", 1_700_000_100)
    send_commands(settings, settings.topics.sink_crm, "crm_command", [newer])
    with RunningSink(create_crm_sink(settings, metrics)):
        final_results(settings, {newer["idempotency_key"]})
        send_commands(settings, settings.topics.sink_crm, "crm_command", [older])
        results = final_results(settings, {older["idempotency_key"]})

    outcome = final(results[older["idempotency_key"]])
    assert (outcome["outcome"], outcome["reason_code"]) == ("delivered", "stale")
    contact = hubspot.contact_by("stripe_customer_id", "cus_A")
    assert contact is not None and contact["properties"]["billing_state"] == "canceled"
    assert states_written(hubspot, "cus_A") == ["canceled"]


def test_a_burst_of_429s_is_ridden_out_with_no_loss(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(paystream_sink_batch_size=5)
    hubspot.fail_next(429, count=6, retry_after="1")
    commands = [crm_command(f"cus_{i}", "active", 1_700_000_000 + i) for i in range(12)]
    send_commands(settings, settings.topics.sink_crm, "crm_command", commands)
    with RunningSink(create_crm_sink(settings, metrics)):
        results = final_results(settings, {c["idempotency_key"] for c in commands})

    assert {final(r)["outcome"] for r in results.values()} == {"delivered"}
    stored = {c["properties"]["stripe_customer_id"] for c in hubspot.state()["contacts"]}
    assert stored == {c["customer_id"] for c in commands}
    assert sum(1 for r in hubspot.requests if r.status == 429) == 6
    retries = [r for rs in results.values() for r in rs if r["outcome"] == "retry"]
    assert retries and {r["reason_code"] for r in retries} == {"rate_limited"}
    assert dead_letters(settings, 1, timeout=3) == []


def test_a_5xx_storm_ends_in_the_dlq_after_the_bounded_attempts(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(paystream_sink_max_attempts=3)
    hubspot.fail_next(503, count=1000, path="batch/upsert")
    command = crm_command("cus_storm", "payment_failed", 1_700_000_000)
    send_commands(settings, settings.topics.sink_crm, "crm_command", [command])
    with RunningSink(create_crm_sink(settings, metrics)):
        results = final_results(settings, {command["idempotency_key"]})
        (letter,) = dead_letters(settings, 1)

    outcome = final(results[command["idempotency_key"]])
    assert (outcome["outcome"], outcome["reason_code"], outcome["attempts"]) == (
        "dead_lettered",
        "server_error",
        3,
    )
    assert len(hubspot.requests_to("batch/upsert")) == 3
    assert letter["reason_code"] == "server_error"
    assert letter["attempts"] == 3
    assert letter["sink"] == "crm"
    assert letter["source_topic"] == settings.topics.sink_crm
    assert "503" in letter["last_error"]
    assert default_codec().decode_as("crm_command", letter["command"]) == command
    assert hubspot.contact_by("stripe_customer_id", "cus_storm") is None


def test_a_permanent_400_goes_straight_to_the_dlq_and_spares_the_rest(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    """One invalid state in a batch: HubSpot refuses the batch, the sink isolates the culprit."""
    settings = sink_settings()
    good = [crm_command(f"cus_ok{i}", "active", 1_700_000_000) for i in range(3)]
    bad = crm_command("cus_bad", "on_vacation", 1_700_000_000)  # not a billing_state option
    send_commands(settings, settings.topics.sink_crm, "crm_command", [good[0], bad, *good[1:]])
    with RunningSink(create_crm_sink(settings, metrics)):
        results = final_results(settings, {c["idempotency_key"] for c in [*good, bad]})
        (letter,) = dead_letters(settings, 1)

    assert letter["idempotency_key"] == bad["idempotency_key"]
    assert (letter["reason_code"], letter["attempts"]) == ("bad_request", 1)
    assert "400" in letter["last_error"] and "VALIDATION_ERROR" in letter["last_error"]
    assert final(results[bad["idempotency_key"]])["outcome"] == "dead_lettered"
    assert all(final(results[c["idempotency_key"]])["outcome"] == "delivered" for c in good)
    assert all(hubspot.contact_by("stripe_customer_id", c["customer_id"]) for c in good)
    # no retry of a permanent error: one single-input upsert for the bad one
    singles = [
        r
        for r in hubspot.requests_to("batch/upsert")
        if [i["id"] for i in r.body["inputs"]] == ["cus_bad"]
    ]
    assert len(singles) == 1


def test_undecodable_command_is_dead_lettered_and_not_retried(
    sink_settings: Settings, hubspot: HubSpotStandin, metrics: PaystreamMetrics
) -> None:
    from tests.kafka_helpers import produce

    settings = sink_settings()
    produce(settings, settings.topics.sink_crm, [("cus_x", b"not avro at all")])
    with RunningSink(create_crm_sink(settings, metrics)):
        (letter,) = dead_letters(settings, 1)
    assert (letter["reason_code"], letter["command"]) == ("invalid_command", b"not avro at all")
    assert hubspot.requests == []


def test_client_side_rate_limit_keeps_the_api_from_saying_429(
    sink_settings: Settings, metrics: PaystreamMetrics
) -> None:
    strict = HubSpotStandin(rate_limit=4, rate_period_s=1.0)
    with strict:
        settings = sink_settings(
            hubspot_api_base=strict.url,
            paystream_hubspot_rate_limit=3,  # a margin under the API's own limit
            paystream_hubspot_rate_period_s=1.0,
            paystream_sink_batch_size=1,
        )
        commands = [crm_command(f"cus_r{i}", "active", 1_700_000_000) for i in range(6)]
        send_commands(settings, settings.topics.sink_crm, "crm_command", commands)
        with RunningSink(create_crm_sink(settings, metrics)):
            results = final_results(settings, {c["idempotency_key"] for c in commands})
        statuses = [r.status for r in strict.requests]
    assert {final(r)["outcome"] for r in results.values()} == {"delivered"}
    assert len(statuses) >= 12  # a read and an upsert per command
    assert 429 not in statuses
