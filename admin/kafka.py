"""The admin's Kafka I/O beyond the queue it reads (``paystream.exception_queue.feed``):
ended sessions read from ``admin.sessions`` by every replica, and retries, dismissals and
sign-outs written back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog
from confluent_kafka import Producer

from admin.errors import QueueUnavailable
from admin.sessions import Ended, SessionTable, ended_of, ended_record, fold, is_ended, prune
from paystream.exception_queue.fold import (
    DISMISSED_OUTCOME,
    RETRIED_OUTCOME,
    Decision,
    Row,
    decision_record,
    intervention_result,
    resolved_decision,
)
from paystream.runtime.producing import produce
from paystream.runtime.topic_feed import TopicFeed
from paystream.settings import CommonSettings
from paystream.vocabulary import APP_WEBHOOK_SINK, DELIVERY_HEADER, DELIVERY_RETRY
from schemas.codec import (
    ADMIN_SESSION,
    EXCEPTION_STATUS,
    SINK_RESULT,
    default_codec,
)

log = structlog.get_logger("paystream.admin")


def wall_ms() -> int:
    return int(time.time() * 1000)


class SessionFeed(TopicFeed):
    """Keeps a ``SessionTable`` up to date from ``admin.sessions``: read like the queue
    (from the beginning, no group), so every replica refuses the same ended sessions."""

    name = "admin-session-feed"

    def __init__(self, settings: CommonSettings, max_age_ms: int, *, idle_s: float = 2.0) -> None:
        super().__init__(
            settings, (settings.topics.admin_sessions,), idle_s=idle_s, logger="paystream.admin"
        )
        self.table = SessionTable()
        self.max_age_ms = max_age_ms

    def on_loaded(self) -> None:
        self.log.info("admin_sessions_loaded", ended=len(self.table.ended))

    def apply(self, messages: Iterable[Any]) -> None:
        codec = default_codec()
        present = (m for m in messages if m.error() is None and m.value())
        ended = self.read_each(
            present, lambda m: ended_of(codec.decode_as(ADMIN_SESSION, m.value()))
        )
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
        acked = [False] * len(items)

        def report(i: int) -> Callable[[Any, Any], None]:
            def on_delivery(err: Any, _msg: Any) -> None:
                acked[i] = err is None

            return on_delivery

        for i, (topic, key, value) in enumerate(items):
            # a queue that stayed full leaves the item unacknowledged: the caller answers
            produce(self.producer, topic, key, value, report(i), headers=headers)
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
        by_id = {r.row_id: r for r in rows}
        chosen = [(by_id[d.row_id], d) for d in decisions if self._resendable(by_id[d.row_id])]
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

    def _resendable(self, row: Row) -> bool:
        """A sink's own command topic; and ``customer.lifecycle`` for the app-webhook sink's
        notifications (the metrics sink reads that topic too and keeps one row per change,
        so the same bytes again change nothing there)."""
        topic = row.dead_letter.source_topic
        if topic in (self.topics.sink_crm, self.topics.sink_helpdesk):
            return True
        return topic == self.topics.customer_lifecycle and row.sink == APP_WEBHOOK_SINK

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
