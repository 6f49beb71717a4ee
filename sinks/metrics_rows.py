"""The metrics sink's pure core: one decoded message → one table row; rows → inserts.

``to_row`` maps a ``stripe_event``, ``lifecycle_change`` or ``sink_result`` record to its
table's row, the customer id only as a keyed hash; a value the table cannot hold makes the
message a bad one (``ValueError``). ``inserts`` groups a batch's rows per table with a
deterministic ``insert_deduplication_token``, so a retried identical batch is dropped by
the store and rows consumed twice collapse on their keys (ReplacingMergeTree, read FINAL).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paystream.hashing import customer_hash
from paystream.runtime.store import batch_token
from paystream.vocabulary import DELIVERIES, DELIVERY_FIRST
from schemas.codec import LIFECYCLE_CHANGE, SINK_RESULT, STRIPE_EVENT, SchemaError

#: schema name of a message → the table its row goes to
TABLE_OF_SCHEMA = {
    STRIPE_EVENT: "webhook_events",
    LIFECYCLE_CHANGE: "lifecycle_changes",
    SINK_RESULT: "sink_attempts",
}

#: DateTime columns hold 1970-01-01 .. 2106-02-07; anything outside is a bad message
_MAX_S = 2**32 - 1


def _s(value: int) -> datetime:
    if not 0 <= value <= _MAX_S:
        raise ValueError(f"timestamp out of range: {value}")
    return datetime.fromtimestamp(value, tz=UTC)


def _ms(value: int) -> datetime:
    if not 0 <= value <= _MAX_S * 1000:
        raise ValueError(f"timestamp out of range: {value}")
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _attempts(value: int) -> int:
    if not 0 <= value <= 65_535:
        raise ValueError(f"attempts out of range: {value}")
    return int(value)


def _latency_ms(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("latency is not a finite number")
    return float(value)


@dataclass(frozen=True)
class Row:
    """One row for one table, with the identity used for the batch's dedup token."""

    table: str
    key: str
    values: tuple[Any, ...]


def redact(text: str, customer_id: str | None, hashed: str) -> str:
    """``text`` with every occurrence of the customer id replaced by its hash."""
    return text.replace(customer_id, hashed) if customer_id else text


def _webhook_event(record: dict[str, Any], hash_key: str) -> Row:
    return Row(
        "webhook_events",
        f"{record['event_id']}|{record['correlation_id']}|{record['received_at_ms']}",
        (
            _ms(record["received_at_ms"]),
            _s(record["created"]),
            record["event_id"],
            record["type"],
            bool(record["livemode"]),
            record.get("api_version") or "",
            customer_hash(record.get("customer_id"), hash_key),
            record["correlation_id"],
            record.get("source") or "webhook",
        ),
    )


def _lifecycle_change(record: dict[str, Any], hash_key: str) -> Row:
    hashed = customer_hash(record["customer_id"], hash_key)
    return Row(
        "lifecycle_changes",
        f"{hashed}|{record['cause_event_id']}|{record['new_state']}",
        (
            _s(record["event_created"]),
            _ms(record["received_at_ms"]),
            _ms(record["processed_at_ms"]),
            _ms(record["changed_at_ms"]),
            hashed,
            record.get("previous_state") or "",
            record["new_state"],
            record["cause_event_id"],
            record["cause_event_type"],
            bool(record.get("livemode", False)),
            record["correlation_id"],
        ),
    )


def _delivery(value: Any) -> str:
    """The ``delivery`` column: one of DELIVERIES; anything else (a writer's bug) is first."""
    return str(value) if value in DELIVERIES else DELIVERY_FIRST


def _sink_attempt(record: dict[str, Any], hash_key: str) -> Row:
    hashed = customer_hash(record["customer_id"], hash_key)
    # Idempotency keys embed the customer id (crm:<customer>:<event>): store it hashed.
    key = redact(record["idempotency_key"], record["customer_id"], hashed)
    identity = (record["sink"], key, str(record["attempts"]), record["outcome"])
    return Row(
        "sink_attempts",
        "|".join((*identity, str(record["acked_at_ms"]))),
        (
            _ms(record["acked_at_ms"]),
            _s(record["event_created"]),
            _ms(record["received_at_ms"]),
            _ms(record["processed_at_ms"]),
            record["sink"],
            key,
            record["outcome"],
            _attempts(record["attempts"]),
            record.get("reason_code") or "",
            _latency_ms(record["latency_ms"]),
            hashed,
            record["cause_event_id"],
            record["cause_event_type"],
            record["correlation_id"],
            _delivery(record.get("delivery")),
        ),
    )


#: schema name → its row builder (the table is TABLE_OF_SCHEMA's)
_BUILDERS: dict[str, Callable[[dict[str, Any], str], Row]] = {
    STRIPE_EVENT: _webhook_event,
    LIFECYCLE_CHANGE: _lifecycle_change,
    SINK_RESULT: _sink_attempt,
}


def to_row(schema: str, record: dict[str, Any], hash_key: str = "") -> Row:
    """Map a decoded message to its table row; the customer id leaves only as a hash."""
    builder = _BUILDERS.get(schema)
    if builder is None:
        raise SchemaError(f"{schema} messages are not stored by the metrics sink")
    return builder(record, hash_key)


@dataclass(frozen=True)
class Insert:
    """One insert of a batch: a table, its rows' values, the batch's dedup token."""

    table: str
    rows: list[tuple[Any, ...]]
    token: str


def inserts(rows: Sequence[Row]) -> list[Insert]:
    """A batch's rows grouped per table, in a stable table order, each with its token."""
    by_table: dict[str, list[Row]] = {}
    for row in rows:
        by_table.setdefault(row.table, []).append(row)
    return [
        Insert(table, [r.values for r in group], batch_token(table, [r.key for r in group]))
        for table, group in sorted(by_table.items())
    ]
