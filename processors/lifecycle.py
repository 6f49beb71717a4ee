"""The billing lifecycle of SPEC §5, pure: ``apply(record, event) -> Applied``.

No I/O, no clock, no faust: plain data in, plain data out.

The state is derived from the record, never from the last event alone (``derive_state``):

* each **subscription** keeps a status (paid, failing, paused, ended) set by the newest
  event about it, compared by its position ``(created, rank, event id)``; ``rank`` breaks
  same-second ties (failing > paid) and the event id makes the order total. *ended* is
  terminal: once any event ends a subscription, nothing revives it (its position is the
  earliest ending event);
* the newest **customer-level fact** (a one-off payment paid or failed, a full refund, a
  subscription ending) by the same positions;
* facts that only grow: onboarding opened (the earliest opener), onboarding completed,
  email and user id (the newest carrier wins), tickets already fired.

The state: any subscription failing → ``payment_failed``; else any paid → ``active``; else
any paused → ``paused``; else the customer-level fact (paid → ``active``, failed →
``payment_failed``, refunded → ``refunded``, ended → ``canceled``); else none. ``active``
reads ``onboarding_pending`` while onboarding is open and not completed.

Max-by-position, min-by-position for the terminal status, and set union are commutative
and idempotent, so any permutation or repetition of a customer's events ends in the record
their ``created`` order gives, and applying an event twice changes nothing and emits
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from paystream.vocabulary import (
    ACTIVE,
    APPLIED,
    BILLING_STATES,
    CANCELED,
    CHARGEBACK,
    FACT_ENDED,
    FACT_FAILED,
    FACT_PAID,
    FACT_REFUNDED,
    FAILED_RENEWAL,
    HANDLED_STRIPE_EVENT_TYPES,
    IGNORED,
    ONBOARDING_DEADLINE,
    ONBOARDING_PENDING,
    ONBOARDING_STUCK,
    PAUSED,
    PAYMENT_FAILED,
    REFUNDED,
    STALE,
    SUBSCRIPTION_ENDED,
    SUBSCRIPTION_FAILING,
    SUBSCRIPTION_PAID,
    SUBSCRIPTION_PAUSED,
)

__all__ = [
    "ACTIVE",
    "CANCELED",
    "ONBOARDING_DEADLINE",
    "ONBOARDING_PENDING",
    "PAUSED",
    "PAYMENT_FAILED",
    "REFUNDED",
    "STATES",
    "Applied",
    "ContactChanged",
    "CustomerRecord",
    "Event",
    "OpenTicket",
    "StateChanged",
    "Subscription",
    "Ticket",
    "apply",
    "apply_orphan",
    "classify",
    "customer_id_of",
    "derive_state",
    "invoice_subscription",
    "onboarding_stuck_ticket",
]

STATES = BILLING_STATES

#: same-second tie-break between events of one subscription: failing > paid
SUBSCRIPTION_RANK = {
    SUBSCRIPTION_PAID: 1,
    SUBSCRIPTION_FAILING: 2,
    SUBSCRIPTION_PAUSED: 3,
    SUBSCRIPTION_ENDED: 4,
}
#: same-second tie-break between customer-level facts: the stronger fact wins
FACT_RANK = {FACT_PAID: 1, FACT_FAILED: 2, FACT_REFUNDED: 4, FACT_ENDED: 5}
#: the state a customer-level fact gives when no subscription is live
FACT_STATE = {
    FACT_PAID: ACTIVE,
    FACT_FAILED: PAYMENT_FAILED,
    FACT_REFUNDED: REFUNDED,
    FACT_ENDED: CANCELED,
}
#: the subscription of a record written before subscriptions were kept one by one: the
#: first subscription an event names afterwards takes its place (see ``CustomerRecord``)
LEGACY_SUBSCRIPTION = ""

Position = tuple[int, int, str]
"""``(created, rank, event id)``: the total order of state-setting events."""

Outcome = Literal["applied", "stale", "ignored"]


# -- plain data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One input event, Stripe's or the product's, reduced to what the lifecycle reads."""

    event_id: str
    type: str
    created: int
    customer_id: str | None
    source: Literal["stripe", "app"] = "stripe"
    object: dict[str, Any] = field(default_factory=dict)
    previous_attributes: dict[str, Any] | None = None
    user_id: str | None = None
    livemode: bool = False
    received_at_ms: int = 0
    correlation_id: str = ""
    #: how it reached ingest: ``webhook``, ``reconcile`` (listed from the Events API), ``demo``
    delivered_by: str = "webhook"
    #: the API version Stripe rendered the event at (None for app events)
    api_version: str | None = None


@dataclass(frozen=True)
class Ticket:
    """A helpdesk ticket to open once per key, ever."""

    trigger: str
    object_id: str
    #: the typed facts of the trigger, shaped like its record in helpdesk_command.avsc
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"paystream:{self.trigger}:{self.object_id}"


@dataclass(frozen=True)
class Facts:
    """What one event says, independent of any record (see ``classify``)."""

    #: the subscription the event is about and the status it gives it
    subscription: str | None = None
    status: str | None = None
    #: the customer-level fact it carries (one-off paid/failed, full refund, ended)
    fact: str | None = None
    opens_onboarding: bool = False
    completes_onboarding: bool = False
    email: str | None = None
    user_id: str | None = None
    ticket: Ticket | None = None
    handled: bool = True


@dataclass(frozen=True)
class Subscription:
    """One subscription's status and the position of the event that set it."""

    subscription_id: str
    status: str
    position: Position

    def public(self) -> dict[str, Any]:
        return {
            "id": self.subscription_id or None,
            "status": self.status,
            "since_ms": self.position[0] * 1000,
        }


def _position(value: Any) -> Position:
    created, rank, event_id = value
    return (int(created), int(rank), str(event_id))


def _upgraded(data: dict[str, Any]) -> dict[str, Any]:
    """A record of the single-subscription release (``base``, ``base_position``), upgraded.

    Its base was set by the newest state-setting event, whatever subscription it named. A
    refund or a cancellation becomes the customer-level fact; a paid checkout (its mode was
    not kept) the one-off *paid* fact; any other paid, failing or paused base the status of
    the ``LEGACY_SUBSCRIPTION``, which the first subscription named afterwards takes over.
    """
    base, raw_position = data.pop("base", None), data.pop("base_position", None)
    if base is None or raw_position is None:
        return data
    created, _, event_id = _position(raw_position)
    base_type = data.get("cause_event_type") if data.get("cause_event_id") == event_id else None
    fact = {REFUNDED: FACT_REFUNDED, CANCELED: FACT_ENDED}.get(base)
    if base == ACTIVE and base_type == "checkout.session.completed":
        fact = FACT_PAID
    if fact is not None:
        data["customer_fact"] = fact
        data["customer_fact_position"] = (created, FACT_RANK[fact], event_id)
        return data
    status = {
        ACTIVE: SUBSCRIPTION_PAID,
        PAYMENT_FAILED: SUBSCRIPTION_FAILING,
        PAUSED: SUBSCRIPTION_PAUSED,
    }.get(base)
    if status is not None:
        rank = SUBSCRIPTION_RANK[status]
        data["subscriptions"] = [[LEGACY_SUBSCRIPTION, status, [created, rank, event_id]]]
    return data


@dataclass(frozen=True)
class CustomerRecord:
    """The canonical billing record of one Stripe customer (the ``customers`` table value)."""

    customer_id: str
    state: str | None = None
    state_changed_at_ms: int = 0
    cause_event_id: str | None = None
    cause_event_type: str | None = None
    email: str | None = None
    user_id: str | None = None
    livemode: bool = False
    #: by subscription id, sorted
    subscriptions: tuple[Subscription, ...] = ()
    customer_fact: str | None = None
    customer_fact_position: Position | None = None
    email_position: tuple[int, str] | None = None
    user_id_position: tuple[int, str] | None = None
    onboarding_opened_by: tuple[int, str] | None = None
    onboarding_completed_by: tuple[int, str] | None = None
    tickets: tuple[str, ...] = ()

    @property
    def onboarding_open(self) -> bool:
        return self.onboarding_opened_by is not None and self.onboarding_completed_by is None

    def subscription(self, subscription_id: str) -> Subscription | None:
        return next((s for s in self.subscriptions if s.subscription_id == subscription_id), None)

    def public(self) -> dict[str, Any]:
        """The record as the customer-state API returns it."""
        return {
            "stripe_customer_id": self.customer_id,
            "user_id": self.user_id,
            "email": self.email,
            "billing_state": self.state,
            "billing_state_changed_at_ms": self.state_changed_at_ms or None,
            "cause_event_id": self.cause_event_id,
            "cause_event_type": self.cause_event_type,
            "onboarding": (
                "completed"
                if self.onboarding_completed_by
                else "open"
                if self.onboarding_opened_by
                else None
            ),
            "subscriptions": [s.public() for s in self.subscriptions],
            "livemode": self.livemode,
        }

    def to_json(self) -> bytes:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["subscriptions"] = [
            [s.subscription_id, s.status, s.position] for s in self.subscriptions
        ]
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> CustomerRecord:
        """Read a stored record, upgrading one of the single-subscription release."""
        data = orjson.loads(raw)
        if "subscriptions" not in data:
            data = _upgraded(data)
        data["subscriptions"] = tuple(
            Subscription(str(sub_id), str(status), _position(position))
            for sub_id, status, position in data.get("subscriptions") or ()
        )
        if data.get("customer_fact_position") is not None:
            data["customer_fact_position"] = _position(data["customer_fact_position"])
        for name in (
            "email_position",
            "user_id_position",
            "onboarding_opened_by",
            "onboarding_completed_by",
        ):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        data["tickets"] = tuple(data.get("tickets") or ())
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class StateChanged:
    """Effect: the visible state changed (→ ``customer.lifecycle`` and ``sink.crm``)."""

    previous_state: str | None
    new_state: str
    changed_at_ms: int


@dataclass(frozen=True)
class ContactChanged:
    """Effect: email or user id changed while the state did not (→ ``sink.crm``)."""


@dataclass(frozen=True)
class OpenTicket:
    """Effect: open this helpdesk ticket (→ ``sink.helpdesk``)."""

    ticket: Ticket


Effect = StateChanged | ContactChanged | OpenTicket


@dataclass(frozen=True)
class Applied:
    """Result of ``apply``."""

    record: CustomerRecord
    effects: tuple[Effect, ...]
    outcome: Outcome


# -- reading Stripe objects -------------------------------------------------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _id_of(value: Any) -> str | None:
    """An object reference: its id, or the id of the expanded object."""
    return _str(value.get("id")) if isinstance(value, dict) else _str(value)


def _customer_of(obj: dict[str, Any]) -> str | None:
    customer = _id_of(obj.get("customer"))
    if customer:
        return customer
    charge = obj.get("charge")
    if isinstance(charge, dict):  # an expanded charge (disputes) carries the customer
        return _customer_of(charge)
    if obj.get("object") == "customer":
        return _str(obj.get("id"))
    return None


def customer_id_of(
    event_type: str, obj: dict[str, Any], envelope_customer: str | None
) -> str | None:
    """The Stripe customer an event belongs to, or None (e.g. a dispute on a bare charge)."""
    return envelope_customer or _customer_of(obj)


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription of an invoice in either payload shape, None for a one-off invoice.

    ``invoice.subscription`` before API version ``2025-03-31.basil``;
    ``invoice.parent.subscription_details.subscription`` from it on.
    """
    legacy = _id_of(invoice.get("subscription"))
    if legacy:
        return legacy
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    return _id_of(details.get("subscription")) if isinstance(details, dict) else None


def _email_of(obj: dict[str, Any]) -> str | None:
    details = obj.get("customer_details")
    if isinstance(details, dict) and _str(details.get("email")):
        return _str(details.get("email"))
    return _str(obj.get("customer_email")) or (
        _str(obj.get("email")) if obj.get("object") == "customer" else None
    )


def _user_id_of(obj: dict[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    return _str(metadata.get("user_id")) if isinstance(metadata, dict) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _subscription_status(
    kind: str, obj: dict[str, Any], previous: dict[str, Any] | None
) -> str | None:
    """The status a ``customer.subscription.*`` event gives its subscription, if any."""
    # .updated fires for any change (metadata, items, ...). Only a change of status or
    # pause_collection says something about billing; without previous_attributes, trust
    # the current status.
    if (
        kind == "customer.subscription.updated"
        and previous is not None
        and not ({"status", "pause_collection"} & previous.keys())
    ):
        return None
    status = obj.get("status")
    if kind == "customer.subscription.deleted" or status in ("canceled", "incomplete_expired"):
        return SUBSCRIPTION_ENDED
    if kind == "customer.subscription.paused" or status == "paused" or obj.get("pause_collection"):
        return SUBSCRIPTION_PAUSED
    if status in ("past_due", "unpaid", "incomplete"):
        return SUBSCRIPTION_FAILING
    if status in ("active", "trialing"):
        return SUBSCRIPTION_PAID
    return None


def _facts_of_failed_invoice(obj: dict[str, Any]) -> Ticket | None:
    if obj.get("billing_reason") != "subscription_cycle" or _int(obj.get("attempt_count")) < 2:
        return None
    invoice_id = _str(obj.get("id"))
    if invoice_id is None:
        return None
    subscription = invoice_subscription(obj)
    next_attempt = obj.get("next_payment_attempt")
    details = {
        "invoice_id": invoice_id,
        "amount_due": _int(obj.get("amount_due")),
        "currency": str(obj.get("currency") or ""),
        "attempt_count": _int(obj.get("attempt_count")),
        "invoice_number": _str(obj.get("number")),
        "hosted_invoice_url": _str(obj.get("hosted_invoice_url")),
        "subscription_id": subscription,
        "next_payment_attempt": next_attempt if isinstance(next_attempt, int) else None,
    }
    return Ticket(FAILED_RENEWAL, invoice_id, details)


def _facts_of_dispute(obj: dict[str, Any]) -> Ticket | None:
    dispute_id = _str(obj.get("id"))
    if dispute_id is None:
        return None
    charge = obj.get("charge")
    charge_id = _str(charge.get("id")) if isinstance(charge, dict) else _str(charge)
    due = (obj.get("evidence_details") or {}).get("due_by")
    details = {
        "dispute_id": dispute_id,
        "amount": _int(obj.get("amount")),
        "currency": str(obj.get("currency") or ""),
        "reason": str(obj.get("reason") or ""),
        "charge_id": charge_id,
        "payment_intent_id": _str(obj.get("payment_intent")),
        "evidence_due_by": due if isinstance(due, int) else None,
    }
    return Ticket(CHARGEBACK, dispute_id, details)


def _classify_app(event: Event) -> Facts:
    kind = event.type
    if kind == "customer.linked":
        return Facts(user_id=event.user_id)
    if kind == "onboarding.started":
        return Facts(opens_onboarding=True, user_id=event.user_id)
    if kind == "onboarding.completed":
        return Facts(completes_onboarding=True, user_id=event.user_id)
    if kind == ONBOARDING_DEADLINE:
        return Facts()
    return Facts(handled=False)


def _classify_checkout(kind: str, obj: dict[str, Any]) -> Facts:
    email, user_id = _email_of(obj), _user_id_of(obj)
    if kind == "checkout.session.async_payment_failed":
        return Facts(fact=FACT_FAILED, email=email, user_id=user_id)
    paid = kind == "checkout.session.async_payment_succeeded" or obj.get("payment_status") in (
        "paid",
        "no_payment_required",
    )
    if not paid or obj.get("mode") == "setup":
        return Facts(email=email, user_id=user_id)  # ACH/SEPA: the async result follows
    subscription = _id_of(obj.get("subscription"))
    if obj.get("mode") == "subscription" and subscription and kind.endswith(".completed"):
        return Facts(
            subscription=subscription,
            status=SUBSCRIPTION_PAID,
            opens_onboarding=True,
            email=email,
            user_id=user_id,
        )
    return Facts(fact=FACT_PAID, opens_onboarding=True, email=email, user_id=user_id)


def _classify_invoice(kind: str, obj: dict[str, Any]) -> Facts:
    email, user_id = _email_of(obj), _user_id_of(obj)
    subscription = invoice_subscription(obj)
    if kind in ("invoice.paid", "invoice.payment_succeeded"):
        if subscription:
            return Facts(subscription, SUBSCRIPTION_PAID, email=email, user_id=user_id)
        return Facts(fact=FACT_PAID, email=email, user_id=user_id)
    ticket = _facts_of_failed_invoice(obj) if kind == "invoice.payment_failed" else None
    if subscription:
        return Facts(
            subscription, SUBSCRIPTION_FAILING, email=email, user_id=user_id, ticket=ticket
        )
    if kind == "invoice.payment_failed":
        return Facts(fact=FACT_FAILED, email=email, user_id=user_id, ticket=ticket)
    return Facts(email=email, user_id=user_id)  # action required on a one-off invoice


def _classify_subscription(event: Event) -> Facts:
    obj = event.object
    subscription = _str(obj.get("id"))
    status = _subscription_status(event.type, obj, event.previous_attributes)
    if subscription is None or status is None:
        return Facts(user_id=_user_id_of(obj))
    fact = FACT_ENDED if status == SUBSCRIPTION_ENDED else None
    return Facts(subscription, status, fact, user_id=_user_id_of(obj))


_HANDLED_STRIPE = frozenset(HANDLED_STRIPE_EVENT_TYPES)


def classify(event: Event) -> Facts:
    """What an event says about a customer, on its own (a table of Stripe semantics)."""
    obj, kind = event.object, event.type
    if event.source == "app":
        return _classify_app(event)
    if kind not in _HANDLED_STRIPE:
        return Facts(handled=False)
    if kind.startswith("checkout.session."):
        return _classify_checkout(kind, obj)
    if kind.startswith("invoice."):
        return _classify_invoice(kind, obj)
    if kind.startswith("customer.subscription."):
        return _classify_subscription(event)
    if kind == "charge.refunded":
        amount, refunded = _int(obj.get("amount")), _int(obj.get("amount_refunded"))
        full = amount > 0 and refunded >= amount
        return Facts(fact=FACT_REFUNDED if full else None, email=_str(obj.get("receipt_email")))
    if kind == "charge.dispute.created":
        return Facts(ticket=_facts_of_dispute(obj))
    if kind in ("customer.created", "customer.updated"):
        return Facts(email=_email_of(obj), user_id=_user_id_of(obj))
    return Facts(handled=False)


# -- the state machine ------------------------------------------------------------------


def derive_state(
    subscriptions: tuple[Subscription, ...], fact: str | None, onboarding_open: bool
) -> str | None:
    """The customer's state (SPEC §5): a pure function of what the record holds."""
    statuses = {s.status for s in subscriptions}
    if SUBSCRIPTION_FAILING in statuses:
        return PAYMENT_FAILED
    if SUBSCRIPTION_PAID in statuses:
        base: str | None = ACTIVE
    elif SUBSCRIPTION_PAUSED in statuses:
        return PAUSED
    else:
        base = FACT_STATE.get(fact) if fact is not None else None
    return ONBOARDING_PENDING if base == ACTIVE and onboarding_open else base


def _newer(current: tuple[Any, ...] | None, candidate: tuple[Any, ...]) -> bool:
    return current is None or candidate > current


def _older(current: tuple[Any, ...] | None, candidate: tuple[Any, ...]) -> bool:
    return current is None or candidate < current


def fold_subscription(
    subscriptions: tuple[Subscription, ...], subscription_id: str, status: str, position: Position
) -> tuple[tuple[Subscription, ...] | None, bool]:
    """``(the new subscriptions or None when unchanged, whether the event was passed over)``.

    A live status moves to a newer position; *ended* wins over any live status whatever
    its position and keeps its earliest ending event; nothing revives an ended one.
    """
    by_id = {s.subscription_id: s for s in subscriptions}
    current = by_id.get(subscription_id)
    if current is None and LEGACY_SUBSCRIPTION in by_id:
        current = by_id.pop(LEGACY_SUBSCRIPTION)  # an upgraded record's one subscription
    if current is not None and current.position == position:
        return None, False  # this very event again
    if current is None:
        keep = True
    elif current.status == SUBSCRIPTION_ENDED:
        keep = status == SUBSCRIPTION_ENDED and position < current.position
    else:
        keep = status == SUBSCRIPTION_ENDED or position > current.position
    if not keep:
        return None, True
    by_id[subscription_id] = Subscription(subscription_id, status, position)
    return tuple(by_id[k] for k in sorted(by_id)), False


def onboarding_stuck_ticket(
    record: CustomerRecord, now_ms: int, stuck_after_ms: int
) -> Ticket | None:
    """The onboarding-stuck ticket due at ``now_ms``, if any and not fired yet."""
    if record.state != ONBOARDING_PENDING or record.onboarding_opened_by is None:
        return None
    opened_created, opener = record.onboarding_opened_by
    if now_ms - opened_created * 1000 < stuck_after_ms:
        return None
    ticket = Ticket(
        ONBOARDING_STUCK,
        f"{record.customer_id}:{opener}",
        {"opened_by_event_id": opener, "opened_at": int(opened_created)},
    )
    return None if ticket.key in record.tickets else ticket


def _fold_state(record: CustomerRecord, event: Event, facts: Facts) -> tuple[dict[str, Any], bool]:
    """The record fields the event's subscription status and customer-level fact change,
    and whether it is stale (each state-setting part passed over by a newer one)."""
    changes: dict[str, Any] = {}
    passed_over = False
    if facts.subscription is not None and facts.status is not None:
        position: Position = (event.created, SUBSCRIPTION_RANK[facts.status], event.event_id)
        subscriptions, passed_over = fold_subscription(
            record.subscriptions, facts.subscription, facts.status, position
        )
        if subscriptions is not None:
            changes["subscriptions"] = subscriptions
    if facts.fact is not None:
        position = (event.created, FACT_RANK[facts.fact], event.event_id)
        if _newer(record.customer_fact_position, position):
            changes.update(customer_fact=facts.fact, customer_fact_position=position)
        elif position != record.customer_fact_position:
            passed_over = True
    return changes, passed_over and not changes


def _fold_contact(
    record: CustomerRecord, event: Event, facts: Facts, changes: dict[str, Any]
) -> None:
    """Facts that only grow: onboarding opened/completed (earliest), email, user id (newest)."""
    stamp = (event.created, event.event_id)
    if event.livemode and not record.livemode:
        changes["livemode"] = True
    if facts.opens_onboarding and _older(record.onboarding_opened_by, stamp):
        changes["onboarding_opened_by"] = stamp
    if facts.completes_onboarding and _older(record.onboarding_completed_by, stamp):
        changes["onboarding_completed_by"] = stamp
    if facts.email and _newer(record.email_position, stamp):
        changes.update(email=facts.email, email_position=stamp)
    if facts.user_id and _newer(record.user_id_position, stamp):
        changes.update(user_id=facts.user_id, user_id_position=stamp)


def apply(
    record: CustomerRecord, event: Event, *, stuck_after_ms: int = 24 * 3600 * 1000
) -> Applied:
    """Fold one event into a customer's record; return the new record and its effects."""
    facts = classify(event)
    if not facts.handled:
        return Applied(record, (), IGNORED)
    changes, stale = _fold_state(record, event, facts)
    _fold_contact(record, event, facts, changes)

    def current(name: str) -> Any:
        return changes[name] if name in changes else getattr(record, name)

    effects: list[Effect] = []
    state = derive_state(
        current("subscriptions"),
        current("customer_fact"),
        current("onboarding_opened_by") is not None and current("onboarding_completed_by") is None,
    )
    if state != record.state and state is not None:
        # Strictly increasing per customer, so a CRM that keeps "the newest" never drops
        # a change; equal to the cause's created in every ordinary case.
        changed_at = max(event.created * 1000, record.state_changed_at_ms + 1)
        changes.update(
            state=state,
            state_changed_at_ms=changed_at,
            cause_event_id=event.event_id,
            cause_event_type=event.type,
        )
        effects.append(StateChanged(record.state, state, changed_at))
    elif record.state is not None and (current("email"), current("user_id")) != (
        record.email,
        record.user_id,
    ):
        effects.append(ContactChanged())
    # Built from the instance's __dict__ rather than with dataclasses.replace, because that
    # re-reads every field through its Field object, on every event the worker applies.
    new = CustomerRecord(**{**record.__dict__, **changes}) if changes else record
    new = _open_tickets(new, event, facts, stuck_after_ms, effects)
    outcome: Outcome = STALE if stale and not effects else APPLIED
    return Applied(new, tuple(effects), outcome)


def _open_tickets(
    record: CustomerRecord,
    event: Event,
    facts: Facts,
    stuck_after_ms: int,
    effects: list[Effect],
) -> CustomerRecord:
    tickets = [facts.ticket] if facts.ticket is not None else []
    if event.type == ONBOARDING_DEADLINE:
        due = onboarding_stuck_ticket(record, event.created * 1000, stuck_after_ms)
        tickets += [due] if due is not None else []
    for ticket in tickets:
        if ticket.key not in record.tickets:
            record = replace(record, tickets=(*record.tickets, ticket.key))
            effects.append(OpenTicket(ticket))
    return record


def apply_orphan(event: Event) -> tuple[Effect, ...]:
    """Effects of an event that names no customer (a dispute on a bare charge)."""
    facts = classify(event)
    return (OpenTicket(facts.ticket),) if facts.ticket is not None else ()
