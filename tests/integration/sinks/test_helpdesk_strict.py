"""Issue 9, helpdesk and HTTP: the sink against the strict Zendesk stand-in (keys that
expire after two hours, the different-body 400, answers lost after the ticket was made,
redirects, 200 without a ticket, keep-alive, malformed ids)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import SecretStr

from devstack._http_standin import Fault
from devstack.commands import helpdesk_command
from devstack.zendesk import ZendeskStandin
from paystream.metrics import PaystreamMetrics
from sinks.app import create_helpdesk_sink
from sinks.errors import RetryableSinkError
from sinks.settings import SinkSettings
from sinks.zendesk import ZendeskClient
from tests.integration.sinks.conftest import (
    RunningSink,
    dead_letters,
    final,
    final_results,
    send_commands,
)
from tests.kafka_helpers import consume, decode_all

pytestmark = pytest.mark.broker

Settings = Callable[..., SinkSettings]
HOURS = 3600.0


def client_of(zendesk: ZendeskStandin) -> ZendeskClient:
    return ZendeskClient(zendesk.url, zendesk.email, SecretStr(zendesk.token), 5)


def body(key: str, text: str = "b") -> dict[str, object]:
    return {"ticket": {"subject": "s", "comment": {"body": text}, "external_id": key}}


def test_an_answer_lost_after_the_ticket_was_made_never_makes_a_second_one(
    zendesk: ZendeskStandin,
) -> None:
    """The write happens, the answer is lost, the key expires (a long back-off): still one."""
    client = client_of(zendesk)
    zendesk.inject(Fault(None, 1, path="/api/v2/tickets"))  # GET lookup: answered
    zendesk.drop_answers("/api/v2/tickets", count=1)  # POST: made, answer lost
    with pytest.raises(RetryableSinkError):
        client.create_ticket("k1", body("k1"))
    assert len(zendesk.ticket_list()) == 1  # it was made
    zendesk.advance(3 * HOURS)  # Zendesk has forgotten the key
    again = client.create_ticket("k1", body("k1"))
    assert again.how == "found"
    assert len(zendesk.ticket_list()) == 1


def test_without_the_lookup_an_expired_key_would_make_a_second_ticket(
    zendesk: ZendeskStandin,
) -> None:
    """The stand-in is strict: it forgets keys after two hours (what the lookup guards)."""
    for _ in range(2):
        answer = client_of(zendesk).http.request(
            "POST", "/api/v2/tickets", body=body("k2"), headers={"Idempotency-Key": "k2"}
        )
        assert answer.status == 201
        zendesk.advance(2 * HOURS + 1)
    assert len(zendesk.ticket_list()) == 2


def test_same_key_different_body_is_400_and_means_look_it_up(zendesk: ZendeskStandin) -> None:
    client = client_of(zendesk)
    first = client.create_ticket("k3", body("k3", "first"))
    # the lookup misses (a lagging list), the key is still held with another body
    zendesk.inject(Fault(200, 1, path="/api/v2/tickets", body={"tickets": [], "next_page": None}))
    again = client.create_ticket("k3", body("k3", "a different text"))
    statuses = [(r.method, r.status) for r in zendesk.requests]
    assert ("POST", 400) in statuses  # IdempotentRequestError
    assert again.ticket_id == first.ticket_id and again.how == "found"
    assert len(zendesk.ticket_list()) == 1


def test_the_lookup_follows_pages(zendesk: ZendeskStandin) -> None:
    zendesk.per_page = 1
    client = client_of(zendesk)
    for _ in range(3):  # external ids need not be unique in Zendesk
        client.http.request("POST", "/api/v2/tickets", body=body("k4"))
    assert client.find_ticket("k4") == zendesk.ticket_list()[0]["id"]
    assert client.find_ticket("nothing") is None


def test_a_retry_the_next_day_finds_the_ticket(
    sink_settings: Settings, zendesk: ZendeskStandin, metrics: PaystreamMetrics
) -> None:
    """An exception-queue retry a day later, re-rendered with the requester turned off."""
    command = helpdesk_command("chargeback", "du_day")
    settings = sink_settings()
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", [command])
    with RunningSink(create_helpdesk_sink(settings, metrics)):
        final_results(settings, {command["idempotency_key"]})
    (ticket,) = zendesk.ticket_list()
    assert ticket["requester_email"] == "jenny@example.com"  # the customer, when known
    zendesk.advance(26 * HOURS)
    later = sink_settings(paystream_zendesk_set_requester=False)
    send_commands(later, later.topics.sink_helpdesk, "helpdesk_command", [command])
    with RunningSink(create_helpdesk_sink(later, metrics)):
        records = decode_all(
            consume(
                later,
                later.topics.sink_results,
                until=lambda m: len([r for r in decode_all(m) if r["outcome"] == "delivered"]) >= 2,
                timeout=90,
            )
        )
    delivered = [r for r in records if r["outcome"] == "delivered"]
    assert [r["reason_code"] for r in delivered] == [None, "ticket_exists"]
    assert len(zendesk.ticket_list()) == 1


def test_requester_setting_off_leaves_the_api_user_as_requester(
    sink_settings: Settings, zendesk: ZendeskStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(paystream_zendesk_set_requester=False)
    command = helpdesk_command("failed_renewal", "in_norq")
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", [command])
    with RunningSink(create_helpdesk_sink(settings, metrics)):
        final_results(settings, {command["idempotency_key"]})
    (ticket,) = zendesk.ticket_list()
    assert ticket["requester_email"] is None


def test_redirects_and_answers_without_a_ticket_are_permanent_never_success(
    sink_settings: Settings, zendesk: ZendeskStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings()
    redirected = helpdesk_command("chargeback", "du_redirect")
    no_ticket = helpdesk_command("chargeback", "du_200")
    zendesk.inject(Fault(None, 1, path="/api/v2/tickets"))  # lookup of the first
    zendesk.inject(
        Fault(307, 1, path="/api/v2/tickets", headers={"Location": zendesk.url + "/elsewhere"})
    )
    zendesk.inject(Fault(None, 1, path="/api/v2/tickets"))  # lookup of the second
    zendesk.inject(Fault(200, 1, path="/api/v2/tickets", body={"ticket": {"subject": "s"}}))
    send_commands(
        settings, settings.topics.sink_helpdesk, "helpdesk_command", [redirected, no_ticket]
    )
    with RunningSink(create_helpdesk_sink(settings, metrics)):
        results = final_results(
            settings, {redirected["idempotency_key"], no_ticket["idempotency_key"]}
        )
    first = final(results[redirected["idempotency_key"]])
    second = final(results[no_ticket["idempotency_key"]])
    assert (first["outcome"], first["reason_code"]) == ("dead_lettered", "redirected")
    assert (second["outcome"], second["reason_code"]) == ("dead_lettered", "unexpected_answer")
    assert not zendesk.requests_to("/elsewhere")  # never followed
    assert len(dead_letters(settings, 2)) == 2


def test_malformed_ids_dead_letter_one_command_and_calls_reuse_one_connection(
    sink_settings: Settings, zendesk: ZendeskStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings()
    good = [helpdesk_command("failed_renewal", f"in_ok{i}") for i in range(6)]
    newline = helpdesk_command("chargeback", "du_bad", idempotency_key="paystream:x:du\nbad")
    non_ascii = helpdesk_command("chargeback", "du_bäd", idempotency_key="paystream:x:du_bäd")
    commands = [good[0], newline, *good[1:3], non_ascii, *good[3:]]
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", commands)
    with RunningSink(create_helpdesk_sink(settings, metrics)):
        results = final_results(settings, {c["idempotency_key"] for c in commands})

    for bad in (newline, non_ascii):
        outcome = final(results[bad["idempotency_key"]])
        assert (outcome["outcome"], outcome["reason_code"]) == ("dead_lettered", "invalid_command")
    assert {final(results[c["idempotency_key"]])["outcome"] for c in good} == {"delivered"}
    assert len(zendesk.ticket_list()) == len(good)
    # one kept-alive connection for 12 calls, not a handshake per call
    assert len(zendesk.requests) == 2 * len(good)
    assert len(zendesk.connections) == 1
