"""The wire vocabulary every stage shares: each word defined once, here.

Billing states, ticket triggers, sink outcomes, the Stripe and app event types the
pipeline handles, and the Stripe dashboard links. Stages import these names; none spells
the strings again. Plain constants and pure functions only (no I/O, no settings).
"""

from __future__ import annotations

# -- billing states (SPEC §5) -------------------------------------------------------------

ONBOARDING_PENDING = "onboarding_pending"
ACTIVE = "active"
PAYMENT_FAILED = "payment_failed"
PAUSED = "paused"
REFUNDED = "refunded"
CANCELED = "canceled"
#: every billing state, in the order the CRM's select property lists them
BILLING_STATES = (ONBOARDING_PENDING, ACTIVE, PAYMENT_FAILED, PAUSED, REFUNDED, CANCELED)

# -- helpdesk ticket triggers (SPEC §5) ---------------------------------------------------

FAILED_RENEWAL = "failed_renewal"
CHARGEBACK = "chargeback"
ONBOARDING_STUCK = "onboarding_stuck"
TICKET_TRIGGERS = (FAILED_RENEWAL, CHARGEBACK, ONBOARDING_STUCK)

# -- event types ----------------------------------------------------------------------------

#: every Stripe event type the pipeline reads: the list to enable on the webhook endpoint
#: (``paystream doctor`` checks it, the README prints it)
HANDLED_STRIPE_EVENT_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.deleted",
    "charge.refunded",
    "charge.dispute.created",
    "customer.created",
    "customer.updated",
)

#: the internal event the onboarding timer sends through ``app.events`` (never from outside)
ONBOARDING_DEADLINE = "paystream.onboarding_deadline"
#: first-party app event types accepted at ``POST /events/app``
APP_EVENT_TYPES = ("customer.linked", "onboarding.started", "onboarding.completed")
HANDLED_APP_EVENT_TYPES = (*APP_EVENT_TYPES, ONBOARDING_DEADLINE)

# -- sink outcomes (``sink.results``, ``paystream_sink_requests_total``) --------------------

DELIVERED = "delivered"
DRY_RUN = "dry_run"
RETRY = "retry"
DEAD_LETTERED = "dead_lettered"

# -- Stripe dashboard links ---------------------------------------------------------------

DASHBOARD = "https://dashboard.stripe.com"


def dashboard_url(kind: str, object_id: str, *, livemode: bool) -> str:
    """The Stripe dashboard page of one object (``kind``: ``customers``, ``invoices``, ...)."""
    return f"{DASHBOARD}/{'' if livemode else 'test/'}{kind}/{object_id}"
