"""The CRM sink's contact-id memory: in-process, or durable and shared through Kafka.

``ContactMemory`` is the map the CRM adapter reads (``sinks.contact_ids`` decides with it)
and tells what it learnt. ``DurableContactMemory`` is the one the sinks process runs: it
reads the compacted ``sink.crm.contacts`` whole at start (``paystream.runtime.topic_feed``,
so the embedded broker's end offsets are never waited on), keeps following it, and writes
every contact id it learns there, so a restarted sink and every other replica know what any
of them wrote. Losing a record costs requests, never correctness: a customer the memory
does not know takes the reads (``sinks.contact_ids``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import structlog
from confluent_kafka import KafkaException, Producer

from paystream.runtime.topic_feed import FeedNotLoaded, TopicFeed
from paystream.settings import CommonSettings
from schemas.codec import CONTACT_ID, default_codec
from sinks.contact_ids import Remembered, fold, from_record, to_record

log = structlog.get_logger("sinks")

#: longest wait for the broker to acknowledge records written ahead of a HubSpot update
ACK_WAIT_S = 10.0


class ContactMemory:
    """Contact ids by Stripe customer id, safe to share between threads."""

    def __init__(self, hash_key: str = "") -> None:
        #: PAYSTREAM_CUSTOMER_HASH_KEY: emails are remembered as keyed hashes only
        self.hash_key = hash_key
        self._entries: dict[str, Remembered] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, customer: str) -> Remembered | None:
        with self._lock:
            return self._entries.get(customer)

    def view(self, customers: Iterable[str]) -> dict[str, Remembered]:
        """What is remembered of ``customers`` (a snapshot the pure routing reads)."""
        with self._lock:
            return {c: self._entries[c] for c in customers if c in self._entries}

    def fold_in(self, records: Iterable[tuple[str, Remembered | None]]) -> None:
        """Fold ``(customer, entry or None)`` records in (``contact_ids.fold``)."""
        with self._lock:
            for customer, incoming in records:
                kept = fold(self._entries.get(customer), incoming)
                if kept is None:
                    self._entries.pop(customer, None)
                else:
                    self._entries[customer] = kept

    def learn(self, entries: Mapping[str, Remembered], *, acked: bool = False) -> None:
        """Record contact ids (HubSpot just accepted them, or is about to be told the
        state); ``acked``: return once they are durable, not merely on their way."""
        self.fold_in(entries.items())

    def forget(self, customers: Collection[str]) -> None:
        """Drop ids HubSpot no longer has; the reads that follow write the right ones."""
        with self._lock:
            for customer in customers:
                self._entries.pop(customer, None)

    def close(self) -> None:
        """Nothing to release in process."""


class _ContactFeed(TopicFeed):
    """Folds ``sink.crm.contacts`` into a ``ContactMemory``."""

    name = "crm-contacts"

    def __init__(self, settings: CommonSettings, memory: ContactMemory, idle_s: float) -> None:
        super().__init__(settings, (settings.topics.crm_contacts,), idle_s=idle_s, logger="sinks")
        self.memory = memory

    def apply(self, messages: Iterable[Any]) -> None:
        codec = default_codec()

        def read(msg: Any) -> tuple[str, Remembered | None]:
            customer = (msg.key() or b"").decode()
            if not customer:
                raise ValueError("no key")
            value = msg.value()
            return customer, from_record(codec.decode_as(CONTACT_ID, value)) if value else None

        records = self.read_each(messages, read)
        self.memory.fold_in(records)

    def on_loaded(self) -> None:
        self.log.info("crm_contact_ids_loaded", contacts=len(self.memory))


class DurableContactMemory(ContactMemory):
    """A ``ContactMemory`` kept in ``sink.crm.contacts``, read whole and written to."""

    def __init__(
        self,
        settings: CommonSettings,
        hash_key: str = "",
        *,
        idle_s: float = 2.0,
        producer: Producer | None = None,
    ) -> None:
        super().__init__(hash_key)
        self.topic = settings.topics.crm_contacts
        self.feed = _ContactFeed(settings, self, idle_s)
        self.producer = producer or Producer(settings.producer_config(**{"log_level": 0}))
        self.codec = default_codec()
        self.unwritten = 0

    def start(self, timeout_s: float, stop: threading.Event | None = None) -> bool:
        """Start reading and wait until the topic was read whole (at most ``timeout_s``, or
        until ``stop``); False when it was not (the sink runs on, taking the reads)."""
        self.feed.start()
        deadline = time.monotonic() + timeout_s
        while stop is None or not stop.is_set():
            try:
                self.feed.wait_loaded(min(0.5, max(0.0, deadline - time.monotonic())))
                return True
            except FeedNotLoaded as exc:
                if self.feed.error is not None or time.monotonic() >= deadline:
                    log.warning("crm_contact_ids_not_loaded", error=str(exc)[:200])
                    return False
        return False

    def learn(self, entries: Mapping[str, Remembered], *, acked: bool = False) -> None:
        super().learn(entries)
        if self.feed.error is not None:  # no topic to write to: in process only
            return
        for customer, entry in entries.items():
            value = self.codec.encode(CONTACT_ID, to_record(entry))
            try:
                self.producer.produce(self.topic, key=customer, value=value, on_delivery=self._sent)
            except (BufferError, KafkaException):
                self.unwritten += 1  # a lost record costs reads later, never correctness
        if acked and self.flush(ACK_WAIT_S):
            log.warning("crm_contact_ids_not_acknowledged", count=len(entries))
        self.producer.poll(0)

    def _sent(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.unwritten += 1

    def flush(self, timeout_s: float = 10.0) -> int:
        """Wait for the records written so far; the number still undelivered."""
        return int(self.producer.flush(timeout_s))

    def close(self) -> None:
        left = self.flush()
        if left or self.unwritten:
            log.warning("crm_contact_ids_unwritten", count=left + self.unwritten)
        self.feed.stop()
