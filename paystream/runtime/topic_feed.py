"""Reading topics whole, over and over: the shape every replica's view of a compacted
topic (the exception queue, ended admin sessions, remembered CRM contact ids) is built on.

A feed reads its topics from the beginning with its own assignment (no consumer group,
nothing committed), so every replica folds the same records into the same state. Loading
is done when every partition has been read up to the offset it had when reading started;
the embedded broker may report that end offset too high, so a partition that stays silent
for ``idle_s`` counts as read as well. Subclasses only say how a batch is folded in.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from paystream.errors import PaystreamError
from paystream.settings import CommonSettings
from schemas.codec import SchemaError

T = TypeVar("T")
#: what a record that cannot be read raises: it is logged and skipped, never fatal
UNREADABLE = (SchemaError, KeyError, TypeError, ValueError)


class FeedNotLoaded(PaystreamError):
    """Raised when a feed's topics have not been read whole yet (within the wait)."""


class _Silent:
    """A logger that drops everything."""

    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *_a, **_k: None


class TopicFeed:
    """A thread that keeps some state up to date from ``topics``, read from the beginning.

    The state is read by other threads and written by this one: both hold ``lock``.
    """

    #: what the thread is called, and what its "loaded" log line and error say
    name = "topic-feed"

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
        #: a command printing a screen keeps the feed's log lines to itself
        self.log: Any = structlog.get_logger(logger) if not quiet else _Silent()
        self.lock = threading.Lock()
        self.loaded = threading.Event()
        self.idle_s = idle_s
        self.records_read = 0
        #: why the feed stopped on its own (a missing topic, the broker gone), if it did
        self.error: str | None = None
        self._ended = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- what subclasses say
    def apply(self, messages: Iterable[Any]) -> None:
        """Fold a batch of consumed messages into the state (holding ``lock``)."""
        raise NotImplementedError

    def on_loaded(self) -> None:
        """Called once, in the feed's thread, when the topics have been read whole."""

    def read_each(self, messages: Iterable[Any], read: Callable[[Any], T]) -> list[T]:
        """``read(message)`` for every message without a consumer error, counted in
        ``records_read``; one that cannot be read (``UNREADABLE``) is logged and skipped."""
        out: list[T] = []
        for msg in messages:
            if msg.error() is not None:
                continue
            self.records_read += 1
            try:
                out.append(read(msg))
            except UNREADABLE as exc:
                self.log.warning(
                    "message_skipped",
                    topic=msg.topic(),
                    partition=msg.partition(),
                    offset=msg.offset(),
                    error=type(exc).__name__,
                )
        return out

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait_loaded(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.loaded.wait(0.1):
            if self._ended.is_set() or time.monotonic() > deadline:
                raise FeedNotLoaded(
                    self.error or f"{', '.join(self.topics)} could not be read from Kafka in time"
                )

    def run(self) -> None:
        consumer = Consumer(
            self.settings.consumer_config(
                f"{self.settings.topic_prefix}{self.name}-{uuid.uuid4().hex[:8]}",
                background=True,
                **{"log_level": 0},
            )
        )
        try:
            self._read(consumer)
        except KafkaException as exc:
            self.error = str(exc.args[0]) if exc.args else type(exc).__name__
            self.log.warning("feed_failed", feed=self.name, error=self.error)
        finally:
            consumer.close()
            self._ended.set()

    def _read(self, consumer: Consumer) -> None:
        ends = self._end_offsets(consumer, self._assign(consumer))
        last_seen = time.monotonic()
        while not self._stop.is_set():
            messages = consumer.consume(500, 0.2)
            now = time.monotonic()
            if messages:
                last_seen = now
                self.apply(messages)
            if not self.loaded.is_set() and self._caught_up(consumer, ends, now - last_seen):
                self.loaded.set()
                self.on_loaded()

    # ---------------------------------------------------------------- reading
    def _assign(self, consumer: Consumer) -> list[TopicPartition]:
        metadata = consumer.list_topics(timeout=10)
        partitions: list[TopicPartition] = []
        for topic in self.topics:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                raise KafkaException(f"topic {topic} missing: run `paystream topics`")
            partitions += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in found.partitions]
        consumer.assign(partitions)
        return partitions

    @staticmethod
    def _end_offsets(
        consumer: Consumer, partitions: Sequence[TopicPartition]
    ) -> dict[tuple[str, int], int]:
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

    def _caught_up(self, consumer: Consumer, ends: dict[tuple[str, int], int], idle: float) -> bool:
        if idle >= self.idle_s:
            return True
        positions = consumer.position(
            [TopicPartition(topic, partition) for topic, partition in ends]
        )
        for tp in positions:
            end = ends[(tp.topic, tp.partition)]
            if end > 0 and (tp.offset < 0 or tp.offset < end):
                return False
        return True
