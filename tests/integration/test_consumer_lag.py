"""Consumer lag from committed offsets on the real broker: per group and partition, with the
group's members, as ``paystream status`` shows it and the sinks export it for
``PaystreamConsumerLagGrowing``."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import generate_latest

from paystream.metrics import PaystreamMetrics
from paystream.runtime.lag import GroupLag, publish, read_lag
from paystream.settings import CommonSettings
from tests.kafka_helpers import produce

pytestmark = pytest.mark.broker


def wait_for(
    what: str, probe: Callable[[], GroupLag | None], ok: Callable[[GroupLag], bool]
) -> GroupLag:
    deadline = time.monotonic() + 30
    while True:
        found = probe()
        if found is not None and ok(found):
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {found}"
        time.sleep(0.3)


def test_lag_per_partition_and_members_of_a_group(pipeline_settings: CommonSettings) -> None:
    settings = pipeline_settings
    topic = settings.topics.sink_crm
    group = settings.topic_prefix + "sinks.crm"
    produce(settings, topic, [(f"cus_{i}", b"x") for i in range(6)])
    consumer = Consumer(settings.consumer_config(group))
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while len(consumer.assignment()) < 2:  # a member of the group, both partitions its own
        assert time.monotonic() < deadline, "no assignment"
        consumer.poll(0.2)
    # commit offset 0 on both partitions: everything produced is ahead of the group
    start = [TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)]
    consumer.commit(offsets=start, asynchronous=False)

    def probe() -> GroupLag | None:
        return read_lag(settings).get(group)

    # Exact figures are not asserted: the embedded broker's end offsets are wrong (the
    # module says so beside every figure); each partition's lag is what it reports.
    found = wait_for(
        "lag on both partitions and the member",
        probe,
        lambda g: len(g.partitions) == 2 and all(p.lag > 0 for p in g.partitions),
    )
    assert all(p.committed == 0 and p.lag == p.end for p in found.partitions)
    assert {(p.topic, p.partition) for p in found.partitions} == {(topic, 0), (topic, 1)}
    assert found.members in (1, -1)  # -1: a broker that does not describe groups

    metrics = PaystreamMetrics()
    publish(metrics, {group: found})
    text = generate_latest(metrics.registry).decode()
    for p in found.partitions:
        labels = f'group="{group}",partition="{p.partition}",topic="{topic}"'
        assert f"paystream_consumer_lag{{{labels}}} {float(p.lag)}" in text
    # a group that is gone leaves no series behind
    publish(metrics, {})
    assert "paystream_consumer_lag{" not in generate_latest(metrics.registry).decode()

    consumer.commit(
        offsets=[TopicPartition(topic, p.partition, p.end) for p in found.partitions],
        asynchronous=False,
    )
    assert wait_for("the commits", probe, lambda g: g.total == 0).total == 0
    consumer.close()
    assert wait_for("the member gone", probe, lambda g: g.members <= 0).total == 0
