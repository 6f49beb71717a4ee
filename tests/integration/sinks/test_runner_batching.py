"""Issue 14 (end-to-end latency): a batch keeps filling while the rate limit holds its call
back, and the runner commits a batch once its outcome records are acknowledged without
waiting for that before the next batch — never before."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from paystream.devstack.commands import crm_command
from paystream.metrics import PaystreamMetrics
from sinks.crm import CrmAdapter
from sinks.runner import SinkRunner
from sinks.settings import SinkSettings
from tests.integration.sinks.conftest import final_results, send_commands

pytestmark = pytest.mark.broker

Settings = Callable[..., SinkSettings]


class HeldCrm(CrmAdapter):
    """A dry-run CRM adapter whose rate limit holds calls back until ``release()``."""

    def __init__(self) -> None:
        super().__init__(None)
        self.asked = threading.Event()
        self.released = threading.Event()

    def ready_in(self) -> float:
        self.asked.set()
        return 0.0 if self.released.is_set() else 0.2

    def release(self) -> None:
        self.released.set()


class RecordingRunner(SinkRunner):
    """Remembers the size of every batch it processed."""

    sizes: list[int]

    def process(self, messages: Sequence[Message], stop: threading.Event) -> bool:
        self.sizes.append(len(messages))
        return super().process(messages, stop)


def _runner(
    settings: SinkSettings, metrics: PaystreamMetrics, adapter: CrmAdapter, group: str
) -> tuple[RecordingRunner, Consumer, Producer]:
    consumer = Consumer(settings.consumer_config(settings.topic_prefix + group))
    producer = Producer(settings.producer_config())
    runner = RecordingRunner(
        adapter=adapter,
        consumer=consumer,
        producer=producer,
        source_topic=settings.topics.sink_crm,
        results_topic=settings.topics.sink_results,
        dlq_topic=settings.topics.sink_dlq,
        writes_enabled=False,
        policy=settings.retry_policy(),
        metrics=metrics,
        batch_wait_s=0.01,
    )
    runner.sizes = []
    return runner, consumer, producer


def _committed(settings: SinkSettings, group: str) -> int:
    """Offsets committed by ``group`` on sink.crm, read by a consumer that never joins it."""
    partitions = [
        TopicPartition(settings.topics.sink_crm, p)
        for p in range(settings.paystream_topic_partitions)
    ]
    reader = Consumer(settings.consumer_config(settings.topic_prefix + group))
    try:
        return sum(max(tp.offset, 0) for tp in reader.committed(partitions, timeout=10))
    finally:
        reader.close()


def test_a_batch_keeps_filling_while_the_rate_limit_holds_its_call(
    sink_settings: Settings, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(paystream_sink_writes="dry-run")
    adapter = HeldCrm()
    runner, consumer, _producer = _runner(settings, metrics, adapter, "sinks.held")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    first = [crm_command("cus_first")]
    later = [crm_command(f"cus_later{i}") for i in range(9)]
    thread.start()
    try:
        send_commands(settings, settings.topics.sink_crm, "crm_command", first)
        assert adapter.asked.wait(60), "the runner never asked the rate limit"
        # the first command's call is held: these join its batch instead of waiting
        send_commands(settings, settings.topics.sink_crm, "crm_command", later)
        time.sleep(0.5)  # what is under test is that the runner waits (the rate limit)
        adapter.release()
        final_results(settings, {c["idempotency_key"] for c in first + later})
    finally:
        stop.set()
        thread.join(30)
        consumer.close()
    assert runner.sizes[0] == 10, runner.sizes


def test_batches_are_committed_once_their_outcomes_are_acknowledged(
    sink_settings: Settings, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(paystream_sink_writes="dry-run")
    runner, consumer, _producer = _runner(settings, metrics, CrmAdapter(None), "sinks.settle")
    commands = [crm_command(f"cus_settle{i}") for i in range(40)]
    send_commands(settings, settings.topics.sink_crm, "crm_command", commands)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        results = final_results(settings, {c["idempotency_key"] for c in commands})
        assert all(r[0]["outcome"] == "dry_run" for r in results.values())
        # committed while running (asynchronously, after the acknowledgements), not at stop
        deadline = time.monotonic() + 30
        while _committed(settings, "sinks.settle") < len(commands):
            assert time.monotonic() < deadline, "the processed batches were never committed"
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)
        consumer.close()
    assert not thread.is_alive()
