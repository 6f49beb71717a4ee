"""Deduplication by event id, as pure decisions over the ``dedup`` table's values.

Stripe's and the product's events have their own namespaces (SPEC §3: an app event can
never suppress the Stripe event with the same id): a Stripe event's entry is keyed by its
id, as it always was, an app event's by ``"app " + id``. The space keeps them apart:
ingest accepts no Stripe event id with a space (printable ASCII without spaces), so no
Stripe key can start with ``"app "``. (Entries an earlier release wrote for app events
under their bare id stay until they expire; such an app event delivered again is folded
again, which changes nothing.)

The table maps that key → ``b"<created>"`` (Stripe's created, unix seconds). An entry is
kept for the retention (30 days by default) after the event's ``created`` and then purged,
so the table holds about one retention's worth of event ids however long the worker runs.
A Stripe retry or replay arrives within days, far inside the window; an event older than
the window that shows up again is applied again, which the lifecycle makes a no-op
(applying an event twice changes nothing and emits nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

#: The namespace of first-party (app) event ids in the dedup table.
APP_PREFIX = "app "


def dedup_key(source: str, event_id: str) -> str:
    """The table key of an event: its id for Stripe's events, ``"app " + id`` for the app's."""
    return event_id if source == "stripe" else APP_PREFIX + event_id


def deadline_id(customer_id: str, opener: str) -> str:
    """The id of the onboarding timer's deadline event (``processors.timers``): it names the
    customer, so ``paystream forget`` deletes its entries by ``deadline_prefix``."""
    return f"deadline:{customer_id}:{opener}"


def deadline_prefix(customer_id: str) -> str:
    """The dedup keys of every deadline event of one customer start with this."""
    return dedup_key("app", deadline_id(customer_id, ""))


def seen_value(created: int) -> bytes:
    """The table value recorded for an event."""
    return str(created).encode()


def is_duplicate(key: str, table_value: bytes | None, batch_seen: Mapping[str, object]) -> bool:
    """True when the event's key (``dedup_key``) is in the table or earlier in the batch."""
    return table_value is not None or key in batch_seen


def expired(table_value: bytes, now_ms: int, retention_ms: int) -> bool:
    """True when an entry is older than the retention (unreadable entries expire too)."""
    try:
        created = int(table_value)
    except ValueError:
        return True
    return created * 1000 < now_ms - retention_ms
