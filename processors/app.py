"""The Faust app factory: topics, tables, the publisher and the metrics of one worker process.

Nothing here runs at import time; ``create_worker(settings)`` builds one ``WorkerParts``
(``processors.parts``) and registers no shell: ``processors.__main__`` wires them.
Tables use the raw codec (bytes in, bytes out); their changelog writes go through the
worker's one confluent-kafka ``Publisher`` (see ``PublishedTable``) so they are batched and
flushed together with the batch's commands, before the batch's offsets are committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import faust

from paystream.metrics import PaystreamMetrics
from processors._faust import (
    PublishedTable,
    clear_only_after_suspend,
    correct_highwaters,
    drain_per_fetch,
    set_fetch_max_wait,
)
from processors.localstate import true_end_offsets
from processors.offsets import HandledOffsets
from processors.parts import CUSTOMERS, DEDUP, WorkerParts, write_tables
from processors.pipeline import BatchProcessor
from processors.publisher import Publisher
from processors.settings import WorkerSettings
from processors.writer import TableWriter
from schemas.codec import default_codec


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


def _embedded_tuning(settings: WorkerSettings) -> dict[str, Any]:
    """Faust settings for the embedded broker (none for a real Kafka)."""
    if not settings.embedded_broker:
        return {}
    return {
        "producer_max_batch_size": 1,
        "broker_session_timeout": 6,
        "broker_heartbeat_interval": 1,
        # Tansu reports end offsets too low (see processors.localstate), so Faust's
        # check that a local offset is below the changelog's end would refuse kept
        # tables; whether they may be kept is decided before start instead.
        "recovery_consistency_check": False,
    }


def _faust_app(settings: WorkerSettings) -> faust.App:
    """The Faust app of one worker: raw bytes in and out, RocksDB tables, its web server."""
    topics = settings.topics
    bind, port = settings.paystream_worker_host, settings.paystream_worker_port
    advertised = settings.advertised_host
    return faust.App(
        topics.worker_app_id,
        broker=broker_url(settings.bootstrap_servers),
        broker_credentials=settings.faust_credentials(),  # TLS/SASL, as every other client
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
        web_host=advertised,
        web_port=port,
        web_bind=bind,
        canonical_url=f"http://{advertised}:{port}",
        # Faust's own views read tables and assignments without our token: off.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        autodiscover=False,
        **_embedded_tuning(settings),
    )


def create_worker(
    settings: WorkerSettings, resume_from: Mapping[str, Mapping[int, int]] | None = None
) -> WorkerParts:
    """Build the Faust app, its topics, tables, publisher and metrics (not started).

    ``resume_from``: changelog topic → partition → last offset the kept local files hold.

    The shells (agents, timers, web) are registered on it by ``processors.__main__``.
    """
    topics = settings.topics
    resume = resume_from or {}
    app = _faust_app(settings)
    publisher = Publisher(
        settings.producer_config(
            **{"linger.ms": settings.linger_ms(5), "client.id": "paystream-worker"}
        )
    )
    customers = _table(
        app, CUSTOMERS, topics.partitions, publisher, resume.get(topics.changelog(CUSTOMERS), {})
    )
    dedup = _table(
        app, DEDUP, topics.partitions, publisher, resume.get(topics.changelog(DEDUP), {})
    )
    set_fetch_max_wait(app.consumer, settings.paystream_consumer_fetch_wait_ms)
    drain_per_fetch(app.consumer)
    clear_only_after_suspend(app)
    if settings.embedded_broker:
        config = settings.consumer_config(topics.worker_app_id)
        correct_highwaters(app.consumer, partial(true_end_offsets, config))
    return WorkerParts(
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
        customers=customers,
        dedup=dedup,
        publisher=publisher,
        metrics=PaystreamMetrics(),
        processor=BatchProcessor(
            topics, default_codec(), settings.stuck_after_ms, live=settings.stripe_mode == "live"
        ),
        writer=TableWriter(publisher, partial(write_tables, customers, dedup)),
        offsets=HandledOffsets([topics.stripe_events, topics.app_events]),
    )
