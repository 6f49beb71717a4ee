"""The app-webhook sink on the real broker, posting to a local aiohttp receiver that stands
for the product's route handler: one signed POST per billing-state change of
``customer.lifecycle``, the same id when Kafka delivers a change again, 5xx retried, 4xx
dead-lettered into the exception queue."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from admin.kafka import QueueWriter
from paystream.exception_queue.feed import read_queue
from paystream.exception_queue.fold import retry_decisions
from paystream.metrics import PaystreamMetrics
from paystream.settings import CommonSettings
from sinks.app import RunnerService, create_app_webhook_sink
from sinks.notifications import notification_id
from sinks.settings import SinkSettings
from tests.integration.sinks.conftest import (
    RunningSink,
    dead_letters,
    final,
    final_results,
    send_commands,
)
from tests.kafka_helpers import consume, decode_all

pytestmark = pytest.mark.broker

SECRET = "app-webhook-secret-of-the-integration-test"
PATH = "/api/paystream/notifications"


@dataclass
class Receiver:
    """The product's endpoint: answers each customer's POSTs with its script of statuses
    (the last one for every later POST) and keeps what it received."""

    script: dict[str, list[int]]
    url: str = ""
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        customer = json.loads(raw)["stripe_customer_id"]
        statuses = self.script.get(customer, [200])
        seen = sum(
            1 for _, b, _ in self.received if json.loads(b)["stripe_customer_id"] == customer
        )
        status = statuses[min(seen, len(statuses) - 1)]
        self.received.append((dict(request.headers), raw, status))
        return web.json_response({"received": status < 300}, status=status)

    def bodies(self, customer: str) -> list[dict[str, Any]]:
        return [
            json.loads(b)
            for _, b, _ in self.received
            if json.loads(b)["stripe_customer_id"] == customer
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    # cus_refused: the app refuses, is fixed, and takes the exception queue's retry
    made = Receiver({"cus_flaky": [500, 200], "cus_refused": [400, 200]})
    app = web.Application()
    app.router.add_post(PATH, made.handle)
    runner = web.AppRunner(app)

    async def serve() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}{PATH}"

    made.url = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    yield made
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def change(customer: str, cause: str, previous: str | None, new: str) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    return {
        "customer_id": customer,
        "user_id": f"user_{customer}",
        "email": f"{customer}@example.com",
        "previous_state": previous,
        "new_state": new,
        "cause_event_id": cause,
        "cause_event_type": "invoice.paid",
        "event_created": now_ms // 1000 - 5,
        "changed_at_ms": now_ms,
        "received_at_ms": now_ms,
        "processed_at_ms": now_ms,
        "livemode": False,
        "correlation_id": f"req_{cause}",
    }


def signed(headers: dict[str, str], raw: bytes) -> bool:
    """The receiving side of the scheme, written here apart from paystream.signing."""
    parts = dict(p.split("=", 1) for p in headers["Paystream-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + raw, hashlib.sha256)
    fresh = abs(int(parts["t"]) - time.time()) < 300
    return fresh and hmac.compare_digest(expected.hexdigest(), parts["v1"])


def _settings(pipeline_settings: CommonSettings, url: str) -> SinkSettings:
    return SinkSettings(
        paystream_env="development",
        kafka_bootstrap_servers=pipeline_settings.kafka_bootstrap_servers,
        paystream_broker_profile=pipeline_settings.paystream_broker_profile,
        paystream_topic_prefix=pipeline_settings.topic_prefix,
        paystream_topic_partitions=pipeline_settings.paystream_topic_partitions,
        # dry-run: the product's own endpoint is posted to all the same
        paystream_sink_writes="dry-run",
        paystream_app_webhook_url=url,
        paystream_app_webhook_secret=SECRET,
        paystream_sink_max_attempts=3,
        paystream_sink_backoff_base_s=0.05,
        paystream_sink_backoff_max_s=0.2,
        paystream_sink_timeout_s=5.0,
    )


def test_one_signed_notification_per_change_retried_dead_lettered_and_replayed(
    pipeline_settings: CommonSettings, receiver: Receiver, metrics: PaystreamMetrics
) -> None:
    settings = _settings(pipeline_settings, receiver.url)
    pending = change("cus_ok", "evt_checkout", None, "onboarding_pending")
    changes = [
        pending,
        change("cus_ok", "evt_onboarded", "onboarding_pending", "active"),
        pending,  # the worker emitted the same change again (a replay after a crash)
        change("cus_flaky", "evt_failed", "active", "payment_failed"),
        change("cus_refused", "evt_paid", None, "active"),
    ]
    topic = settings.topics.customer_lifecycle
    send_commands(settings, topic, "lifecycle_change", changes)
    keys = [notification_id(c) for c in changes]
    service = create_app_webhook_sink(settings, metrics)
    assert isinstance(service, RunnerService)
    with RunningSink(service):
        results = final_results(settings, set(keys))
        (letter,) = dead_letters(settings, 1)
        rows = [r for r in read_queue(settings).visible() if r.sink == "app_webhook"]
        # a person retries the row from the exception queue: the same notification again
        writer = QueueWriter(settings)
        try:
            resent = writer.retry(rows, retry_decisions(rows, int(time.time() * 1000)), 0)
        finally:
            writer.close()
        assert len(resent) == 1
        consume(settings, settings.topics.sink_results, until=delivered(keys[4]), timeout=60)
        left = [r for r in read_queue(settings).visible() if r.sink == "app_webhook"]

    outcomes = {k: (final(results[k])["outcome"], final(results[k])["attempts"]) for k in keys}
    assert [outcomes[k] for k in keys] == [
        ("delivered", 1),
        ("delivered", 1),
        ("delivered", 1),
        ("delivered", 2),
        ("dead_lettered", 1),
    ]
    assert [r["outcome"] for r in results[keys[3]]] == ["retry", "delivered"]

    # one notification per change, in order, with the body SPEC §6 names (no email)
    ok = receiver.bodies("cus_ok")
    assert len({b["id"] for b in ok}) == 2
    assert ok[0] == {
        "id": keys[0],
        "type": "billing_state.changed",
        "created": pending["event_created"],
        "stripe_customer_id": "cus_ok",
        "user_id": "user_cus_ok",
        "previous_state": None,
        "state": "onboarding_pending",
    }
    assert ok[-1]["state"] == "active" and ok[-1]["id"] == keys[1]
    for headers, raw, _ in receiver.received:
        assert signed(headers, raw), headers
        assert headers["Content-Type"] == "application/json"
        assert b"@example.com" not in raw

    # 500, then 200: the same notification, retried
    flaky = receiver.bodies("cus_flaky")
    assert [b["id"] for b in flaky] == [keys[3], keys[3]]

    # 400: permanent, dead-lettered at once, an exception row for a person, whose retry
    # re-sends the same notification, and the row is resolved
    assert [b["id"] for b in receiver.bodies("cus_refused")] == [keys[4], keys[4]]
    assert (letter["sink"], letter["reason_code"], letter["attempts"]) == (
        "app_webhook",
        "bad_request",
        1,
    )
    assert (letter["source_topic"], letter["idempotency_key"]) == (topic, keys[4])
    assert letter["customer_id"] == "cus_refused"
    assert [(r.reason_code, r.dead_letter.customer_id, r.status) for r in rows] == [
        ("bad_request", "cus_refused", "open")
    ]
    assert left == []
    sample = metrics.registry.get_sample_value
    labels = {"sink": "app_webhook"}
    assert sample("paystream_sink_requests_total", {**labels, "outcome": "dead_lettered"}) == 1
    assert sample("paystream_sink_requests_total", {**labels, "outcome": "retry"}) == 1

    # Kafka delivers everything again (a new consumer group: offsets lost, a replica
    # reading from the start): the app gets the same ids, never a new one
    accepted = {json.loads(raw)["id"] for _, raw, status in receiver.received if status < 300}
    before = len(receiver.received)
    build = service.build_adapter
    replay = RunnerService("app_webhook_replay", settings, metrics, topic, build, writes=True)
    with RunningSink(replay):
        wait_for(lambda: len({json.loads(r)["id"] for _, r, _ in receiver.received[before:]}) >= 4)
    again = {json.loads(raw)["id"] for _, raw, _ in receiver.received[before:]}
    assert again == set(keys)
    assert {json.loads(raw)["id"] for _, raw, s in receiver.received if s < 300} == accepted


def delivered(key: str) -> Any:
    def done(messages: list[Any]) -> bool:
        return any(
            r["idempotency_key"] == key and r["outcome"] == "delivered"
            for r in decode_all(messages)
        )

    return done


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the replay did not post every change again"
        time.sleep(0.05)
