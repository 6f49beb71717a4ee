"""The wire vocabulary every stage shares: each word defined once, here.

Billing states, subscription statuses and customer-level facts, ticket triggers, the
worker's and the sinks' outcomes and reason codes, the Stripe and app event types the
pipeline handles, and the Stripe dashboard links. Stages import these names; none spells
the strings again. Plain constants and pure functions only (no I/O, no settings).
"""

from __future__ import annotations

from typing import Final

# -- billing states (SPEC §5) -------------------------------------------------------------

ONBOARDING_PENDING = "onboarding_pending"
ACTIVE = "active"
PAYMENT_FAILED = "payment_failed"
PAUSED = "paused"
REFUNDED = "refunded"
CANCELED = "canceled"
#: every billing state, in the order the CRM's select property lists them
BILLING_STATES = (ONBOARDING_PENDING, ACTIVE, PAYMENT_FAILED, PAUSED, REFUNDED, CANCELED)

# -- what the state is derived from (SPEC §5) -----------------------------------------------

#: a subscription's status, set by the newest event about it (``GET /customers/{id}``
#: returns these per subscription)
SUBSCRIPTION_PAID = "paid"
SUBSCRIPTION_FAILING = "failing"
SUBSCRIPTION_PAUSED = PAUSED
#: terminal: no later event revives the subscription
SUBSCRIPTION_ENDED = "ended"
SUBSCRIPTION_STATUSES = (
    SUBSCRIPTION_PAID,
    SUBSCRIPTION_FAILING,
    SUBSCRIPTION_PAUSED,
    SUBSCRIPTION_ENDED,
)
#: the newest customer-level fact (one-off payment, full refund, a subscription ending)
FACT_PAID = SUBSCRIPTION_PAID
FACT_FAILED = "failed"
FACT_REFUNDED = REFUNDED
FACT_ENDED = SUBSCRIPTION_ENDED
CUSTOMER_FACTS = (FACT_PAID, FACT_FAILED, FACT_REFUNDED, FACT_ENDED)

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
#: the internal event ``paystream forget`` sends through ``app.events`` (never from outside,
#: no lifecycle meaning): the worker deletes the customer's record, tombstoning its changelog
CUSTOMER_ERASE = "paystream.customer_erase"
#: ``admin.exceptions`` status of a dead letter whose customer ``paystream forget`` erased:
#: the admin lists no row for it (``paystream.erasure``)
ERASED = "erased"

# -- worker outcomes per event (``paystream_events_total``'s ``outcome``) -------------------

APPLIED: Final = "applied"
#: older than what the record already holds: no effect
STALE: Final = "stale"
IGNORED: Final = "ignored"
DUPLICATE = "duplicate"
MALFORMED = "malformed"
MODE_MISMATCH = "mode_mismatch"
EVENT_OUTCOMES = (APPLIED, STALE, IGNORED, DUPLICATE, MALFORMED, MODE_MISMATCH)

# -- sink outcomes (``sink.results``, ``paystream_sink_requests_total``) --------------------

DELIVERED = "delivered"
DRY_RUN = "dry_run"
RETRY = "retry"
DEAD_LETTERED = "dead_lettered"
SINK_OUTCOMES = (DELIVERED, DRY_RUN, RETRY, DEAD_LETTERED)

# -- sink reason codes of a delivered command (``sink.results``' ``reason_code``) ----------

#: delivered without a call of its own (a newer state of the customer went in its place)
COALESCED = "coalesced"
#: ``STALE`` is also the reason code of a state older than the one the CRM holds
LINKED_EXISTING_CONTACT = "linked_existing_contact"
#: the email belongs to another HubSpot contact: written without it, a person decides
EMAIL_HELD_BY_OTHER_CONTACT = "email_held_by_other_contact"
#: another Stripe customer already claimed the email in the same batch
EMAIL_HELD_BY_OTHER_CUSTOMER = "email_held_by_other_customer"
#: reason codes of a delivered command that also goes to ``sink.dlq``: it went out, and a
#: person must still decide something
NEEDS_A_PERSON = frozenset({EMAIL_HELD_BY_OTHER_CONTACT})

# -- Stripe dashboard links ---------------------------------------------------------------

DASHBOARD = "https://dashboard.stripe.com"


def dashboard_url(kind: str, object_id: str, *, livemode: bool) -> str:
    """The Stripe dashboard page of one object (``kind``: ``customers``, ``invoices``, ...)."""
    return f"{DASHBOARD}/{'' if livemode else 'test/'}{kind}/{object_id}"


def customer_dashboard_url(customer_id: str, livemode: bool) -> str:
    """The customer's page in the Stripe dashboard (test-mode pages live under ``/test``)."""
    return dashboard_url("customers", customer_id, livemode=livemode)


# --- sync latency's delivery label (SPEC §7) ---------------------------------------------
#: ``paystream_sync_latency_seconds{delivery}``: the pipeline's own first delivery, a
#: command re-sent by a person (the exception queue's retry) or an event found by
#: ``paystream reconcile``. The SLO alert reads ``first`` only.
DELIVERY_FIRST = "first"
DELIVERY_RETRY = "retry"
DELIVERY_RECONCILE = "reconcile"
DELIVERIES = (DELIVERY_FIRST, DELIVERY_RETRY, DELIVERY_RECONCILE)
#: Kafka header that marks a re-sent command (the command's bytes stay the original's)
DELIVERY_HEADER = "paystream-delivery"
#: the envelope's ``source`` of an event ``paystream reconcile`` re-published
RECONCILE_SOURCE = "reconcile"

# --- paystream crm-repair ----------------------------------------------------------------
#: reason code of the exception-queue row ``paystream crm-repair --apply`` opens for a
#: duplicate contact (two contacts with one customer id, or the customer's email held by a
#: second contact): a person merges them in HubSpot, then retries the row
DUPLICATE_CONTACT = "duplicate_contact"
#: ``sink.results`` outcome of a correction or a duplicate row crm-repair sent: a person's
#: action, counted as a manual intervention like the exception queue's retried/dismissed
REPAIRED = "repaired"

# --- product notifications (SPEC §6, sinks/app_webhook.py) -------------------------------
#: the sink's name: the ``sink`` label, ``paystream sinks app_webhook``, its dead letters'
#: ``sink`` (the exception queue re-sends those to ``customer.lifecycle``, its input)
APP_WEBHOOK_SINK = "app_webhook"
#: the one notification type the app-webhook sink POSTs (the TypeScript client's
#: ``BILLING_STATE_CHANGED``)
BILLING_STATE_CHANGED = "billing_state.changed"
#: the header of a first-party signature, ``t=...,v1=...`` (app events and notifications)
APP_SIGNATURE_HEADER = "Paystream-Signature"
