"""The agent: a thin shell around ``BatchProcessor`` (decode, fold, publish, write tables).

The order of durability is what makes a SIGKILL at any moment safe (at-least-once input,
idempotent effects), enforced by ``TableWriter`` and the commit barrier:

1. a batch's commands are durable first — a crash before its table writes replays the
   batch, which rebuilds the very same commands with the very same keys;
2. then its table changelogs — a crash after them replays the batch onto a record that
   already holds it, which emits nothing new;
3. only then may Faust commit the batch's offsets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import structlog

from processors.lifecycle import CustomerRecord
from processors.offsets import Held, resume_positions
from processors.parts import WorkerParts
from processors.pipeline import InMessage
from processors.writer import install_commit_barrier


async def handle_batch(parts: WorkerParts, events: Sequence[Any]) -> None:
    """Process one ``take_events`` batch: fold, produce the commands, schedule table writes."""
    messages = [
        InMessage(e.message.topic, e.message.partition, e.message.key, e.message.value)
        for e in events
    ]
    writer = parts.writer

    def get_record(customer: str, partition: int) -> CustomerRecord | None:
        pending = writer.records.get(customer)
        if pending is not None:
            return pending
        if customer in writer.erased:  # erased by a batch whose deletion is not written yet
            return None
        raw = parts.customers.read(partition, customer.encode())
        return CustomerRecord.from_json(raw) if raw is not None else None

    def get_seen(event_id: str, partition: int) -> bytes | None:
        pending = writer.seen.get(event_id)
        if pending is not None:
            return pending
        return parts.dedup.read(partition, event_id.encode())

    result = parts.processor.process(messages, get_record, get_seen, int(time.time() * 1000))
    for out in result.outputs:
        parts.publisher.produce(out.topic, out.key, out.value)
    await writer.submit(result)
    for (event_type, outcome, api_version), count in result.tally.items():
        parts.metrics.events.labels(event_type, outcome, api_version).inc(count)
    for event_type, count in result.recovered.items():
        parts.metrics.reconcile_recovered.labels(event_type).inc(count)
    for e in events:
        parts.offsets.handled(e.message.topic, e.message.partition, e.message.offset)


def report_held(parts: WorkerParts, held: list[Held]) -> None:
    """Faust asked to commit past records the agent had not handled: say so, count it."""
    log = structlog.get_logger()
    for h in held:
        topic, partition = h.partition
        log.warning(
            "commit held back: records not handled yet",
            topic=topic,
            partition=partition,
            asked=h.asked,
            committed=h.frontier,
        )
        parts.metrics.worker_commits_held.labels(topic).inc()


def register(parts: WorkerParts) -> None:
    """Attach the lifecycle agent to the app."""
    settings = parts.settings
    offsets = parts.offsets
    lookup = partial(resume_positions, settings.consumer_config(settings.topics.worker_app_id))

    def revoked(_app: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        # args: (revoked partitions,). Every rebalance revokes all partitions first (eager
        # protocol) and Faust forgets their acks; once reassigned it seeks each back to its
        # committed offset, so their ledgers start over. Not at the assignment signal: by
        # then the seek may be done and records handled, which would not come again.
        offsets.forget(args[0])
        held.set(0)  # eager protocol: a rebalance revokes every partition first

    def assigned(_app: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        held.set(len(args[0]))  # a live member holding partitions (the lag alert asks)

    held = parts.metrics.consumer_assigned_partitions.labels(settings.topics.worker_app_id)
    parts.app.on_partitions_revoked.connect(revoked)
    parts.app.on_partitions_assigned.connect(assigned)

    @parts.app.agent(parts.source, name="lifecycle")
    async def lifecycle(stream: Any) -> None:
        # before the first event is acked: no offset is committed ahead of its effects
        install_commit_barrier(
            parts.app.consumer, parts.writer, offsets, lookup, partial(report_held, parts)
        )
        async for events in stream.take_events(
            settings.paystream_worker_batch_size, within=settings.paystream_worker_batch_within
        ):
            try:
                await handle_batch(parts, events)
            except Exception as exc:
                # Stop the worker (a supervisor restarts it) rather than run on without its
                # agent. take_events acks this batch as the loop exits, so close the commit
                # barrier first: no offset is committed from now on.
                parts.writer.fail(exc)
                structlog.get_logger().error("batch failed, stopping", error=type(exc).__name__)
                await parts.app.crash(exc)
                raise
