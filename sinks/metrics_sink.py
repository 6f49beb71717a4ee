"""The metrics sink: stripe.events, customer.lifecycle and sink.results → the metrics store.

An adapter on the one sink runner (``sinks.runner``): the runner consumes a batch (at most
``PAYSTREAM_METRICS_BATCH_SIZE`` messages, its oldest waiting at most
``PAYSTREAM_METRICS_BATCH_INTERVAL_S``), ``MetricsAdapter`` turns each message into a row
(``sinks.metrics_rows``, pure) and writes the batch, one insert per table, and the runner
commits only after the store took it. When the store is down, the write raises
``DestinationUnavailable``: the runner pauses its partitions and retries the same batch
with back-off, without limit (Kafka keeps the data). Rows consumed twice (retried insert,
crash before the commit, rebalance) collapse on the tables' row keys (ReplacingMergeTree,
read with FINAL) and on insert deduplication tokens. A message that is not a storable
record is logged and skipped; it stays in Kafka. The metrics sink records no outcomes of
its own: its input is the other sinks' outcomes.

With the embedded store (no ``CLICKHOUSE_URL``) this process is the only one that may open
it, so it also serves the loopback, read-only query endpoint
(``paystream.runtime.store_endpoint``) for ``paystream status``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import structlog
from confluent_kafka import Consumer

from paystream.metrics import PaystreamMetrics
from paystream.runtime.store import (
    MetricsStore,
    MetricsStoreUnavailable,
    claim_embedded_store,
    load_ddl,
    open_store,
)
from paystream.runtime.store_endpoint import QueryServer, write_endpoint_file
from schemas.codec import SchemaError, default_codec
from sinks.errors import DestinationUnavailable
from sinks.metrics_rows import Insert, inserts, to_row
from sinks.retry import backoff_delay
from sinks.runner import Call, Command, SinkRunner
from sinks.settings import SinkSettings

log = structlog.get_logger("paystream.sinks.metrics")


def no_jitter() -> float:
    """The back-off's random draw, fixed: one writer per partition, nothing to spread."""
    return 1.0


#: errors of ``to_row`` for a record the tables cannot hold
_UNSTORABLE = (KeyError, TypeError, ValueError, OverflowError)


class MetricsAdapter:
    """Decodes messages into rows and writes a batch of them, one insert per table."""

    sink = "metrics"

    def __init__(self, store: MetricsStore, metrics: PaystreamMetrics, hash_key: str) -> None:
        self.store = store
        self.metrics = metrics
        self.hash_key = hash_key
        self.rows_stored = 0

    def close(self) -> None:
        """Nothing of its own: the store belongs to the metrics service, which closes it."""

    def decode(self, raw: bytes) -> Command:
        schema, record = default_codec().decode(raw)
        try:
            return {"row": to_row(schema, record, self.hash_key)}
        except _UNSTORABLE as exc:
            raise SchemaError(f"{schema} not storable ({type(exc).__name__})") from exc

    def plan(self, commands: Sequence[Command]) -> list[Call]:
        if not commands:
            return []
        batch = inserts([c["row"] for c in commands])
        return [Call(indexes=tuple(range(len(commands))), payload=batch)]

    def split(self, call: Call) -> list[Call]:
        return [call]  # one store write; it never fails permanently

    def send(self, call: Call) -> Mapping[int, str]:
        batch: list[Insert] = call.payload
        try:
            for insert in batch:
                self.store.insert(insert.table, insert.rows, insert.token)
        except MetricsStoreUnavailable as exc:
            self.metrics.metrics_store_errors.inc()
            raise DestinationUnavailable(str(exc)) from None
        for insert in batch:
            self.metrics.metrics_rows_stored.labels(table=insert.table).inc(len(insert.rows))
            self.rows_stored += len(insert.rows)
        # ``paystream_exceptions_open`` is not set here: its one source is the admin view
        # (the rows its page shows, read from Kafka), see docs/admin.md.
        return {}


StoreFactory = Callable[[SinkSettings], MetricsStore]


class MetricsSink:
    """The ``metrics`` service of ``paystream sinks``: the store, its endpoint, the runner."""

    name = "metrics"

    def __init__(
        self,
        settings: SinkSettings,
        metrics: PaystreamMetrics,
        store_factory: StoreFactory = open_store,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._store_factory = store_factory
        self.store: MetricsStore | None = None
        #: held while this process owns the embedded store (``claim_embedded_store``)
        self.owner: IO[str] | None = None
        self.adapter: MetricsAdapter | None = None
        self.query_url: str | None = None
        #: set once the DDL is applied and the runner starts
        self.ready = threading.Event()

    @property
    def rows_stored(self) -> int:
        return self.adapter.rows_stored if self.adapter is not None else 0

    @property
    def topics(self) -> list[str]:
        t = self.settings.topics
        return [t.stripe_events, t.customer_lifecycle, t.sink_results]

    def run(self, stop: threading.Event) -> None:
        s = self.settings
        ddl = load_ddl(
            s.store_database, s.paystream_metrics_retention_days, Path(s.paystream_metrics_ddl_dir)
        )
        store = self._open_until_ready(ddl, stop)
        if store is None:
            return
        self.store = store
        self.adapter = adapter = MetricsAdapter(
            store, self.metrics, s.paystream_customer_hash_key.get_secret_value()
        )
        server: QueryServer | None = None
        consumer: Any = None
        try:
            if s.embedded_store:
                server = QueryServer(store, s.paystream_metrics_query_port)
                server.start()
                self.query_url = server.url
                write_endpoint_file(s.query_endpoint_file, server.url, server.token)
            consumer = Consumer(s.consumer_config(s.metrics_consumer_group, background=True))
            runner = SinkRunner(
                adapter=adapter,
                consumer=consumer,
                producer=None,
                source_topic=self.topics,
                results_topic=None,
                dlq_topic=None,
                writes_enabled=True,  # the store is ours: never a dry run
                policy=s.metrics_retry_policy(),
                metrics=self.metrics,
                batch_size=s.paystream_metrics_batch_size,
                batch_wait_s=s.paystream_metrics_batch_interval_s,
                rand=no_jitter,
                group=s.metrics_consumer_group,
            )
            self.ready.set()
            runner.run(stop)
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
        policy = self.settings.metrics_retry_policy()
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
                stop.wait(backoff_delay(policy, failures, no_jitter()))
        return None


def create_metrics_sink(settings: SinkSettings, metrics: PaystreamMetrics) -> MetricsSink:
    """The ``metrics`` service of ``paystream sinks``; with the embedded store, this process
    becomes its one owner first (a second owner is refused: ``EmbeddedStoreOwned``)."""
    sink = MetricsSink(settings, metrics)
    if settings.embedded_store:
        sink.owner = claim_embedded_store(settings.embedded_store_dir)
    return sink
