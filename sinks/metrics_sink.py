"""The metrics sink: stripe.events, customer.lifecycle and sink.results → the metrics store.

Pure core: ``to_row`` turns one decoded message into one table row (customer id hashed),
``Batch`` decides when to flush (by size or by age) and which offsets a flush commits.
Thin shell: ``MetricsSink.run`` consumes with a confluent-kafka group (manual commits),
inserts each batch, and commits only after the store took it. When the store is down the
sink pauses its partitions and retries the same batch with backoff; rows consumed twice
(retried insert, crash before the commit, rebalance) collapse on the tables' row keys
(ReplacingMergeTree, read with FINAL) and on insert deduplication tokens.

With the embedded store (no ``CLICKHOUSE_URL``) this process is the only one that may open
it, so it also serves a loopback, read-only JSON query endpoint (``QueryServer``) and
publishes its address in ``PAYSTREAM_DATA_DIR/metrics-query.json`` for ``paystream status``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field

from paystream.hashing import customer_hash
from paystream.metrics import PaystreamMetrics
from paystream.runtime.store import (
    DDL_DIR,
    MetricsStore,
    MetricsStoreError,
    MetricsStoreSettings,
    MetricsStoreUnavailable,
    batch_token,
    load_ddl,
    open_store,
)
from paystream.runtime.store_endpoint import QueryServer, write_endpoint_file
from paystream.settings import load_settings
from schemas.codec import LIFECYCLE_CHANGE, SINK_RESULT, STRIPE_EVENT, SchemaError, default_codec
from sinks.service import SinkService

log = structlog.get_logger("paystream.sinks.metrics")

#: schema name of a message → the table its row goes to
TABLE_OF_SCHEMA = {
    STRIPE_EVENT: "webhook_events",
    LIFECYCLE_CHANGE: "lifecycle_changes",
    SINK_RESULT: "sink_attempts",
}


class MetricsSettings(MetricsStoreSettings):
    """The metrics sink: batching, retention, the customer-id hash key, the query endpoint."""

    #: rows per insert; a batch is flushed when it reaches this size ...
    paystream_metrics_batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    #: ... or when its oldest row has waited this long
    paystream_metrics_batch_interval_s: float = Field(default=2.0, gt=0, le=3600)
    #: rows older than this are dropped by the tables' TTL
    paystream_metrics_retention_days: int = Field(default=90, ge=1, le=36_500)
    #: loopback port of the read-only query endpoint (embedded store only); 0 = any free port
    paystream_metrics_query_port: int = Field(default=0, ge=0, le=65535)
    #: first and longest wait between insert retries while the store is unavailable
    paystream_metrics_retry_base_s: float = Field(default=0.5, gt=0)
    paystream_metrics_retry_max_s: float = Field(default=15.0, gt=0)
    #: DDL directory; default: the DDL shipped in the package (paystream/runtime/clickhouse)
    paystream_metrics_ddl_dir: str = str(DDL_DIR)

    @property
    def consumer_group(self) -> str:
        return self.topic_prefix + "metrics"


# --------------------------------------------------------------------------- pure core


#: DateTime columns hold 1970-01-01 .. 2106-02-07; anything outside is a bad message
_MAX_S = 2**32 - 1


def _s(value: int) -> datetime:
    if not 0 <= value <= _MAX_S:
        raise ValueError(f"timestamp out of range: {value}")
    return datetime.fromtimestamp(value, tz=UTC)


def _ms(value: int) -> datetime:
    if not 0 <= value <= _MAX_S * 1000:
        raise ValueError(f"timestamp out of range: {value}")
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _attempts(value: int) -> int:
    if not 0 <= value <= 65_535:
        raise ValueError(f"attempts out of range: {value}")
    return int(value)


def _latency_ms(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("latency is not a finite number")
    return float(value)


@dataclass(frozen=True)
class Row:
    """One row for one table, with the identity used for the batch's dedup token."""

    table: str
    key: str
    values: tuple[Any, ...]


def redact(text: str, customer_id: str | None, hashed: str) -> str:
    """``text`` with every occurrence of the customer id replaced by its hash."""
    return text.replace(customer_id, hashed) if customer_id else text


def to_row(schema: str, record: dict[str, Any], hash_key: str = "") -> Row:
    """Map a decoded message to its table row; the customer id leaves only as a hash."""
    if schema == STRIPE_EVENT:
        return Row(
            "webhook_events",
            f"{record['event_id']}|{record['correlation_id']}|{record['received_at_ms']}",
            (
                _ms(record["received_at_ms"]),
                _s(record["created"]),
                record["event_id"],
                record["type"],
                bool(record["livemode"]),
                record.get("api_version") or "",
                customer_hash(record.get("customer_id"), hash_key),
                record["correlation_id"],
                record.get("source") or "webhook",
            ),
        )
    if schema == LIFECYCLE_CHANGE:
        hashed = customer_hash(record["customer_id"], hash_key)
        return Row(
            "lifecycle_changes",
            f"{hashed}|{record['cause_event_id']}|{record['new_state']}",
            (
                _s(record["event_created"]),
                _ms(record["received_at_ms"]),
                _ms(record["processed_at_ms"]),
                _ms(record["changed_at_ms"]),
                hashed,
                record.get("previous_state") or "",
                record["new_state"],
                record["cause_event_id"],
                record["cause_event_type"],
                bool(record.get("livemode", False)),
                record["correlation_id"],
            ),
        )
    if schema == SINK_RESULT:
        hashed = customer_hash(record["customer_id"], hash_key)
        # Idempotency keys embed the customer id (crm:<customer>:<event>): store it hashed.
        key = redact(record["idempotency_key"], record["customer_id"], hashed)
        return Row(
            "sink_attempts",
            "|".join(
                (
                    record["sink"],
                    key,
                    str(record["attempts"]),
                    record["outcome"],
                    str(record["acked_at_ms"]),
                )
            ),
            (
                _ms(record["acked_at_ms"]),
                _s(record["event_created"]),
                _ms(record["received_at_ms"]),
                _ms(record["processed_at_ms"]),
                record["sink"],
                key,
                record["outcome"],
                _attempts(record["attempts"]),
                record.get("reason_code") or "",
                _latency_ms(record["latency_ms"]),
                hashed,
                record["cause_event_id"],
                record["cause_event_type"],
                record["correlation_id"],
            ),
        )
    raise SchemaError(f"{schema} messages are not stored by the metrics sink")


@dataclass
class Batch:
    """Rows waiting for one insert, and the offsets to commit once they are stored."""

    max_rows: int
    max_age_s: float
    rows: dict[str, list[Row]] = field(default_factory=dict)
    #: (topic, partition) → next offset to commit
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    started_at: float | None = None
    size: int = 0

    def add(self, topic: str, partition: int, offset: int, row: Row | None, now: float) -> None:
        """Add a consumed message (``row`` None: skipped, but its offset still commits)."""
        if self.started_at is None:
            self.started_at = now
        if row is not None:
            self.rows.setdefault(row.table, []).append(row)
            self.size += 1
        position = (topic, partition)
        self.offsets[position] = max(self.offsets.get(position, 0), offset + 1)

    def due(self, now: float) -> bool:
        if self.started_at is None:
            return False
        return self.size >= self.max_rows or now - self.started_at >= self.max_age_s

    def room(self, most: int) -> int:
        """How many messages to ask for next, so a batch never exceeds ``max_rows``."""
        return max(1, min(most, self.max_rows - self.size))

    @property
    def empty(self) -> bool:
        return self.started_at is None

    def tables(self) -> list[tuple[str, list[tuple[Any, ...]], str]]:
        """``(table, rows, dedup token)`` per table, in a stable order."""
        out = []
        for table in sorted(self.rows):
            rows = self.rows[table]
            out.append((table, [r.values for r in rows], batch_token(table, [r.key for r in rows])))
        return out

    def clear(self) -> None:
        self.rows.clear()
        self.offsets.clear()
        self.started_at = None
        self.size = 0


def backoff_s(failures: int, base: float, cap: float) -> float:
    """Exponential backoff without jitter (one writer per partition; nothing to spread)."""
    return float(min(cap, base * 2 ** max(0, failures - 1)))


# --------------------------------------------------------------------------- shell


StoreFactory = Callable[[MetricsSettings], MetricsStore]


class MetricsSink:
    """consume → batch → insert → commit, for the three topics the analysts need."""

    name = "metrics"

    def __init__(
        self,
        settings: MetricsSettings,
        metrics: PaystreamMetrics,
        store_factory: StoreFactory = open_store,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._store_factory = store_factory
        self.store: MetricsStore | None = None
        self.query_url: str | None = None
        #: set once the DDL is applied and the consumer is subscribed
        self.ready = threading.Event()
        self.rows_stored = 0
        self.insert_failures = 0

    @property
    def topics(self) -> list[str]:
        t = self.settings.topics
        return [t.stripe_events, t.customer_lifecycle, t.sink_results]

    def run(self, stop: threading.Event) -> None:
        from confluent_kafka import Consumer

        s = self.settings
        ddl = load_ddl(
            s.store_database, s.paystream_metrics_retention_days, Path(s.paystream_metrics_ddl_dir)
        )
        store = self._open_until_ready(ddl, stop)
        if store is None:
            return
        self.store = store
        self.refresh_open_exceptions(store)  # the gauge is right from the start, not at 0
        server: QueryServer | None = None
        consumer: Any = None
        try:
            if s.embedded_store:
                server = QueryServer(store, s.paystream_metrics_query_port)
                server.start()
                self.query_url = server.url
                write_endpoint_file(s.query_endpoint_file, server.url, server.token)
            batch = Batch(s.paystream_metrics_batch_size, s.paystream_metrics_batch_interval_s)

            def on_revoke(c: Any, partitions: list[Any]) -> None:
                # Eager rebalance: every partition is revoked and later consumed again from
                # its committed offset, so an unstored batch may simply be dropped.
                if not batch.empty and not self._flush(store, c, batch, attempts=1):
                    batch.clear()

            consumer = Consumer(s.consumer_config(s.consumer_group))
            consumer.subscribe(self.topics, on_revoke=on_revoke)
            self.ready.set()
            log.info("metrics_sink_started", topics=self.topics, group=s.consumer_group)
            while not stop.is_set():
                for msg in consumer.consume(batch.room(500), 0.2):
                    self._add(batch, msg)
                if batch.due(time.monotonic()):
                    self._flush_until_stored(store, consumer, batch, stop)
            if not batch.empty:
                self._flush(store, consumer, batch, attempts=1)
        finally:
            if consumer is not None:
                consumer.close()
            if server is not None:
                server.stop()
                s.query_endpoint_file.unlink(missing_ok=True)
            store.close()
            log.info("metrics_sink_stopped", rows_stored=self.rows_stored)

    def _open_until_ready(self, ddl: list[str], stop: threading.Event) -> MetricsStore | None:
        """Open the store and apply the DDL, retrying while it is unavailable (None: stopped)."""
        failures = 0
        while not stop.is_set():
            store: MetricsStore | None = None
            try:
                store = self._store_factory(self.settings)
                store.apply_ddl(ddl)
                return store
            except Exception as exc:  # any client error: unreachable, starting, locked
                if store is not None:
                    store.close()
                failures += 1
                self.metrics.metrics_store_errors.inc()
                log.warning(
                    "store_unavailable_at_start",
                    error=type(exc).__name__,
                    detail=str(exc).splitlines()[0][:200] if str(exc) else "",
                    attempt=failures,
                )
                stop.wait(
                    backoff_s(
                        failures,
                        self.settings.paystream_metrics_retry_base_s,
                        self.settings.paystream_metrics_retry_max_s,
                    )
                )
        return None

    def _add(self, batch: Batch, msg: Any) -> None:
        if msg.error() is not None:
            log.warning("consume_error", error=str(msg.error()))
            return
        row: Row | None = None
        try:
            schema, record = default_codec().decode(msg.value() or b"")
            row = to_row(
                schema, record, self.settings.paystream_customer_hash_key.get_secret_value()
            )
        except (SchemaError, KeyError, TypeError, ValueError, OverflowError) as exc:
            # The message stays in Kafka for inspection; one line says where it is.
            log.warning(
                "message_skipped",
                topic=msg.topic(),
                partition=msg.partition(),
                offset=msg.offset(),
                error=type(exc).__name__,
            )
        batch.add(msg.topic(), msg.partition(), msg.offset(), row, time.monotonic())

    def _flush_until_stored(
        self, store: MetricsStore, consumer: Any, batch: Batch, stop: threading.Event
    ) -> None:
        """Insert the batch, retrying with backoff while the store is unavailable."""
        failures = 0
        paused: list[Any] = []
        try:
            while not batch.empty and not stop.is_set():
                if self._flush(store, consumer, batch, attempts=failures + 1):
                    return
                failures += 1
                if not paused:
                    paused = consumer.assignment()
                    consumer.pause(paused)
                wait = backoff_s(
                    failures,
                    self.settings.paystream_metrics_retry_base_s,
                    self.settings.paystream_metrics_retry_max_s,
                )
                # Serve the group (rebalance callbacks) while waiting; paused, so no messages.
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and not stop.is_set() and not batch.empty:
                    for msg in consumer.consume(100, min(0.2, wait)):
                        self._add(batch, msg)
        finally:
            if paused:
                current = {(p.topic, p.partition) for p in consumer.assignment()}
                still = [p for p in paused if (p.topic, p.partition) in current]
                if still:
                    consumer.resume(still)

    def _flush(self, store: MetricsStore, consumer: Any, batch: Batch, attempts: int) -> bool:
        """One insert attempt of the whole batch, then the commit. True when done."""
        from confluent_kafka import KafkaException, TopicPartition

        try:
            for table, rows, token in batch.tables():
                store.insert(table, rows, token)
        except MetricsStoreUnavailable as exc:
            self.insert_failures += 1
            self.metrics.metrics_store_errors.inc()
            log.warning("store_unavailable", error=str(exc), attempt=attempts, rows=batch.size)
            return False
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(batch.offsets.items())]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Stored but not committed: the rows come again and collapse on their keys.
            log.warning("commit_failed", error=str(exc.args[0]) if exc.args else "")
        self.rows_stored += batch.size
        for table, stored in batch.rows.items():
            self.metrics.metrics_rows_stored.labels(table=table).inc(len(stored))
        log.debug("batch_stored", rows=batch.size)
        if "sink_attempts" in batch.rows:
            self.refresh_open_exceptions(store)
        batch.clear()
        return True

    def refresh_open_exceptions(self, store: MetricsStore) -> None:
        """Set ``paystream_exceptions_open``: commands whose last outcome is dead-lettered."""
        try:
            result = store.query(f"SELECT count() FROM {store.database}.open_exceptions")  # noqa: S608
        except MetricsStoreError as exc:
            log.warning("open_exceptions_unavailable", error=str(exc))
            return
        self.metrics.exceptions_open.set(int(result.rows[0][0]))


def create_metrics_sink(metrics: PaystreamMetrics) -> SinkService:
    """The ``metrics`` service of ``paystream sinks``: reads MetricsSettings from the env."""
    return MetricsSink(load_settings(MetricsSettings), metrics)
