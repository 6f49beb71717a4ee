"""Read topics whole, then follow them: the one reader of every compacted "table" topic.

The admin's exception queue and sign-outs (``admin.kafka``) and the CRM sink's contact ids
(``sinks.contact_memory``) are topics every replica reads from the beginning with its own
assignment (no consumer group, nothing committed), so all replicas fold the same records
into the same state. Loading is done when every partition has been read up to the offset
it had when reading started; the embedded broker may report that end offset too high, so
a partition that stays silent for ``idle_s`` counts as read as well (never wait on a
high-watermark alone). After loading the feed keeps following the topics.

A subclass names its ``topics`` and folds records in ``apply``; ``on_loaded`` runs once,
in the feed's thread, when loading is done.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from paystream.errors import PaystreamError
from paystream.settings import CommonSettings


class FeedNotLoaded(PaystreamError):
    """Raised by ``wait_loaded`` when the topics could not be read whole in time."""


class Silent:
    """A logger that drops everything."""

    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *_a, **_k: None


class TopicFeed:
    """A thread that reads ``topics`` whole, then follows them, folding records in."""

    #: the reader's group id prefix (never joined: the consumer assigns its partitions)
    reader_name = "reader"
    #: the thread's name
    thread_name = "topic-feed"

    def __init__(
        self,
        settings: CommonSettings,
        topics: Sequence[str],
        *,
        idle_s: float = 2.0,
        quiet: bool = False,
        logger: str = "paystream",
    ) -> None:
        self.settings = settings
        self.topics: tuple[str, ...] = tuple(topics)
        self.log: Any = structlog.get_logger(logger) if not quiet else Silent()
        self.lock = threading.Lock()
        self.loaded = threading.Event()
        self.idle_s = idle_s
        self.records_read = 0
        #: why the feed stopped on its own (a missing topic, the broker gone), if it did
        self.error: str | None = None
        self._ended = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- to override
    def apply(self, messages: Iterable[Any]) -> None:
        """Fold a batch of consumed messages in (the feed's thread)."""
        raise NotImplementedError

    def on_loaded(self) -> None:
        """Called once, in the feed's thread, right after ``loaded`` is set."""

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait_loaded(self, timeout: float) -> None:
        """Return once loaded; FeedNotLoaded when the feed ended or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while not self.loaded.wait(0.1):
            if self._ended.is_set() or time.monotonic() > deadline:
                raise FeedNotLoaded(
                    self.error or f"{', '.join(self.topics)} could not be read from Kafka in time"
                )

    def run(self) -> None:
        consumer = Consumer(
            self.settings.consumer_config(
                f"{self.settings.topic_prefix}{self.reader_name}-{uuid.uuid4().hex[:8]}",
                **{"log_level": 0},
            )
        )
        try:
            ends = end_offsets(consumer, assign_whole(consumer, self.topics))
            last_seen = time.monotonic()
            while not self._stop.is_set():
                messages = consumer.consume(500, 0.2)
                now = time.monotonic()
                if messages:
                    last_seen = now
                    self.apply(messages)
                if not self.loaded.is_set() and caught_up(
                    consumer, ends, now - last_seen, self.idle_s
                ):
                    self.loaded.set()
                    self.on_loaded()
        except KafkaException as exc:
            self.error = str(exc.args[0]) if exc.args else type(exc).__name__
            self.log.warning("topic_feed_failed", topics=list(self.topics), error=self.error)
        finally:
            consumer.close()
            self._ended.set()

    def skipped(self, msg: Any, exc: Exception) -> None:
        """Log a record that could not be folded in (where it is, and the error's class)."""
        self.log.warning(
            "message_skipped",
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            error=type(exc).__name__,
        )


def assign_whole(consumer: Consumer, topics: Sequence[str]) -> list[TopicPartition]:
    """Assign every partition of ``topics`` from the beginning; KafkaException if one is
    missing (naming ``paystream topics``, which creates it)."""
    metadata = consumer.list_topics(timeout=10)
    partitions: list[TopicPartition] = []
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise KafkaException(f"topic {topic} missing: run `paystream topics`")
        partitions += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in found.partitions]
    consumer.assign(partitions)
    return partitions


def end_offsets(
    consumer: Consumer, partitions: Sequence[TopicPartition]
) -> dict[tuple[str, int], int]:
    """Each partition's end offset as the broker reports it now (0 when it will not say)."""
    ends: dict[tuple[str, int], int] = {}
    for tp in partitions:
        try:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=5
            )
        except KafkaException:
            high = 0
        ends[(tp.topic, tp.partition)] = high
    return ends


def caught_up(
    consumer: Consumer, ends: dict[tuple[str, int], int], idle: float, idle_s: float
) -> bool:
    """Every partition read up to its end offset, or nothing came for ``idle_s``."""
    if idle >= idle_s:
        return True
    positions = consumer.position([TopicPartition(topic, partition) for topic, partition in ends])
    for tp in positions:
        end = ends[(tp.topic, tp.partition)]
        if end > 0 and (tp.offset < 0 or tp.offset < end):
            return False
    return True
