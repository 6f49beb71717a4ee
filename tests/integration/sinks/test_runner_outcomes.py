"""Issue 9: when a dead-letter or result record cannot be produced, the runner stops
without committing — it never commits past a record it failed to write."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from paystream.metrics import PaystreamMetrics
from sinks.errors import OutcomeNotWritten
from sinks.helpdesk import HelpdeskAdapter
from sinks.runner import SinkRunner
from sinks.settings import SinkSettings
from tests.kafka_helpers import produce

pytestmark = pytest.mark.broker

Settings = Callable[..., SinkSettings]


def test_a_dead_letter_that_cannot_be_written_stops_the_runner_uncommitted(
    sink_settings: Settings, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(paystream_sink_writes="dry-run")
    topic = settings.topics.sink_helpdesk
    # undecodable and large: its dead letter (which carries the bytes) exceeds the limit
    produce(settings, topic, [("cus_big", b"\x00not avro" + b"x" * 20_000)])
    group = settings.topic_prefix + "sinks.outcome-test"
    consumer = Consumer(settings.consumer_config(group))
    producer = Producer(settings.producer_config(**{"message.max.bytes": 4_000}))
    runner = SinkRunner(
        adapter=HelpdeskAdapter(None),
        consumer=consumer,
        producer=producer,
        source_topic=topic,
        results_topic=settings.topics.sink_results,
        dlq_topic=settings.topics.sink_dlq,
        writes_enabled=False,
        policy=settings.retry_policy(),
        metrics=metrics,
        batch_wait_s=0.5,
    )
    stop = threading.Event()
    timer = threading.Timer(60, stop.set)  # a safety net: the test fails, never hangs
    timer.start()
    try:
        with pytest.raises(OutcomeNotWritten, match=settings.topics.sink_dlq):
            runner.run(stop)
        assert not stop.is_set(), "the runner went on instead of stopping"
        partitions = [TopicPartition(topic, p) for p in range(settings.paystream_topic_partitions)]
        committed = consumer.committed(partitions, timeout=10)
        assert all(tp.offset < 0 for tp in committed), committed  # nothing committed
    finally:
        timer.cancel()
        consumer.close()
