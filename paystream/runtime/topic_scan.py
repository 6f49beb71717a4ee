"""Read whole topics once, from the beginning to where they ended when reading started.

For a command that needs everything a topic holds right now (``paystream forget`` looks
for one customer's dead letters and decisions): its own assignment, no consumer group,
nothing committed. A partition is read when its position reaches the end offset it had at
the start; the embedded broker may report that end too high, so once no record has come
for ``idle_s`` every partition counts as read (the admin's queue feed does the same).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from paystream.errors import PaystreamError
from paystream.settings import CommonSettings


class TopicScanFailed(PaystreamError):
    """Raised when a topic is missing or the broker stops answering during a scan."""


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def _assign(consumer: Any, topics: Sequence[str]) -> list[TopicPartition]:
    metadata = consumer.list_topics(timeout=10)
    partitions: list[TopicPartition] = []
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise TopicScanFailed(f"topic {topic} missing: run `paystream topics`")
        partitions += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in found.partitions]
    consumer.assign(partitions)
    return partitions


def _ends(consumer: Any, partitions: Sequence[TopicPartition]) -> dict[tuple[str, int], int]:
    ends: dict[tuple[str, int], int] = {}
    for tp in partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
        ends[(tp.topic, tp.partition)] = int(high)
    return ends


def _done(consumer: Any, ends: dict[tuple[str, int], int]) -> bool:
    for tp in consumer.position([TopicPartition(t, p) for t, p in ends]):
        end = ends[(tp.topic, tp.partition)]
        if end > 0 and tp.offset < end:  # a position below 0: nothing read there yet
            return False
    return True


def scan(
    settings: CommonSettings,
    topics: Sequence[str],
    *,
    idle_s: float = 2.0,
    timeout_s: float = 120.0,
) -> Iterator[Record]:
    """Every record of ``topics`` up to their ends; TopicScanFailed when that cannot be."""
    group = f"{settings.topic_prefix}scan-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(settings.consumer_config(group, **{"log_level": 0}))
    try:
        ends = _ends(consumer, _assign(consumer, topics))
        started = last_seen = time.monotonic()
        while not _done(consumer, ends):
            now = time.monotonic()
            if now - last_seen >= idle_s:
                return
            if now - started > timeout_s:
                raise TopicScanFailed(f"reading {', '.join(topics)} took over {timeout_s:g} s")
            for msg in consumer.consume(500, 0.2):
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                if msg.error() is not None or topic is None or partition is None or offset is None:
                    continue
                last_seen = time.monotonic()
                yield Record(topic, partition, offset, msg.key(), msg.value())
    except KafkaException as exc:
        raise TopicScanFailed(f"the broker stopped answering ({type(exc).__name__})") from None
    finally:
        consumer.close()
