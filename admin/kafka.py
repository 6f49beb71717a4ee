"""The queue's I/O: read ``sink.dlq``, ``sink.results`` and ``admin.exceptions`` into an
``ExceptionQueue``; write retries and dismissals back to Kafka.

Every admin replica (and ``paystream status``) reads the three topics whole with its own
assignment and follows them (``paystream.runtime.topic_feed.TopicFeed``: no consumer
group, nothing committed, loaded without trusting the embedded broker's end offsets), so
they all fold the same records into the same queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog
from confluent_kafka import Producer

from admin.errors import QueueNotLoaded, QueueUnavailable
from admin.queue import (
    DISMISSED_OUTCOME,
    RESOLVED,
    RETRIED_OUTCOME,
    Decision,
    ExceptionQueue,
    Row,
    dead_letter_of,
    decision_of,
    decision_record,
    intervention_result,
    resolved_decision,
)
from admin.sessions import Ended, SessionTable, ended_of, ended_record, fold, is_ended, prune
from paystream.runtime.topic_feed import FeedNotLoaded, TopicFeed
from paystream.settings import CommonSettings
from paystream.vocabulary import DELIVERY_HEADER, DELIVERY_RETRY
from schemas.codec import (
    ADMIN_SESSION,
    DEAD_LETTER,
    EXCEPTION_STATUS,
    SINK_RESULT,
    SchemaError,
    default_codec,
)

log = structlog.get_logger("paystream.admin")


def wall_ms() -> int:
    return int(time.time() * 1000)


def cause_event_type(command: bytes) -> str:
    """The Stripe event type that caused a command ("" when the command cannot be read)."""
    try:
        _, record = default_codec().decode(command)
    except SchemaError:
        return ""
    return str(record.get("cause_event_type") or "")


class QueueFeed(TopicFeed):
    """A thread that keeps an ``ExceptionQueue`` up to date from Kafka.

    ``queue`` is read by the web handlers and written by this thread: both hold ``lock``.
    ``on_resolved`` is called (in this thread) with rows a delivery has just resolved.
    """

    reader_name = "admin-reader"
    thread_name = "admin-queue-feed"

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
        topics = (t.sink_dlq, t.sink_results, t.admin_exceptions)
        #: ``paystream status`` prints a screen: the feed keeps its log lines to itself
        super().__init__(settings, topics, idle_s=idle_s, quiet=quiet, logger="paystream.admin")
        self.queue = queue if queue is not None else ExceptionQueue()
        self.on_resolved = on_resolved

    def wait_loaded(self, timeout: float) -> None:
        try:
            super().wait_loaded(timeout)
        except FeedNotLoaded as exc:
            raise QueueNotLoaded(
                self.error or "the exception queue could not be read from Kafka in time"
            ) from exc

    def on_loaded(self) -> None:
        with self.lock:
            unrecorded = self.queue.resolved_unrecorded()
        self.log.info("exception_queue_loaded", rows=self.open_count())
        if unrecorded and self.on_resolved is not None:
            self.on_resolved(unrecorded)

    def apply(self, messages: Iterable[Any]) -> None:
        """Fold a batch of consumed messages into the queue."""
        dlq, results, decisions = self.topics
        codec = default_codec()
        resolved: list[Row] = []
        with self.lock:
            for msg in messages:
                if msg.error() is not None:
                    continue
                self.records_read += 1
                topic = msg.topic()
                try:
                    if topic == dlq:
                        record = codec.decode_as(DEAD_LETTER, msg.value() or b"")
                        dead = dead_letter_of(
                            record,
                            msg.partition(),
                            msg.offset(),
                            cause_event_type(bytes(record.get("command") or b"")),
                        )
                        self.queue.add_dead_letter(dead)
                    elif topic == results:
                        record = codec.decode_as(SINK_RESULT, msg.value() or b"")
                        touched = self.queue.add_result(record)
                        row = self.queue.row(touched) if touched else None
                        if row is not None and row.status == RESOLVED:
                            resolved.append(row)
                    elif topic == decisions and msg.value():
                        record = codec.decode_as(EXCEPTION_STATUS, msg.value())
                        self.queue.add_decision(decision_of(record))
                except (SchemaError, KeyError, TypeError, ValueError) as exc:
                    self.skipped(msg, exc)
        if resolved and self.loaded.is_set() and self.on_resolved is not None:
            self.on_resolved(resolved)

    def open_count(self) -> int:
        with self.lock:
            return self.queue.open_count


class SessionFeed(QueueFeed):
    """Keeps a ``SessionTable`` up to date from ``admin.sessions``: read like the queue
    (from the beginning, no group), so every replica refuses the same ended sessions."""

    def __init__(self, settings: CommonSettings, max_age_ms: int, *, idle_s: float = 2.0) -> None:
        super().__init__(settings, idle_s=idle_s)
        self.topics = (settings.topics.admin_sessions,)
        self.table = SessionTable()
        self.max_age_ms = max_age_ms

    def on_loaded(self) -> None:
        self.log.info("admin_sessions_loaded", ended=len(self.table.ended))

    def apply(self, messages: Iterable[Any]) -> None:
        codec = default_codec()
        ended: list[Ended] = []
        for msg in messages:
            if msg.error() is not None or not msg.value():
                continue
            self.records_read += 1
            try:
                ended.append(ended_of(codec.decode_as(ADMIN_SESSION, msg.value())))
            except (SchemaError, KeyError, TypeError, ValueError) as exc:
                self.skipped(msg, exc)
        self.add(ended)

    def add(self, ended: Sequence[Ended]) -> None:
        """Fold ended sessions in (the feed's records, or this replica's own sign-outs)."""
        if ended:
            with self.lock:
                self.table = prune(fold(self.table, ended), wall_ms(), self.max_age_ms)

    def is_ended(self, nonce: str, issued_ms: int) -> bool:
        with self.lock:
            return is_ended(self.table, nonce, issued_ms)


class QueueWriter:
    """Writes a person's retries and dismissals (and observed deliveries) to Kafka."""

    def __init__(self, settings: CommonSettings, producer: Producer | None = None) -> None:
        self.topics = settings.topics
        self.producer = producer or Producer(settings.producer_config(**{"log_level": 0}))
        self.codec = default_codec()

    def _send(
        self,
        items: Sequence[tuple[str, str, bytes]],
        timeout: float = 30.0,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> list[bool]:
        """Produce ``(topic, key, value)`` items (with ``headers``); True per item acked."""
        extra: dict[str, Any] = {"headers": list(headers)} if headers else {}
        acked = [False] * len(items)

        def report(i: int) -> Callable[[Any, Any], None]:
            def on_delivery(err: Any, _msg: Any) -> None:
                acked[i] = err is None

            return on_delivery

        for i, (topic, key, value) in enumerate(items):
            for _ in range(100):
                try:
                    self.producer.produce(
                        topic, key=key, value=value, on_delivery=report(i), **extra
                    )
                    break
                except BufferError:
                    self.producer.poll(0.1)
        self.producer.flush(timeout)
        return acked

    def _decisions(self, decisions: Sequence[Decision]) -> list[bool]:
        return self._send(
            [
                (
                    self.topics.admin_exceptions,
                    d.row_id,
                    self.codec.encode(EXCEPTION_STATUS, decision_record(d)),
                )
                for d in decisions
            ]
        )

    def _interventions(self, rows: Sequence[Row], outcome: str, at_ms: int) -> None:
        # Counted by the metrics sink; a lost one is logged, never blocks the action.
        acked = self._send(
            [
                (
                    self.topics.sink_results,
                    r.dead_letter.idempotency_key or r.row_id,
                    self.codec.encode(SINK_RESULT, intervention_result(r, outcome, at_ms)),
                )
                for r in rows
            ]
        )
        if not all(acked):
            log.warning("intervention_results_not_written", missing=acked.count(False))

    def retry(self, rows: Sequence[Row], decisions: Sequence[Decision], at_ms: int) -> list[Row]:
        """Re-send each row's original command to its sink topic (same bytes, same key), then
        record ``retrying``. Returns the rows that were re-sent."""
        allowed = {self.topics.sink_crm, self.topics.sink_helpdesk}
        by_id = {r.row_id: r for r in rows}
        chosen = [
            (by_id[d.row_id], d)
            for d in decisions
            if by_id[d.row_id].dead_letter.source_topic in allowed
        ]
        sent = self._send(
            [
                (
                    r.dead_letter.source_topic,
                    r.dead_letter.customer_id or r.row_id,
                    r.dead_letter.command,
                )
                for r, _ in chosen
            ],
            # the sinks label this delivery's sync latency "retry" (the SLO reads "first")
            headers=[(DELIVERY_HEADER, DELIVERY_RETRY.encode())],
        )
        resent = [(r, d) for (r, d), ok in zip(chosen, sent, strict=True) if ok]
        if chosen and not resent:
            raise QueueUnavailable("Kafka did not acknowledge the retry; nothing was sent")
        recorded = self._decisions([d for _, d in resent])
        if not all(recorded):
            log.warning("retry_status_not_written", missing=recorded.count(False))
        self._interventions([r for r, _ in resent], RETRIED_OUTCOME, at_ms)
        return [r for r, _ in resent]

    def dismiss(self, row: Row, decision: Decision, at_ms: int) -> None:
        if not all(self._decisions([decision])):
            raise QueueUnavailable("Kafka did not acknowledge the dismissal; nothing changed")
        self._interventions([row], DISMISSED_OUTCOME, at_ms)

    def record_resolved(self, rows: Sequence[Row], at_ms: int) -> None:
        decisions = [d for d in (resolved_decision(r, at_ms) for r in rows) if d is not None]
        if decisions and not all(self._decisions(decisions)):
            log.warning("resolved_status_not_written", missing=len(decisions))

    def end_session(self, ended: Ended) -> None:
        """Record a sign-out in ``admin.sessions``; QueueUnavailable when not acknowledged."""
        record = self.codec.encode(ADMIN_SESSION, ended_record(ended))
        if not all(self._send([(self.topics.admin_sessions, ended.session, record)])):
            raise QueueUnavailable("Kafka did not acknowledge the sign-out; the session lives on")

    def close(self) -> None:
        self.producer.flush(10)


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
