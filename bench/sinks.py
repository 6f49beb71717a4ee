"""CRM sink: HubSpot requests per 100 contact writes, with and without the contact-id memory.

    flock /tmp/paystream-e2e.lock .venv/bin/python bench/sinks.py [CUSTOMERS]

The product's defaults throughout: ``PAYSTREAM_HUBSPOT_PLAN=professional`` (190 requests per
10 s) in the sink's limiter and in the HubSpot stand-in alike, batches of up to 100, the
stale guard on. For each path — the memory (``sink.crm.contacts``, the default) and the old
path without it (read by id, read by email, write), measured in the same run — it
pre-loads one ``sink.crm`` command per customer (default 1,000), all new customers with an
email, runs the real CRM sink on an embedded broker until every one is delivered, then
restarts the sink and sends each customer a second state change (known customers). It
prints requests per 100 writes of both kinds (targets: ≤ 1 known, ≤ 2 new, SPEC §6), their
ratio to the old path, and writes/s.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
from paystream.metrics import PaystreamMetrics
from paystream.runtime.broker import EmbeddedBroker
from paystream.runtime.topics_admin import ensure_topics
from schemas.codec import default_codec
from sinks.app import create_crm_sink
from sinks.hubspot import PLAN_LIMITS_PER_10S
from sinks.settings import SinkSettings

PLAN = "professional"
TARGETS = {"known": 1.0, "new": 2.0}


@dataclass(frozen=True)
class Phase:
    """One wave of writes: HubSpot requests it cost and how fast it went."""

    writes: int
    requests: int
    seconds: float
    #: writes delivered after the first batch, in ``seconds``
    timed: float

    @property
    def per_100(self) -> float:
        return 100 * self.requests / self.writes

    @property
    def rate(self) -> str:
        return f"{self.timed / self.seconds:,.0f}" if self.seconds > 0 else "n/a"


def produce(settings: SinkSettings, topic: str, items: list[tuple[str, bytes]]) -> None:
    """Produce ``(key, value)`` pairs and wait until the broker has them all."""
    producer = Producer(settings.producer_config())
    for key, value in items:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    if producer.flush(60):
        raise SystemExit("the embedded broker did not take the bench input")


def delivered(metrics: PaystreamMetrics) -> float:
    labels = {"sink": "crm", "outcome": "delivered"}
    return metrics.registry.get_sample_value("paystream_sink_requests_total", labels) or 0.0


def wave(
    settings: SinkSettings, hubspot: HubSpotStandin, memory: bool, state: str, at_s: int, n: int
) -> Phase:
    """Send one state change per customer through a freshly started sink."""
    codec = default_codec()
    commands = [crm_command(f"cus_{i}", state, at_s, email=f"c{i}@example.com") for i in range(n)]
    produce(
        settings,
        settings.topics.sink_crm,
        [(str(c["customer_id"]), codec.encode("crm_command", c)) for c in commands],
    )
    before = len(hubspot.requests)
    metrics = PaystreamMetrics()
    stop = threading.Event()
    service = create_crm_sink(settings, metrics, contact_ids=memory)
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    first: float | None = None
    first_n = 0.0
    deadline = time.monotonic() + 600
    while (done := delivered(metrics)) < n:
        if first is None and done:
            first, first_n = time.monotonic(), done
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done:.0f} of {n} writes were delivered")
        time.sleep(0.01)
    # writes/s after the first delivered batch (the group join and the memory's load before
    # it are start-up, not throughput)
    seconds = time.monotonic() - first if first is not None else 0.0
    stop.set()
    thread.join(30)
    return Phase(n, len(hubspot.requests) - before, seconds, n - first_n)


def run_path(bootstrap: str, hubspot: HubSpotStandin, memory: bool, n: int) -> dict[str, Phase]:
    settings = SinkSettings(
        paystream_env="development",
        kafka_bootstrap_servers=bootstrap,
        paystream_broker_profile="embedded",
        paystream_topic_prefix=f"b{uuid.uuid4().hex[:8]}.",
        paystream_topic_partitions=2,
        hubspot_api_base=hubspot.url,
        hubspot_access_token=hubspot.token,
        paystream_sink_writes="enabled",
        paystream_sinks_metrics_port=0,
        paystream_hubspot_plan=PLAN,
    )
    ensure_topics(bootstrap, settings.topics.specs())
    hubspot.reset()
    return {
        "new": wave(settings, hubspot, memory, "active", 1_700_000_000, n),
        "known": wave(settings, hubspot, memory, "payment_failed", 1_700_000_100, n),
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    quota = PLAN_LIMITS_PER_10S[PLAN]
    with EmbeddedBroker() as broker, HubSpotStandin(rate_limit=quota) as hubspot:
        old = run_path(broker.bootstrap_servers, hubspot, False, n)
        new = run_path(broker.bootstrap_servers, hubspot, True, n)
    print(
        f"customers={n} batch<=100 HubSpot plan={PLAN} ({quota} requests/10 s, sink and stand-in)"
    )
    for kind in ("new", "known"):
        mine, before = new[kind], old[kind]
        met = "met" if mine.per_100 <= TARGETS[kind] else "NOT met"
        print(
            f"crm {kind:5} customers: {mine.per_100:.2f} HubSpot requests per 100 writes"
            f" (target <= {TARGETS[kind]:.0f}, {met}); without the memory {before.per_100:.2f};"
            f" ratio {mine.per_100 / before.per_100:.2f};"
            f" {mine.rate} writes/s (without: {before.rate})"
        )


if __name__ == "__main__":
    main()
