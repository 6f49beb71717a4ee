"""Sample sink commands: plain dicts shaped like the ``crm_command``/``helpdesk_command``
Avro records the worker writes (``schemas/``), the input of ``bench/sinks.py`` and the
sink tests. Every field has a plausible default; keyword arguments override any of them."""

from __future__ import annotations

from typing import Any

from paystream.vocabulary import ACTIVE, CHARGEBACK, FAILED_RENEWAL, ONBOARDING_STUCK


def _provenance(event_id: str, event_type: str, created_s: int, request: str) -> dict[str, Any]:
    """The fields every command carries about the event that caused it (``schemas/``)."""
    return {
        "cause_event_id": event_id,
        "cause_event_type": event_type,
        "event_created": created_s,
        "received_at_ms": created_s * 1000 + 150,
        "processed_at_ms": created_s * 1000 + 300,
        "livemode": False,
        "correlation_id": f"req_{request}",
        "source": "webhook",
    }


def crm_command(
    customer: str = "cus_A", state: str = ACTIVE, changed_s: int = 1_700_000_000, **extra: Any
) -> dict[str, Any]:
    """A command to set ``customer``'s billing state, caused by an ``invoice.paid``."""
    event = extra.pop("cause_event_id", f"evt_{customer}_{changed_s}_{state}")
    command: dict[str, Any] = {
        "idempotency_key": f"crm:{customer}:{event}",
        "customer_id": customer,
        "billing_state": state,
        "billing_state_changed_at_ms": changed_s * 1000,
        "email": None,
        "user_id": None,
        **_provenance(event, "invoice.paid", changed_s, event),
        "overwrites_changed_at_ms": None,  # a worker's command: the stale guard as ever
    }
    command.update(extra)
    return command


def helpdesk_command(
    trigger: str = FAILED_RENEWAL,
    object_id: str = "in_1",
    customer: str = "cus_A",
    created_s: int = 1_700_000_000,
    **extra: Any,
) -> dict[str, Any]:
    """A v2 command with the trigger's typed facts; ``facts=`` gives a v1-style command."""
    v1 = "facts" in extra
    typed: dict[str, dict[str, Any]] = {
        FAILED_RENEWAL: {
            "invoice_id": object_id,
            "amount_due": 4900,
            "currency": "usd",
            "attempt_count": 2,
            "invoice_number": None,
            "hosted_invoice_url": None,
            "subscription_id": None,
            "next_payment_attempt": None,
        },
        CHARGEBACK: {
            "dispute_id": object_id,
            "amount": 4900,
            "currency": "usd",
            "reason": "fraudulent",
            "charge_id": None,
            "payment_intent_id": None,
            "evidence_due_by": created_s + 7 * 86400,
        },
        ONBOARDING_STUCK: {"opened_by_event_id": "evt_open", "opened_at": created_s - 86400},
    }
    command: dict[str, Any] = {
        "idempotency_key": f"paystream:{trigger}:{object_id}",
        "trigger": trigger,
        "object_id": object_id,
        "customer_id": customer,
        "email": "jenny@example.com",
        "user_id": "user_42",
        "facts": {},  # what a worker writes now: the typed record alone
        **_provenance(f"evt_{object_id}", "invoice.payment_failed", created_s, object_id),
    }
    for name, record in typed.items():
        command[name] = record if name == trigger and not v1 else None
    command.update(extra)
    return command
