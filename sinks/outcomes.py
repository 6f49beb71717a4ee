"""Records the sinks write to ``sink.results`` and ``sink.dlq``: pure builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from paystream.hashing import customer_hash
from paystream.vocabulary import (
    COALESCED,
    DEAD_LETTERED,
    DELIVERED,
    DELIVERIES,
    DELIVERY_FIRST,
    DELIVERY_HEADER,
    DELIVERY_RECONCILE,
    DRY_RUN,
    NEEDS_A_PERSON,
    RECONCILE_SOURCE,
    RETRY,
    STALE,
)

__all__ = ["COALESCED", "DEAD_LETTERED", "DELIVERED", "DRY_RUN", "NEEDS_A_PERSON", "RETRY", "STALE"]


def sink_result(
    sink: str,
    command: Mapping[str, Any],
    outcome: str,
    *,
    attempts: int,
    reason_code: str | None,
    latency_ms: float,
    acked_at_ms: int,
) -> dict[str, Any]:
    """One ``sink_result`` record; stage timestamps are carried over from the command."""
    return {
        "sink": sink,
        "idempotency_key": str(command["idempotency_key"]),
        "outcome": outcome,
        "attempts": attempts,
        "reason_code": reason_code,
        "latency_ms": float(latency_ms),
        "customer_id": str(command.get("customer_id") or ""),
        "cause_event_id": str(command.get("cause_event_id") or ""),
        "cause_event_type": str(command.get("cause_event_type") or ""),
        "event_created": int(command.get("event_created") or 0),
        "received_at_ms": int(command.get("received_at_ms") or 0),
        "processed_at_ms": int(command.get("processed_at_ms") or 0),
        "acked_at_ms": acked_at_ms,
        "correlation_id": str(command.get("correlation_id") or ""),
        "delivery": delivery_of(command, None),
    }


def dead_letter(
    sink: str,
    command: Mapping[str, Any],
    raw: bytes,
    *,
    reason_code: str,
    last_error: str,
    attempts: int,
    failed_at_ms: int,
    source_topic: str,
) -> dict[str, Any]:
    """One ``dead_letter`` record carrying the original command bytes."""
    return {
        "sink": sink,
        "idempotency_key": str(command.get("idempotency_key") or ""),
        "reason_code": reason_code,
        "last_error": " ".join(last_error.split())[:300],
        "attempts": attempts,
        "failed_at_ms": failed_at_ms,
        "customer_id": str(command.get("customer_id") or ""),
        "cause_event_id": str(command.get("cause_event_id") or ""),
        "correlation_id": str(command.get("correlation_id") or ""),
        "source_topic": source_topic,
        "command": bytes(raw),
    }


def dead_letter_log_fields(record: Mapping[str, Any], hash_key: str) -> dict[str, Any]:
    """What the ``dead_lettered`` log line may say about a dead letter: no raw customer id.

    The idempotency key embeds the customer id (``crm:<customer>:<event>``), and an API's
    error text may echo it back; the record in ``sink.dlq`` keeps both for the operator.
    """
    customer = str(record.get("customer_id") or "")
    error = str(record.get("last_error") or "")
    if customer:
        error = error.replace(customer, "<customer>")
    return {
        "customer": customer_hash(customer, hash_key) or None,
        "cause_event_id": record.get("cause_event_id") or None,
        "correlation_id": record.get("correlation_id") or None,
        "reason_code": record.get("reason_code"),
        "attempts": record.get("attempts"),
        "last_error": error,
    }


def sync_latency_s(command: Mapping[str, Any], acked_at_ms: int) -> float | None:
    """From Stripe's ``created`` (unix seconds) to the sink's acknowledgement."""
    created = int(command.get("event_created") or 0)
    if created <= 0:
        return None
    return max(0.0, acked_at_ms / 1000 - created)


HeaderValue = str | bytes | None


def delivery_of(
    command: Mapping[str, Any],
    headers: Mapping[str, HeaderValue] | Sequence[tuple[str, HeaderValue]] | None,
) -> str:
    """The ``delivery`` label of a command's sync latency (pure).

    A ``paystream-delivery`` Kafka header (the exception queue's retry re-sends the original
    bytes with ``retry``) wins; then a command that names its own ``delivery`` or whose
    cause came from ``paystream reconcile`` (``source``); anything else is ``first``.
    Unknown values count as ``first``, never as a label of their own.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for name, value in pairs:
        mark = value.decode("ascii", "replace") if isinstance(value, bytes) else value or ""
        if name == DELIVERY_HEADER and mark in DELIVERIES:
            return mark
    own = command.get("delivery")
    if own in DELIVERIES:
        return str(own)
    if command.get("source") == RECONCILE_SOURCE:
        return DELIVERY_RECONCILE
    return DELIVERY_FIRST
