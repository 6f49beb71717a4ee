"""Realistic Stripe events for one customer, cloned from real webhook bodies.

The templates in ``stripe_templates/`` are unmodified Stripe webhook events (Apache-2.0,
see its NOTICE); ``make_event`` clones one with new ids, customer, ``created`` and object
fields. ``storyline`` is the demo's sequence: checkout, first invoice, two failed renewals,
recovery, a pause and resume, a chargeback, a full refund, and the cancellation;
``two_subscriptions`` a customer with a plan and an add-on whose add-on is canceled (the
customer stays ``active``: the state is derived per subscription).
"""

from __future__ import annotations

import copy
import json
import secrets
from functools import cache
from importlib import resources
from typing import Any

TEMPLATES = {
    "checkout.session.completed": "checkout_session_completed",
    "invoice.paid": "invoice_paid",
    "invoice.payment_succeeded": "invoice_paid",
    "invoice.payment_failed": "invoice_paid",
    "charge.refunded": "charge_refunded",
    "charge.succeeded": "charge_succeeded",
    "charge.dispute.created": "charge_dispute_created",
    "customer.subscription.created": "subscription_updated",
    "customer.subscription.updated": "subscription_updated",
    "customer.subscription.paused": "subscription_updated",
    "customer.subscription.resumed": "subscription_updated",
    "customer.subscription.deleted": "subscription_deleted",
    "customer.updated": "customer_updated",
}


@cache
def _template(name: str) -> dict[str, Any]:
    text = (resources.files("paystream") / "stripe_templates" / f"{name}.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def make_event(
    event_type: str,
    *,
    customer: str,
    created: int,
    livemode: bool = False,
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A Stripe event of ``event_type`` for ``customer``; ``fields`` override data.object."""
    event = copy.deepcopy(_template(TEMPLATES[event_type]))
    event["id"] = event_id or new_id("evt")
    event["type"] = event_type
    event["created"] = created
    event["livemode"] = livemode
    obj = event["data"]["object"]
    if obj.get("object") == "customer":
        obj["id"] = customer
    elif obj.get("object") == "dispute":
        obj["id"] = new_id("dp")
        obj["charge"] = new_id("ch")
    else:
        obj["customer"] = customer
        if "id" in obj:
            obj["id"] = new_id(obj["id"].split("_", 1)[0])
    obj["livemode"] = livemode
    obj.update(fields)
    return event


def _failed_renewal(invoice: str, sub: str, email: str, attempt: int) -> dict[str, Any]:
    """The fields of a renewal invoice's ``attempt``-th failed payment (USD 49.00 due)."""
    return {
        "id": invoice,
        "subscription": sub,
        "billing_reason": "subscription_cycle",
        "attempt_count": attempt,
        "status": "open",
        "paid": False,
        "customer_email": email,
        "amount_due": 4900,
        "amount_paid": 0,
        "amount_remaining": 4900,
    }


def storyline(
    customer: str,
    start: int,
    *,
    step: int = 60,
    livemode: bool = False,
    email: str | None = None,
) -> list[dict[str, Any]]:
    """The demo's events for one customer, ``step`` seconds apart, in ``created`` order."""
    email = email or f"{customer.lower()}@example.com"
    t = iter(range(start, start + step * 100, step))
    invoice = new_id("in")
    sub = new_id("sub")

    def ev(event_type: str, **fields: Any) -> dict[str, Any]:
        return make_event(
            event_type, customer=customer, created=next(t), livemode=livemode, **fields
        )

    def failed(attempt: int) -> dict[str, Any]:
        return ev("invoice.payment_failed", **_failed_renewal(invoice, sub, email, attempt))

    paid_cycle = dict(subscription=sub, billing_reason="subscription_cycle", customer_email=email)
    return [
        ev(
            "checkout.session.completed",
            payment_status="paid",
            status="complete",
            subscription=sub,
            customer_email=email,
            customer_details={"email": email},
        ),
        ev(
            "invoice.paid",
            subscription=sub,
            billing_reason="subscription_create",
            customer_email=email,
        ),
        failed(1),
        failed(2),
        ev("invoice.paid", id=invoice, amount_paid=4900, **paid_cycle),
        ev(
            "customer.subscription.updated",
            id=sub,
            status="active",
            pause_collection={"behavior": "void", "resumes_at": None},
        ),
        ev("customer.subscription.resumed", id=sub, status="active", pause_collection=None),
        ev("charge.dispute.created", amount=4900, reason="fraudulent", status="needs_response"),
        ev("charge.refunded", amount=4900, amount_refunded=4900, refunded=True),
        ev("customer.subscription.deleted", id=sub, status="canceled"),
    ]


def two_subscriptions(
    customer: str,
    start: int,
    *,
    step: int = 60,
    livemode: bool = False,
    email: str | None = None,
) -> list[dict[str, Any]]:
    """A plan and an add-on, both paid, then the add-on canceled: the plan keeps the
    customer ``active`` (one subscription ending is not the customer churning)."""
    email = email or f"{customer.lower()}@example.com"
    t = iter(range(start, start + step * 100, step))
    plan, addon = new_id("sub"), new_id("sub")

    def ev(event_type: str, **fields: Any) -> dict[str, Any]:
        return make_event(
            event_type, customer=customer, created=next(t), livemode=livemode, **fields
        )

    def started(sub: str) -> list[dict[str, Any]]:
        return [
            ev("customer.subscription.created", id=sub, status="active", pause_collection=None),
            ev(
                "invoice.paid",
                subscription=sub,
                billing_reason="subscription_create",
                customer_email=email,
            ),
        ]

    return [
        *started(plan),
        *started(addon),
        ev("customer.subscription.deleted", id=addon, status="canceled"),
    ]
