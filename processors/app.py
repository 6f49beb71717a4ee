"""The Faust app factory: topics, tables, the publisher and the metrics of one worker process.

Nothing here runs at import time; ``create_worker(settings)`` builds one ``WorkerParts``.
Tables use the raw codec (bytes in, bytes out); their changelog writes go through the
worker's one confluent-kafka ``Publisher`` (see ``PublishedTable``) so they are batched and
flushed together with the batch's commands, before the batch's offsets are committed.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from contextvars import Token
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
from faust.streams import _current_event

from paystream.metrics import PaystreamMetrics
from processors.localstate import correct_highwaters
from processors.pipeline import BatchProcessor
from processors.publisher import Publisher
from processors.settings import WorkerSettings
from processors.writer import TableWriter
from schemas.codec import default_codec

CUSTOMERS = "customers"
DEDUP = "dedup"


class PublishedTable(faust.Table[bytes, bytes]):
    """A Faust table whose changelog writes go through the worker's ``Publisher``."""

    publisher: Publisher
    #: partition → last changelog offset the local files hold (from a clean shutdown)
    resume_from: dict[int, int]

    def persisted_offset(self, tp: Any) -> int | None:
        """Faust's recovery replays the changelog after this offset (see ``localstate``)."""
        hint = self.resume_from.pop(tp.partition, None)
        stored: int | None = super().persisted_offset(tp)
        if hint is not None and (stored is None or hint > stored):
            self.data.set_persisted_offset(tp, hint)
            return hint
        return stored

    def partition_for_key(self, key: Any) -> int | None:
        event = _current_event.get(None)
        current = event() if event is not None else None
        if current is None:
            raise TypeError("table written outside of partition_scope()")
        partition: int = current.message.partition
        return partition

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> Any:
        self.publisher.produce(self.changelog_topic.get_topic_name(), key, value, partition)
        return SimpleNamespace(message=SimpleNamespace(partition=partition))


class _Message:
    __slots__ = ("__weakref__", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


class _Event:
    """What Faust's stores read from the current event: its message's partition."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


class partition_scope:
    """Table reads and writes inside this block belong to ``partition`` (of the input)."""

    def __init__(self, topic: str, partition: int) -> None:
        self._event = _Event(topic, partition)
        self._token: Token[Any] | None = None

    def __enter__(self) -> None:
        self._token = _current_event.set(weakref.ref(self._event))  # type: ignore[arg-type]

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current_event.reset(self._token)


@dataclass
class WorkerParts:
    """Everything one worker process owns, built by ``create_worker``."""

    settings: WorkerSettings
    app: faust.App
    source: Any
    customers: PublishedTable
    dedup: PublishedTable
    publisher: Publisher
    metrics: PaystreamMetrics
    processor: BatchProcessor
    writer: TableWriter
    state: dict[str, bool] = field(default_factory=lambda: {"ready": False})


def broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


def worker_data_dir(settings: WorkerSettings) -> Path:
    """Per-worker table directory: two workers on one machine never share RocksDB files."""
    return Path(settings.paystream_data_dir).resolve() / f"worker-{settings.paystream_worker_port}"


def _table(
    app: faust.App,
    name: str,
    partitions: int,
    publisher: Publisher,
    resume_from: Mapping[int, int],
) -> PublishedTable:
    table = PublishedTable(
        app,
        name=name,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        help=f"worker table {name}",
    )
    table.publisher = publisher
    table.resume_from = dict(resume_from)
    app.tables.add(table)
    return table


def create_worker(
    settings: WorkerSettings, resume_from: Mapping[str, Mapping[int, int]] | None = None
) -> WorkerParts:
    """Build the Faust app, its topics, tables, publisher and metrics (not started).

    ``resume_from``: changelog topic → partition → last offset the kept local files hold.
    """
    from processors import agents, timers, web  # the shells, wired onto this app

    topics = settings.topics
    resume = resume_from or {}
    host, port = settings.paystream_worker_host, settings.paystream_worker_port
    tuning: dict[str, Any] = {}
    if settings.embedded_broker:
        tuning = {
            "producer_max_batch_size": 1,
            "broker_session_timeout": 6,
            "broker_heartbeat_interval": 1,
            # Tansu reports end offsets wrongly (too low), so Faust's check that the local
            # offset is below the changelog's end would refuse kept tables; whether they
            # may be kept is decided before start instead (processors/localstate.py).
            "recovery_consistency_check": False,
        }
    app = faust.App(
        topics.worker_app_id,
        broker=broker_url(settings.bootstrap_servers),
        store="rocksdb://",
        datadir=str(worker_data_dir(settings)),
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=topics.partitions,
        topic_replication_factor=topics.replication,
        # every topic is created by `paystream topics` (schemas/topics.py), on Tansu and Kafka
        topic_allow_declare=False,
        topic_disable_leader=True,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=2000,
        stream_buffer_maxsize=8192,
        web_enabled=True,
        web_host=host,
        web_port=port,
        web_bind=host,
        canonical_url=f"http://{host}:{port}",
        autodiscover=False,
        **tuning,
    )
    publisher = Publisher(settings.producer_config(**{"linger.ms": 5}))
    parts: WorkerParts = WorkerParts(
        settings=settings,
        app=app,
        source=app.topic(
            topics.stripe_events,
            topics.app_events,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=topics.partitions,
        ),
        customers=_table(
            app,
            CUSTOMERS,
            topics.partitions,
            publisher,
            resume.get(topics.changelog(CUSTOMERS), {}),
        ),
        dedup=_table(
            app, DEDUP, topics.partitions, publisher, resume.get(topics.changelog(DEDUP), {})
        ),
        publisher=publisher,
        metrics=PaystreamMetrics(),
        processor=BatchProcessor(topics, default_codec(), settings.stuck_after_ms),
        writer=TableWriter(publisher, lambda result: agents.write_tables(parts, result)),
    )
    if settings.embedded_broker:
        correct_highwaters(app.consumer, settings.consumer_config(topics.worker_app_id))
    agents.register(parts)
    timers.register(parts)
    web.register(parts)
    return parts
