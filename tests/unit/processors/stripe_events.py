"""Realistic Stripe events for the processor tests, cloned from the shared fixtures.

``stripe_body`` takes a real Stripe event body of the right object type and changes the id,
type, created, customer and any object fields; ``envelope`` wraps it the way ingest does.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from processors.lifecycle import Event
from schemas.codec import APP_EVENT, STRIPE_EVENT, default_codec

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "stripe-fixtures"
if not FIXTURES.is_dir():  # a clone not beside shared/: the copy kept in the repository
    FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "stripe-fixtures"

_TEMPLATE = {
    "checkout.session.": "checkout_session_completed",
    "invoice.": "invoice_paid",
    "customer.subscription.": "subscription_updated",
    "charge.refunded": "charge_refunded",
    "charge.dispute.": "charge_dispute_created",
    "customer.": "customer_updated",
    "product.": "product_created",
}


@cache
def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return loaded


def stripe_body(
    event_type: str,
    event_id: str,
    created: int,
    customer: str | None,
    previous: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    template = next(v for k, v in _TEMPLATE.items() if event_type.startswith(k))
    body = copy.deepcopy(_fixture(template))
    body.update(id=event_id, type=event_type, created=created, livemode=False)
    obj = body["data"]["object"]
    if obj.get("object") == "customer":
        if customer:
            obj["id"] = customer
    elif "customer" in obj or customer is not None:
        obj["customer"] = customer
    obj.update(fields)
    body["data"].pop("previous_attributes", None)
    if previous is not None:
        body["data"]["previous_attributes"] = previous
    return body


def envelope(
    body: dict[str, Any],
    customer: str | None,
    received_at_ms: int = 1,
    delivered_by: str = "webhook",
) -> dict[str, Any]:
    return {
        "event_id": body["id"],
        "type": body["type"],
        "created": body["created"],
        "livemode": body["livemode"],
        "api_version": body.get("api_version"),
        "customer_id": customer,
        "received_at_ms": received_at_ms,
        "correlation_id": f"corr-{body['id']}",
        "source": delivered_by,
        "raw": json.dumps(body),
    }


def stripe_event(
    event_type: str,
    event_id: str,
    created: int,
    customer: str | None,
    previous: dict[str, Any] | None = None,
    **fields: Any,
) -> Event:
    """A lifecycle ``Event`` parsed from a realistic body."""
    from processors.events import from_stripe_envelope

    body = stripe_body(event_type, event_id, created, customer, previous, **fields)
    return from_stripe_envelope(envelope(body, customer))


def app_record(
    event_type: str, event_id: str, created: int, customer: str, user_id: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": event_type,
        "created": created,
        "customer_id": customer,
        "user_id": user_id,
        "received_at_ms": 1,
        "correlation_id": f"corr-{event_id}",
    }


def app_event(
    event_type: str, event_id: str, created: int, customer: str, user_id: str | None = None
) -> Event:
    from processors.events import from_app_event

    return from_app_event(app_record(event_type, event_id, created, customer, user_id))


def encoded_stripe(
    event_type: str,
    event_id: str,
    created: int,
    customer: str | None,
    *,
    delivered_by: str = "webhook",
    **fields: Any,
) -> tuple[str, bytes]:
    """``(kafka key, value)`` as ingest (or reconcile: ``delivered_by``) publishes it."""
    body = stripe_body(event_type, event_id, created, customer, **fields)
    value = default_codec().encode(
        STRIPE_EVENT, envelope(body, customer, delivered_by=delivered_by)
    )
    return (customer or event_id, value)


def encoded_app(
    event_type: str, event_id: str, created: int, customer: str, user_id: str | None = None
) -> tuple[str, bytes]:
    record = app_record(event_type, event_id, created, customer, user_id)
    return (customer, default_codec().encode(APP_EVENT, record))
