"""What ``paystream crm-repair --apply`` sends, as plain records (pure).

* A **correction** is the CRM command the worker sends for the record's current state
  (``crm_command`` schema on ``sink.crm``, keyed by customer id), with the worker's own
  idempotency key ``crm:<customer>:<cause event>``: the one CRM sink applies it with its
  batching, rate limits, retries and dead letters. It is marked a person's re-send (the
  ``paystream-delivery: retry`` header), so its sync latency stays out of the SLO. Over a
  contact whose ``billing_state_changed_at`` was set later by hand it carries that date
  (``overwrites_changed_at_ms``, in the command's bytes, so an exception-queue retry keeps
  it): the sink writes the canonical state over that date, and over no other later one.
* A **duplicate** becomes an exception-queue row: a dead letter on ``sink.dlq`` with the
  reason ``duplicate_contact``, keyed ``crm-repair:duplicate_contact:<customer>``. It holds a
  correction under that same key, so once a person has merged the contacts in HubSpot, the
  row's *retry* writes the canonical state and its delivery resolves the row.
* Each of them is a manual intervention: a ``sink.results`` row with outcome ``repaired``,
  counted by the metrics store's ``manual_interventions_per_week``.

The error text of a row names contact ids only (no email, no customer id in the text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paystream.commands.crm_repair.checks import SAME_CUSTOMER_ID, Duplicate, Findings, Record
from paystream.vocabulary import DUPLICATE_CONTACT, EMAIL_HELD_BY_OTHER_CUSTOMER, REPAIRED

SINK = "crm"
#: the cause of a record that has a state but no cause event (never: the worker sets both)
NO_CAUSE = "unknown"


def crm_key(customer_id: str, cause_event_id: str) -> str:
    """The worker's idempotency key of a CRM command (``processors.commands.crm_key``)."""
    return f"crm:{customer_id}:{cause_event_id}"


def duplicate_key(customer_id: str) -> str:
    return f"crm-repair:{DUPLICATE_CONTACT}:{customer_id}"


@dataclass(frozen=True)
class Message:
    """One record to produce: topic kind (``sink_crm``, ``sink_dlq``, ``sink_results``),
    Kafka key, schema name and the record itself."""

    topic: str
    key: str
    schema: str
    value: dict[str, Any]


def crm_command(
    record: Record,
    now_ms: int,
    correlation_id: str,
    key: str | None = None,
    overwrites_ms: int | None = None,
) -> dict[str, Any]:
    """The ``crm_command`` of the record's current state, as the worker would send it, and
    the later CRM date it overwrites (``None``: the sink's stale guard as for the worker's)."""
    assert record.billing_state is not None
    cause = record.cause_event_id or NO_CAUSE
    changed = record.changed_at_ms or 0
    return {
        "idempotency_key": key or crm_key(record.customer_id, cause),
        "customer_id": record.customer_id,
        "billing_state": record.billing_state,
        "billing_state_changed_at_ms": changed,
        "email": record.email,
        "user_id": record.user_id,
        "cause_event_id": cause,
        "cause_event_type": record.cause_event_type or NO_CAUSE,
        # the cause's time as far as the record knows it: the state changed when it happened
        "event_created": changed // 1000,
        "received_at_ms": 0,
        "processed_at_ms": now_ms,
        "livemode": record.livemode,
        "correlation_id": correlation_id,
        "overwrites_changed_at_ms": overwrites_ms,
    }


def duplicate_text(duplicate: Duplicate) -> str:
    """The row's one line for a person: which contacts, what to do (no email, no id)."""
    own, *others = duplicate.contact_ids
    rest = ", ".join(others)
    if duplicate.kind == SAME_CUSTOMER_ID:
        what = f"contacts {own} and {rest} carry the same Stripe customer id"
    elif duplicate.kind == EMAIL_HELD_BY_OTHER_CUSTOMER:
        return (
            f"contact {own}, another Stripe customer's, holds this customer's email: merge the "
            "two customers in Stripe or give one another email, then retry this row"
        )
    else:
        what = f"contact {rest} holds the email of this customer's contact {own}"
    return f"{what}: merge them in HubSpot (Contacts > Actions > Merge), then retry this row"


def intervention(command: Mapping[str, Any], reason: str | None, now_ms: int) -> dict[str, Any]:
    """The ``sink_result`` of one repair, outcome ``repaired`` (a manual intervention)."""
    return {
        "sink": SINK,
        "idempotency_key": command["idempotency_key"],
        "outcome": REPAIRED,
        "attempts": 0,
        "reason_code": reason,
        "latency_ms": 0.0,
        "customer_id": command["customer_id"],
        "cause_event_id": command["cause_event_id"],
        "cause_event_type": command["cause_event_type"],
        "event_created": 0,
        "received_at_ms": 0,
        "processed_at_ms": 0,
        "acked_at_ms": now_ms,
        "correlation_id": command["correlation_id"],
    }


def dead_letter(
    duplicate: Duplicate, command: Mapping[str, Any], encoded: bytes, source_topic: str, now_ms: int
) -> dict[str, Any]:
    """The ``dead_letter`` that opens the duplicate's exception-queue row."""
    return {
        "sink": SINK,
        "idempotency_key": command["idempotency_key"],
        "reason_code": DUPLICATE_CONTACT,
        "last_error": duplicate_text(duplicate),
        "attempts": 1,
        "failed_at_ms": now_ms,
        "customer_id": duplicate.customer_id,
        "cause_event_id": command["cause_event_id"],
        "correlation_id": command["correlation_id"],
        "source_topic": source_topic,
        "command": encoded,
    }


def corrections(
    findings: Findings, records: Mapping[str, Record], now_ms: int, correlation_id: str
) -> list[Message]:
    """The CRM command and the intervention row of every correctable customer."""
    out = []
    later = findings.overwrites
    for customer_id in findings.correctable:
        record = records[customer_id]
        command = crm_command(record, now_ms, correlation_id, None, later.get(customer_id))
        out.append(Message("sink_crm", customer_id, "crm_command", command))
        out.append(
            Message(
                "sink_results",
                command["idempotency_key"],
                "sink_result",
                intervention(command, None, now_ms),
            )
        )
    return out


def duplicate_rows(
    duplicates: Sequence[Duplicate],
    records: Mapping[str, Record],
    now_ms: int,
    correlation_id: str,
    encode: Callable[[str, Mapping[str, Any]], bytes],
    source_topic: str,
) -> list[Message]:
    """The dead letter of each duplicate's row (holding the correction its retry sends after
    a merge) and its intervention row. ``encode``: the Avro codec's single-object encoding."""
    out = []
    for duplicate in duplicates:
        key = duplicate_key(duplicate.customer_id)
        command = crm_command(records[duplicate.customer_id], now_ms, correlation_id, key)
        letter = dead_letter(
            duplicate, command, encode("crm_command", command), source_topic, now_ms
        )
        out.append(Message("sink_dlq", key, "dead_letter", letter))
        out.append(
            Message(
                "sink_results", key, "sink_result", intervention(command, DUPLICATE_CONTACT, now_ms)
            )
        )
    return out
