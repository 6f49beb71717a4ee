"""Timers: the onboarding-stuck scan and the dedup purge.

The onboarding timer never writes a record itself: for each local customer whose
onboarding is overdue and not yet ticketed it publishes a deadline event on ``app.events``
(keyed by the customer, id ``deadline:<customer>:<opener>``). The agent folds it like any
other event, so the ticket is decided by the same pure function, written with the record
and fired once per key, ever — whichever worker owns the customer by then.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import structlog

from processors import dedup
from processors._faust import purge_local
from processors.errors import FaustInternalsMoved
from processors.lifecycle import ONBOARDING_DEADLINE, CustomerRecord, onboarding_stuck_ticket
from processors.parts import WorkerParts
from schemas.codec import APP_EVENT, default_codec


def overdue(
    records: Iterable[CustomerRecord], now_ms: int, stuck_after_ms: int
) -> Iterator[dict[str, Any]]:
    """Deadline app events for the records whose onboarding-stuck ticket is due (pure)."""
    for record in records:
        ticket = onboarding_stuck_ticket(record, now_ms, stuck_after_ms)
        if ticket is None or record.onboarding_opened_by is None:
            continue
        yield {
            "event_id": dedup.deadline_id(record.customer_id, record.onboarding_opened_by[1]),
            "type": ONBOARDING_DEADLINE,
            "created": now_ms // 1000,
            "customer_id": record.customer_id,
            "user_id": record.user_id,
            "received_at_ms": now_ms,
            "correlation_id": f"timer:{record.customer_id}",
        }


def _local_records(parts: WorkerParts) -> Iterator[CustomerRecord]:
    for _key, raw in list(parts.customers.data.items()):
        if raw is not None:
            yield CustomerRecord.from_json(raw)


async def scan_onboarding(parts: WorkerParts) -> int:
    """Publish the due deadline events; return how many."""
    now_ms = int(time.time() * 1000)
    codec, topic = default_codec(), parts.settings.topics.app_events
    sent = 0
    for deadline in overdue(_local_records(parts), now_ms, parts.settings.stuck_after_ms):
        parts.publisher.produce(
            topic, deadline["customer_id"].encode(), codec.encode(APP_EVENT, deadline)
        )
        sent += 1
    if sent:
        await parts.publisher.flush()
    return sent


async def purge_dedup(parts: WorkerParts) -> int:
    """Delete dedup entries older than the retention, with changelog tombstones.

    Raises ``FaustInternalsMoved`` when the table's store is not the RocksDB layout it
    reaches into: a purge that silently deletes nothing would let the table grow forever.
    """
    now_ms = int(time.time() * 1000)
    retention = parts.settings.dedup_retention_ms
    changelog = parts.dedup.changelog_topic.get_topic_name()
    purged = 0
    expired = partial(dedup.expired, now_ms=now_ms, retention_ms=retention)
    for partition, key in purge_local(parts.dedup.data, expired):
        parts.publisher.produce(changelog, key, None, partition)
        purged += 1
    if purged:
        await parts.publisher.flush()
    return purged


def register(parts: WorkerParts) -> None:
    settings, app = parts.settings, parts.app

    @app.timer(settings.paystream_onboarding_scan_interval)  # type: ignore[untyped-decorator]
    async def onboarding_stuck() -> None:
        if parts.state["ready"]:
            await scan_onboarding(parts)

    @app.timer(settings.paystream_dedup_purge_interval)  # type: ignore[untyped-decorator]
    async def dedup_purge() -> None:
        if parts.state["ready"]:
            try:
                await purge_dedup(parts)
            except FaustInternalsMoved as exc:
                structlog.get_logger().error("dedup purge impossible, stopping", error=str(exc))
                await app.crash(exc)
                raise
