"""Deduplication by event id, as pure decisions over the ``dedup`` table's values.

Stripe's and the product's events have their own namespaces (SPEC §3: an app event can
never suppress the Stripe event with the same id): a Stripe event's entry is keyed by its
id, as it always was, an app event's by ``"app " + id``. The space keeps them apart:
ingest accepts no Stripe event id with a space (printable ASCII without spaces), so no
Stripe key can start with ``"app "``. (Entries an earlier release wrote for app events
under their bare id stay until they expire; such an app event delivered again is folded
again, which changes nothing.)

The table maps that key → ``b"<created> <outcome>"``: Stripe's created (unix seconds) and
what the worker did with the event the first time (``applied``, ``stale`` or ``ignored``),
followed by `` duplicate`` once it has been delivered again (written once, at the first
repeat, not at every one). ``paystream doctor`` asks for it (``GET /events/{id}``). Entries
of earlier releases hold the created alone (``b"<created>"``): read as processed, outcome
not recorded. (An earlier release reading the new entries takes them for unreadable, so its
purge drops them: the events are then applied again if they come again, a no-op.) An entry is
kept for the retention (30 days by default) after the event's ``created`` and then purged,
so the table holds about one retention's worth of event ids however long the worker runs.
A Stripe retry or replay arrives within days, far inside the window; an event older than
the window that shows up again is applied again, which the lifecycle makes a no-op
(applying an event twice changes nothing and emits nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from paystream.vocabulary import DUPLICATE

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


#: the mark of an entry whose event was delivered more than once
REPEATED = DUPLICATE


@dataclass(frozen=True)
class Entry:
    """A dedup entry read back: what the worker did with the event the first time."""

    #: ``applied``, ``stale`` or ``ignored``; None for an entry of an earlier release
    outcome: str | None
    #: the event came again after it was first processed
    repeated: bool


def seen_value(created: int, outcome: str) -> bytes:
    """The table value recorded for an event the first time: its created and outcome."""
    return f"{created} {outcome}".encode()


def repeated_value(table_value: bytes) -> bytes | None:
    """The value to write when the event comes again: marked once (None: already marked)."""
    words = table_value.split()
    if words[2:3] == [REPEATED.encode()]:
        return None
    return b" ".join([*words[:1], *(words[1:2] or [b"-"]), REPEATED.encode()])


def read_entry(table_value: bytes) -> Entry:
    """An entry of either format (``b"<created>"`` of earlier releases included)."""
    words = table_value.decode(errors="replace").split()
    outcome = words[1] if len(words) > 1 and words[1] != "-" else None
    return Entry(outcome, words[2:3] == [REPEATED])


def is_duplicate(key: str, table_value: bytes | None, batch_seen: Mapping[str, object]) -> bool:
    """True when the event's key (``dedup_key``) is in the table or earlier in the batch."""
    return table_value is not None or key in batch_seen


def expired(table_value: bytes, now_ms: int, retention_ms: int) -> bool:
    """True when an entry is older than the retention (unreadable entries expire too)."""
    try:
        created = int(table_value.split()[0])
    except (ValueError, IndexError):
        return True
    return created * 1000 < now_ms - retention_ms
