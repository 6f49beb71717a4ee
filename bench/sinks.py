"""CRM sink throughput: writes to the HubSpot stand-in vs dry-run, measured in one run.

    .venv/bin/python bench/sinks.py [N]

Pre-loads N CRM commands (1,000 customers) on ``sink.crm`` of an embedded broker, runs the
real CRM sink (consumer group, batch upsert of up to 100, stale guard, results on
``sink.results``), and prints commands/s with writes on and in dry-run, and their ratio.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
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
from sinks.settings import SinkSettings

CUSTOMERS = 1000


def produce(settings: SinkSettings, topic: str, items: list[tuple[str, bytes]]) -> None:
    """Produce ``(key, value)`` pairs and wait until the broker has them all."""
    producer = Producer(settings.producer_config())
    for key, value in items:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    if producer.flush(60):
        raise SystemExit("the embedded broker did not take the bench input")


def run(bootstrap: str, hubspot: HubSpotStandin, writes: str, n: int) -> float:
    settings = SinkSettings(
        kafka_bootstrap_servers=bootstrap,
        paystream_broker_profile="embedded",
        paystream_topic_prefix=f"b{uuid.uuid4().hex[:8]}.",
        paystream_topic_partitions=2,
        hubspot_api_base=hubspot.url,
        hubspot_access_token=hubspot.token,
        paystream_sink_writes=writes,
        paystream_sinks_metrics_port=0,
    )
    ensure_topics(bootstrap, settings.topics.specs())
    codec = default_codec()
    commands = [crm_command(f"cus_{i % CUSTOMERS}", changed_s=1_700_000_000 + i) for i in range(n)]
    produce(
        settings,
        settings.topics.sink_crm,
        [(c["customer_id"], codec.encode("crm_command", c)) for c in commands],
    )
    stop = threading.Event()
    metrics = PaystreamMetrics()
    thread = threading.Thread(
        target=create_crm_sink(settings, metrics).run, args=(stop,), daemon=True
    )
    thread.start()
    first: float | None = None
    first_n = 0.0
    while True:
        done = sum(
            metrics.registry.get_sample_value(
                "paystream_sink_requests_total", {"sink": "crm", "outcome": outcome}
            )
            or 0
            for outcome in ("delivered", "dry_run")
        )
        if done and first is None:
            first, first_n = time.monotonic(), done
        if done >= n:
            break
        time.sleep(0.01)
    assert first is not None
    elapsed = time.monotonic() - first
    stop.set()
    thread.join(30)
    return (n - first_n) / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with EmbeddedBroker() as broker, HubSpotStandin(rate_limit=10**6) as hubspot:
        dry = run(broker.bootstrap_servers, hubspot, "dry-run", n)
        hubspot.reset()
        wet = run(broker.bootstrap_servers, hubspot, "enabled", n)
        requests = len(hubspot.requests)
    print(f"commands={n} customers={CUSTOMERS} batch<=100")
    print(f"dry-run   : {dry:8.0f} commands/s (no HTTP)")
    print(f"writes on : {wet:8.0f} commands/s (HubSpot stand-in, {requests} requests)")
    print(f"crm sink writes/dry-run throughput ratio: {wet / dry:.2f}")


if __name__ == "__main__":
    main()
