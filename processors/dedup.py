"""Deduplication by Stripe event id, as pure decisions over the ``dedup`` table's values.

The table maps event id → ``b"<created>"`` (Stripe's created, unix seconds). An entry is
kept for the retention (30 days by default) after the event's ``created`` and then purged,
so the table holds about one retention's worth of event ids however long the worker runs.
A Stripe retry or replay arrives within days, far inside the window; an event older than
the window that shows up again is applied again, which the lifecycle makes a no-op
(applying an event twice changes nothing and emits nothing).
"""

from __future__ import annotations

from collections.abc import Mapping


def seen_value(created: int) -> bytes:
    """The table value recorded for an event."""
    return str(created).encode()


def is_duplicate(
    event_id: str, table_value: bytes | None, batch_seen: Mapping[str, object]
) -> bool:
    """True when the event id is in the table or earlier in the same batch."""
    return table_value is not None or event_id in batch_seen


def expired(table_value: bytes, now_ms: int, retention_ms: int) -> bool:
    """True when an entry is older than the retention (unreadable entries expire too)."""
    try:
        created = int(table_value)
    except ValueError:
        return True
    return created * 1000 < now_ms - retention_ms
