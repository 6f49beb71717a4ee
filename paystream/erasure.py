"""Erasing one customer (``paystream forget``): what goes where, as plain data.

Three stages hold a customer by name, and each is told over its own wire:

- the worker's ``customers`` table (local RocksDB + compacted changelog): an erase event
  (``CUSTOMER_ERASE``) on ``app.events``, keyed by the customer like every event of it, so
  the worker that owns the key reads it in order and deletes the record (and the dedup
  entries of its onboarding deadlines, whose ids name it), writing the changelog
  tombstones itself;
- the exception queue: ``admin.exceptions`` (compacted) gets a tombstone for every key that
  names the customer (its rows' decisions), and one ``ERASED`` marker per dead letter of
  the customer, keyed by that dead letter's place in ``sink.dlq`` (``erased:dlq:<p>:<o>``,
  which names nobody). ``sink.dlq`` is not compacted and cannot lose single records: its
  dead letters stay until ``PAYSTREAM_DLQ_RETENTION``, and every admin replica skips the
  marked ones, whatever order it reads the two topics in;
- the metrics store: its rows with the customer's keyed hash (``paystream.hashing``).

Everything here is pure; ``paystream.commands.forget`` does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paystream.vocabulary import CUSTOMER_ERASE, ERASED

#: A Stripe customer id (what ``paystream forget`` accepts; ingest's read accepts the same).
CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9_]{1,240}")
_MARKER = re.compile(r"erased:dlq:(\d{1,9}):(\d{1,19})")


def dead_letter_row_id(record: Mapping[str, Any], partition: int, offset: int) -> str:
    """The exception-queue row of a dead letter: the command's idempotency key; a command
    that could not be decoded has none, so its place in ``sink.dlq`` names it instead."""
    key = str(record.get("idempotency_key") or "")
    return key or f"{record.get('sink', '')}:dlq:{partition}:{offset}"


def marker_key(partition: int, offset: int) -> str:
    """The ``admin.exceptions`` key of the marker that erases the dead letter at this place."""
    return f"erased:dlq:{partition}:{offset}"


def marker_position(row_id: str) -> tuple[int, int] | None:
    """``(partition, offset)`` of an erasure marker's key, None for any other key."""
    found = _MARKER.fullmatch(row_id)
    return (int(found.group(1)), int(found.group(2))) if found else None


def erased_marker(partition: int, offset: int, at_ms: int) -> dict[str, Any]:
    """The ``exception_status`` record of a marker: it names the place, never the customer."""
    return {
        "row_id": marker_key(partition, offset),
        "sink": "",
        "status": ERASED,
        "failed_at_ms": 0,
        "at_ms": at_ms,
        "note": "",
    }


def erase_event(customer_id: str, at_ms: int) -> dict[str, Any]:
    """The ``app_event`` record that makes the worker delete the customer's record."""
    return {
        "event_id": f"{CUSTOMER_ERASE}:{at_ms}",
        "type": CUSTOMER_ERASE,
        "created": at_ms // 1000,
        "customer_id": customer_id,
        "user_id": None,
        "received_at_ms": at_ms,
        "correlation_id": f"forget:{at_ms}",
    }


def names(key: str, customer_id: str) -> bool:
    """``key`` carries ``customer_id`` as a whole token (``crm:cus_A:evt_1`` names
    ``cus_A``, not ``cus_AB``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(customer_id)}(?![A-Za-z0-9_])", key) is not None


@dataclass(frozen=True)
class DeadLetterAt:
    """One ``sink.dlq`` record, decoded, with its place."""

    partition: int
    offset: int
    record: Mapping[str, Any]


@dataclass(frozen=True)
class QueuePlan:
    """What ``admin.exceptions`` gets for one customer."""

    #: places in ``sink.dlq`` of the customer's dead letters: one marker each
    markers: tuple[tuple[int, int], ...] = ()
    #: keys of ``admin.exceptions`` that name the customer: one tombstone each
    tombstones: tuple[str, ...] = ()


def plan_queue(
    customer_id: str, dead_letters: Iterable[DeadLetterAt], decision_keys: Iterable[str]
) -> QueuePlan:
    """The markers and tombstones that erase ``customer_id`` from the exception queue.

    A dead letter is the customer's when its ``customer_id`` is, or when its row id names
    the customer; a decision key is tombstoned when it names the customer or is the row of
    one of the customer's dead letters (a command that could not be decoded).
    """
    keys = set(decision_keys)
    markers: list[tuple[int, int]] = []
    rows: set[str] = set()
    for dead in dead_letters:
        row = dead_letter_row_id(dead.record, dead.partition, dead.offset)
        if str(dead.record.get("customer_id") or "") == customer_id or names(row, customer_id):
            markers.append((dead.partition, dead.offset))
            rows.add(row)
    tombstones = sorted(k for k in keys if k in rows or names(k, customer_id))
    return QueuePlan(tuple(sorted(set(markers))), tuple(tombstones))


# ------------------------------------------------------------------------- the report

ERASED_STEP = "erased"
REQUESTED = "requested"
FAILED = "failed"
#: held outside paystream, or until a retention runs out: ``forget`` says so, every time
KEPT = "kept"


@dataclass(frozen=True)
class Step:
    """One line of the report: where, what happened, in words."""

    store: str
    status: str
    detail: str


@dataclass
class Report:
    customer_id: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status != FAILED for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "ok": self.ok,
            "steps": [
                {"store": s.store, "status": s.status, "detail": s.detail} for s in self.steps
            ],
        }


def cannot_erase(week_topics: Iterable[str], dlq_topic: str, dlq_days: float) -> list[Step]:
    """What ``paystream forget`` cannot erase, said on every run."""
    topics = ", ".join(week_topics)
    return [
        Step(
            "HubSpot",
            KEPT,
            "the contact (email, billing state) stays in HubSpot: delete it there "
            "(Contacts → Actions → Delete, or the GDPR delete endpoint)",
        ),
        Step(
            "Zendesk",
            KEPT,
            "tickets and the requester stay in Zendesk: delete or redact them there "
            "(the requester's user → Permanently delete)",
        ),
        Step(
            "Kafka topics (not compacted)",
            KEPT,
            f"{topics} keep the customer's events and commands until their retention "
            "(7 days), then the broker deletes them",
        ),
        Step(
            dlq_topic,
            KEPT,
            f"dead letters stay until PAYSTREAM_DLQ_RETENTION ({dlq_days:g} days); the admin "
            "lists none of them from now on",
        ),
        Step(
            "CRM sink memory",
            KEPT,
            "a running CRM sink remembers the customer's HubSpot contact id and email in its "
            "process until the sinks restart",
        ),
        Step(
            "logs",
            KEPT,
            "log lines name a customer only by its keyed hash; they last as long as your "
            "log store keeps them",
        ),
        Step(
            "Stripe",
            KEPT,
            "Stripe keeps the customer; an event Stripe still sends (or `paystream "
            "reconcile` finds) makes a new record: delete the customer in Stripe first",
        ),
    ]


def render(report: Report, header: str) -> str:
    """The terminal report: one line per store."""
    width = max([len(s.store) for s in report.steps] + [10])
    lines = [header, ""]
    lines += [f"{s.status:<10} {s.store:<{width}}  {s.detail}" for s in report.steps]
    failed = [s.store for s in report.steps if s.status == FAILED]
    lines += ["", f"not erased: {', '.join(failed)}" if failed else "erased from paystream"]
    return "\n".join(lines)
