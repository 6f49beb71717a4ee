"""The CRM sink's durable contact-id memory (sink.crm.contacts) on the real broker: rebuilt
by a restarted sink, shared by two replicas, and corrected when an id turns out wrong."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from pydantic import SecretStr

from devstack._http_standin import Fault
from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
from paystream.metrics import PaystreamMetrics
from paystream.vocabulary import ACTIVE, CANCELED, PAYMENT_FAILED
from schemas.codec import CONTACT_ID, default_codec
from sinks.app import create_crm_sink
from sinks.contact_ids import Remembered, email_key, from_record, to_record
from sinks.contact_memory import DurableContactMemory
from sinks.crm import CrmAdapter
from sinks.errors import RetryableSinkError
from sinks.hubspot import READ_PATH, UPDATE_PATH, UPSERT_PATH, HubSpotClient
from sinks.outcomes import STALE
from sinks.settings import SinkSettings
from tests.integration.sinks.conftest import RunningSink, final, final_results, send_commands
from tests.kafka_helpers import consume, produce

pytestmark = pytest.mark.broker

Settings = Callable[..., SinkSettings]
N = 100
READ, UPSERT, UPDATE = READ_PATH, UPSERT_PATH, UPDATE_PATH


def wave(settings: SinkSettings, state: str, at_s: int) -> set[str]:
    """A state change for each of N customers on sink.crm; their idempotency keys."""
    commands = [crm_command(f"cus_{i}", state, at_s, email=f"c{i}@example.com") for i in range(N)]
    send_commands(settings, settings.topics.sink_crm, "crm_command", commands)
    return {str(c["idempotency_key"]) for c in commands}


def deliver(settings: SinkSettings, keys: set[str]) -> None:
    results = final_results(settings, keys)
    assert {final(r)["outcome"] for r in results.values()} == {"delivered"}


def requests_since(hubspot: HubSpotStandin, start: int) -> list[Any]:
    return hubspot.requests[start:]


def remembered(settings: SinkSettings, customers: int) -> dict[str, Remembered]:
    """The newest record per customer in sink.crm.contacts, once ``customers`` have one."""
    codec = default_codec()

    def newest(messages: list[Any]) -> dict[str, Remembered]:
        out: dict[str, Remembered] = {}
        for m in messages:
            entry = from_record(codec.decode_as(CONTACT_ID, m.value()))
            held = out.get(m.key().decode())
            if held is None or entry.changed_at_ms >= held.changed_at_ms:
                out[m.key().decode()] = entry
        return out

    topic = settings.topics.crm_contacts
    return newest(consume(settings, topic, until=lambda m: len(newest(m)) >= customers))


def quiet_settings(sink_settings: Settings) -> SinkSettings:
    # a batch waits for all N commands (or a second), so "one request per batch" is exact
    return sink_settings(paystream_sink_batch_wait_s=1.0)


def test_a_restarted_sink_rebuilds_the_memory_and_known_customers_cost_one_request(
    sink_settings: Settings, hubspot: HubSpotStandin
) -> None:
    settings = quiet_settings(sink_settings)
    keys = wave(settings, ACTIVE, 1_700_000_100)
    with RunningSink(create_crm_sink(settings, PaystreamMetrics())):
        deliver(settings, keys)
    assert [r.path for r in hubspot.requests] == [READ, UPSERT]  # by email, then write

    keys = wave(settings, PAYMENT_FAILED, 1_700_000_200)
    start = len(hubspot.requests)
    with RunningSink(create_crm_sink(settings, PaystreamMetrics())):
        deliver(settings, keys)
        known = requests_since(hubspot, start)
    assert [r.path for r in known] == [UPDATE]
    states = {c["properties"]["billing_state"] for c in hubspot.state()["contacts"]}
    assert states == {PAYMENT_FAILED} and len(hubspot.state()["contacts"]) == N


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def delivered_by(metrics: PaystreamMetrics) -> float:
    labels = {"sink": "crm", "outcome": "delivered"}
    return metrics.registry.get_sample_value("paystream_sink_requests_total", labels) or 0.0


def test_two_replicas_share_what_one_learnt(
    sink_settings: Settings, hubspot: HubSpotStandin
) -> None:
    """Both replicas learn the new customers of their partitions; once one stops, the
    other updates all of them by contact id, having followed what the first one wrote."""
    settings = sink_settings()
    a_metrics, b_metrics = PaystreamMetrics(), PaystreamMetrics()
    a, b = create_crm_sink(settings, a_metrics), create_crm_sink(settings, b_metrics)
    group = {"group": a.group_id}

    def holding(metrics: PaystreamMetrics) -> float:
        gauge = "paystream_consumer_assigned_partitions"
        return metrics.registry.get_sample_value(gauge, group) or 0.0

    with RunningSink(b):
        with RunningSink(a):
            wait_for(lambda: holding(a_metrics) >= 1 and holding(b_metrics) >= 1, "two members")
            deliver(settings, wave(settings, ACTIVE, 1_700_000_100))
            assert delivered_by(a_metrics) > 0 and delivered_by(b_metrics) > 0
        wait_for(lambda: holding(b_metrics) >= settings.paystream_topic_partitions, "B holds all")
        start = len(hubspot.requests)
        deliver(settings, wave(settings, CANCELED, 1_700_000_200))
        paths = {r.path for r in requests_since(hubspot, start)}
    assert paths == {UPDATE}
    states = {c["properties"]["billing_state"] for c in hubspot.state()["contacts"]}
    assert states == {CANCELED} and len(hubspot.state()["contacts"]) == N


def test_a_wrong_contact_id_falls_back_to_the_reads_and_is_corrected(
    sink_settings: Settings, hubspot: HubSpotStandin
) -> None:
    settings = quiet_settings(sink_settings)
    keys = wave(settings, ACTIVE, 1_700_000_100)
    with RunningSink(create_crm_sink(settings, PaystreamMetrics())):
        deliver(settings, keys)
    contact = hubspot.contact_by("stripe_customer_id", "cus_0")
    assert contact is not None
    # cus_0's contact was merged away: the memory holds an id HubSpot no longer has
    wrong = Remembered("999999", 1_700_000_150_000, email_key("c0@example.com"))
    codec = default_codec()
    produce(
        settings,
        settings.topics.crm_contacts,
        [("cus_0", codec.encode(CONTACT_ID, to_record(wrong)))],
    )

    keys = wave(settings, CANCELED, 1_700_000_200)
    start = len(hubspot.requests)
    with RunningSink(create_crm_sink(settings, PaystreamMetrics())):
        deliver(settings, keys)
    paths = [r.path for r in requests_since(hubspot, start)]
    assert paths == [UPDATE, READ, UPSERT]  # the 404, then the new customers' way
    states = {c["properties"]["billing_state"] for c in hubspot.state()["contacts"]}
    assert states == {CANCELED} and len(hubspot.state()["contacts"]) == N
    corrected = remembered(settings, N)["cus_0"]
    assert corrected.contact_id == contact["id"] and corrected.changed_at_ms == 1_700_000_200_000


def test_an_update_whose_answer_is_lost_leaves_the_newer_state_remembered(
    sink_settings: Settings, hubspot: HubSpotStandin
) -> None:
    """The memory is written (and acknowledged) before the update by id: HubSpot applies a
    state and the answer is lost (as with a crash right after the call); a replica that then
    replays an older state finds the newer one remembered and sends nothing."""
    settings = sink_settings()
    client = HubSpotClient(hubspot.url, SecretStr(hubspot.token), 5.0)
    first = DurableContactMemory(settings)
    first.start(10)
    second = DurableContactMemory(settings)
    try:
        adapter = CrmAdapter(client, memory=first)
        send_one(adapter, ACTIVE, 1_700_000_100)
        hubspot.inject(Fault(None, path="/batch/update", drop=True))
        with pytest.raises(RetryableSinkError):
            send_one(adapter, CANCELED, 1_700_000_300)
        second.start(10)
        start = len(hubspot.requests)
        reasons = send_one(CrmAdapter(client, memory=second), PAYMENT_FAILED, 1_700_000_200)
        assert set(reasons.values()) == {STALE} and hubspot.requests[start:] == []
    finally:
        first.close()
        second.close()
        client.close()
    contact = hubspot.contact_by("stripe_customer_id", "cus_0")
    assert contact is not None and contact["properties"]["billing_state"] == CANCELED


def send_one(adapter: CrmAdapter, state: str, at_s: int) -> Mapping[int, str]:
    (call,) = adapter.plan([crm_command("cus_0", state, at_s, email="c0@example.com")])
    return adapter.send(call)
