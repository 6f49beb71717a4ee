"""``WorkerParts``: everything one worker process owns, built by ``processors.app``.

The shells (``agents``, ``timers``, ``web``) each take a ``WorkerParts`` and register
themselves on its Faust app; ``processors.__main__`` wires them. Nothing here imports a
shell, so the dependencies run one way: ``__main__`` → shells and ``app`` → ``parts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faust

from paystream.metrics import PaystreamMetrics
from processors._faust import PublishedTable
from processors.dedup import deadline_prefix
from processors.offsets import HandledOffsets
from processors.pipeline import BatchProcessor, BatchResult
from processors.publisher import Publisher
from processors.settings import WorkerSettings
from processors.writer import TableWriter

CUSTOMERS = "customers"
DEDUP = "dedup"


@dataclass
class WorkerParts:
    """Everything one worker process owns, built by ``processors.app.create_worker``."""

    settings: WorkerSettings
    app: faust.App
    source: Any
    customers: PublishedTable
    dedup: PublishedTable
    publisher: Publisher
    metrics: PaystreamMetrics
    processor: BatchProcessor
    writer: TableWriter
    #: input offsets the agent handled: no commit passes one it has not (processors.offsets)
    offsets: HandledOffsets
    state: dict[str, bool] = field(default_factory=lambda: {"ready": False})


def write_tables(customers: PublishedTable, dedup: PublishedTable, result: BatchResult) -> None:
    """Write a batch's records and dedup entries (local store + changelog); the customers
    ``paystream forget`` erased are deleted first (a changelog tombstone each), with the
    dedup entries of their deadline events."""
    for customer, partition in result.erased.items():
        customers.delete(partition, customer.encode())
        dedup.delete_prefix(partition, deadline_prefix(customer).encode())
    for customer, (partition, record) in result.records.items():
        customers.write(partition, customer.encode(), record.to_json())
    for event_id, (partition, value) in result.seen.items():
        dedup.write(partition, event_id.encode(), value)
