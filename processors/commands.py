"""Effects → Avro command records for sink.crm, sink.helpdesk and customer.lifecycle (pure).

Every field is a function of the events seen, except ``processed_at_ms`` (telemetry). A
sink command carries its cause event's ``source`` (``webhook``, ``reconcile``, ``demo``), so
the sinks can label the sync latency of an event ``reconcile`` recovered as such.
"""

from __future__ import annotations

from typing import Any

from paystream.vocabulary import TICKET_TRIGGERS
from processors.lifecycle import CustomerRecord, Event, Ticket


def crm_key(customer_id: str, cause_event_id: str) -> str:
    return f"crm:{customer_id}:{cause_event_id}"


def _stages(event: Event, processed_at_ms: int) -> dict[str, Any]:
    return {
        "event_created": event.created,
        "received_at_ms": event.received_at_ms,
        "processed_at_ms": processed_at_ms,
        "livemode": event.livemode,
        "correlation_id": event.correlation_id,
    }


def crm_command(record: CustomerRecord, event: Event, processed_at_ms: int) -> dict[str, Any]:
    """Upsert the contact with the record's current state (caused by ``event``)."""
    assert record.state is not None
    return {
        "idempotency_key": crm_key(record.customer_id, event.event_id),
        "customer_id": record.customer_id,
        "billing_state": record.state,
        "billing_state_changed_at_ms": record.state_changed_at_ms,
        "email": record.email,
        "user_id": record.user_id,
        "cause_event_id": event.event_id,
        "cause_event_type": event.type,
        **_stages(event, processed_at_ms),
        "source": event.delivered_by,
    }


def lifecycle_change(
    record: CustomerRecord, previous_state: str | None, event: Event, processed_at_ms: int
) -> dict[str, Any]:
    assert record.state is not None
    return {
        "customer_id": record.customer_id,
        "user_id": record.user_id,
        "email": record.email,
        "previous_state": previous_state,
        "new_state": record.state,
        "cause_event_id": event.event_id,
        "cause_event_type": event.type,
        "changed_at_ms": record.state_changed_at_ms,
        **_stages(event, processed_at_ms),
        "source": event.delivered_by,
    }


def helpdesk_command(
    ticket: Ticket,
    customer_id: str,
    record: CustomerRecord | None,
    event: Event,
    processed_at_ms: int,
) -> dict[str, Any]:
    return {
        "idempotency_key": ticket.key,
        "trigger": ticket.trigger,
        "object_id": ticket.object_id,
        "customer_id": customer_id,
        "email": record.email if record else None,
        "user_id": record.user_id if record else None,
        # the trigger's own typed record, None for the other triggers; v1's string map
        # ("facts") stays empty (the schema keeps it only for records written before)
        "facts": {},
        **{t: (dict(ticket.details) if t == ticket.trigger else None) for t in TICKET_TRIGGERS},
        "cause_event_id": event.event_id,
        "cause_event_type": event.type,
        **_stages(event, processed_at_ms),
        "source": event.delivered_by,
    }
