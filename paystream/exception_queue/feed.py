"""The exception queue kept loaded from Kafka: ``sink.dlq``, ``sink.results`` and
``admin.exceptions`` read whole by a ``TopicFeed`` and folded into an ``ExceptionQueue``.

Every admin replica and ``paystream status`` run one, so they all show the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from paystream.exception_queue.fold import (
    RESOLVED,
    ExceptionQueue,
    Row,
    dead_letter_of,
    decision_of,
)
from paystream.runtime.topic_feed import TopicFeed
from paystream.settings import CommonSettings
from schemas.codec import DEAD_LETTER, EXCEPTION_STATUS, SINK_RESULT, SchemaError, default_codec


def cause_event_type(command: bytes) -> str:
    """The Stripe event type that caused a command ("" when the command cannot be read)."""
    try:
        _, record = default_codec().decode(command)
    except SchemaError:
        return ""
    return str(record.get("cause_event_type") or "")


class QueueFeed(TopicFeed):
    """Keeps ``queue`` up to date; ``on_resolved`` is called (in the feed's thread) with
    rows a delivery has just resolved, once the queue is loaded."""

    name = "admin-queue-feed"

    def __init__(
        self,
        settings: CommonSettings,
        queue: ExceptionQueue | None = None,
        *,
        idle_s: float = 2.0,
        on_resolved: Callable[[list[Row]], None] | None = None,
        quiet: bool = False,
    ) -> None:
        t = settings.topics
        super().__init__(
            settings,
            (t.sink_dlq, t.sink_results, t.admin_exceptions),
            idle_s=idle_s,
            quiet=quiet,
            logger="paystream.admin",
        )
        self.queue = queue if queue is not None else ExceptionQueue()
        self.on_resolved = on_resolved

    def on_loaded(self) -> None:
        with self.lock:
            unrecorded = self.queue.resolved_unrecorded()
        self.log.info("exception_queue_loaded", rows=self.open_count())
        if unrecorded and self.on_resolved is not None:
            self.on_resolved(unrecorded)

    def apply(self, messages: Iterable[Any]) -> None:
        """Fold a batch of consumed messages into the queue."""
        with self.lock:
            resolved = [row for rows in self.read_each(messages, self._fold_one) for row in rows]
        if resolved and self.loaded.is_set() and self.on_resolved is not None:
            self.on_resolved(resolved)

    def _fold_one(self, msg: Any) -> list[Row]:
        """Fold one record in; the rows it resolved (a delivery after a dead letter)."""
        dlq, results, decisions = self.topics
        codec = default_codec()
        topic = msg.topic()
        if topic == dlq:
            record = codec.decode_as(DEAD_LETTER, msg.value() or b"")
            command = bytes(record.get("command") or b"")
            dead = dead_letter_of(record, msg.partition(), msg.offset(), cause_event_type(command))
            self.queue.add_dead_letter(dead)
        elif topic == results:
            touched = self.queue.add_result(codec.decode_as(SINK_RESULT, msg.value() or b""))
            row = self.queue.row(touched) if touched else None
            if row is not None and row.status == RESOLVED:
                return [row]
        elif topic == decisions and msg.value():
            record = codec.decode_as(EXCEPTION_STATUS, msg.value())
            self.queue.add_decision(decision_of(record))
        return []

    def open_count(self) -> int:
        with self.lock:
            return self.queue.open_count


def read_queue(
    settings: CommonSettings, timeout: float = 30.0, idle_s: float = 2.0
) -> ExceptionQueue:
    """Read the queue once, as an admin replica would at start (for ``paystream status``)."""
    feed = QueueFeed(settings, idle_s=idle_s, quiet=True)
    feed.start()
    try:
        feed.wait_loaded(timeout)
    finally:
        feed.stop()
    return feed.queue
