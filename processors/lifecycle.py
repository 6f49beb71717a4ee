"""The billing lifecycle of SPEC §5, pure: ``apply(record, event) -> (record, effects)``.

No I/O, no clock, no faust: plain data in, plain data out.

Order independence is built into the record rather than recovered from history:

* The *base* state is set by the newest state-setting event, compared by its position
  ``(created, rank, event id)``. ``rank`` breaks same-second ties in favour of the
  stronger state (canceled > refunded > paused > payment_failed > active), the event id
  makes the order total. An older event never replaces a newer base (it is *stale*).
* Facts only grow: onboarding opened (the earliest opener is remembered), onboarding
  completed, email and user id (the newest carrier wins), tickets already fired.
* The visible state is derived from the base and the facts: a paid base reads
  ``onboarding_pending`` while onboarding is open and not completed, ``active`` otherwise.

Max-by-position and set union are commutative and idempotent, so any permutation or
repetition of a customer's events ends in the record their ``created`` order gives, and
applying an event twice changes nothing and emits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

# -- states and event types -------------------------------------------------------------

ONBOARDING_PENDING = "onboarding_pending"
ACTIVE = "active"
PAYMENT_FAILED = "payment_failed"
PAUSED = "paused"
REFUNDED = "refunded"
CANCELED = "canceled"
STATES = (ONBOARDING_PENDING, ACTIVE, PAYMENT_FAILED, PAUSED, REFUNDED, CANCELED)

#: same-second tie-break: the stronger state wins
RANK = {ACTIVE: 1, PAYMENT_FAILED: 2, PAUSED: 3, REFUNDED: 4, CANCELED: 5}

#: the internal event the onboarding timer sends through ``app.events`` (never from outside)
ONBOARDING_DEADLINE = "paystream.onboarding_deadline"

FAILED_RENEWAL = "failed_renewal"
CHARGEBACK = "chargeback"
ONBOARDING_STUCK = "onboarding_stuck"

HANDLED_STRIPE_TYPES = frozenset(
    {
        "checkout.session.completed",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "customer.subscription.updated",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.deleted",
        "charge.refunded",
        "charge.dispute.created",
        "customer.created",
        "customer.updated",
    }
)
HANDLED_APP_TYPES = frozenset(
    {"customer.linked", "onboarding.started", "onboarding.completed", ONBOARDING_DEADLINE}
)

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


@dataclass(frozen=True)
class Ticket:
    """A helpdesk ticket to open once per key, ever."""

    trigger: str
    object_id: str
    facts: dict[str, str]
    #: the typed facts of the trigger, shaped like its record in helpdesk_command.avsc (v2)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"paystream:{self.trigger}:{self.object_id}"


@dataclass(frozen=True)
class Facts:
    """What one event says, independent of any record (see ``classify``)."""

    base: str | None = None
    opens_onboarding: bool = False
    completes_onboarding: bool = False
    email: str | None = None
    user_id: str | None = None
    ticket: Ticket | None = None
    handled: bool = True


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
    base: str | None = None
    base_position: Position | None = None
    email_position: tuple[int, str] | None = None
    user_id_position: tuple[int, str] | None = None
    onboarding_opened_by: tuple[int, str] | None = None
    onboarding_completed_by: tuple[int, str] | None = None
    tickets: tuple[str, ...] = ()

    @property
    def onboarding_open(self) -> bool:
        return self.onboarding_opened_by is not None and self.onboarding_completed_by is None

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
            "livemode": self.livemode,
        }

    def to_json(self) -> bytes:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> CustomerRecord:
        data = orjson.loads(raw)
        for name in ("base_position", "email_position", "user_id_position"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        for name in ("onboarding_opened_by", "onboarding_completed_by"):
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


def _customer_of(obj: dict[str, Any]) -> str | None:
    customer = obj.get("customer")
    if isinstance(customer, dict):
        return _str(customer.get("id"))
    if _str(customer):
        return str(customer)
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


def _subscription_base(obj: dict[str, Any], previous: dict[str, Any] | None) -> str | None:
    # subscription.updated fires for any change (metadata, items, ...). Only a change of
    # status or pause_collection says something about billing; without
    # previous_attributes, trust the current status.
    if previous is not None and not ({"status", "pause_collection"} & previous.keys()):
        return None
    status = obj.get("status")
    if obj.get("pause_collection") or status == "paused":
        return PAUSED
    if status in ("past_due", "unpaid"):
        return PAYMENT_FAILED
    if status in ("active", "trialing"):
        return ACTIVE
    if status == "canceled":
        return CANCELED
    return None


def _facts_of_failed_invoice(obj: dict[str, Any]) -> Ticket | None:
    if obj.get("billing_reason") != "subscription_cycle" or _int(obj.get("attempt_count")) < 2:
        return None
    invoice_id = _str(obj.get("id"))
    if invoice_id is None:
        return None
    facts = {
        "invoice": invoice_id,
        "attempt_count": str(_int(obj.get("attempt_count"))),
        "amount_due": str(_int(obj.get("amount_due"))),
        "currency": str(obj.get("currency") or ""),
    }
    if _str(obj.get("hosted_invoice_url")):
        facts["hosted_invoice_url"] = str(obj["hosted_invoice_url"])
    if _str(obj.get("subscription")):
        facts["subscription"] = str(obj["subscription"])
    next_attempt = obj.get("next_payment_attempt")
    details = {
        "invoice_id": invoice_id,
        "amount_due": _int(obj.get("amount_due")),
        "currency": str(obj.get("currency") or ""),
        "attempt_count": _int(obj.get("attempt_count")),
        "invoice_number": _str(obj.get("number")),
        "hosted_invoice_url": _str(obj.get("hosted_invoice_url")),
        "subscription_id": _str(obj.get("subscription")),
        "next_payment_attempt": next_attempt if isinstance(next_attempt, int) else None,
    }
    return Ticket(FAILED_RENEWAL, invoice_id, facts, details)


def _facts_of_dispute(obj: dict[str, Any]) -> Ticket | None:
    dispute_id = _str(obj.get("id"))
    if dispute_id is None:
        return None
    charge = obj.get("charge")
    charge_id = _str(charge.get("id")) if isinstance(charge, dict) else _str(charge)
    facts = {
        "dispute": dispute_id,
        "amount": str(_int(obj.get("amount"))),
        "currency": str(obj.get("currency") or ""),
        "reason": str(obj.get("reason") or ""),
        "charge": charge_id or "",
    }
    if _str(obj.get("payment_intent")):
        facts["payment_intent"] = str(obj["payment_intent"])
    due = (obj.get("evidence_details") or {}).get("due_by")
    if isinstance(due, int):
        facts["evidence_due_by"] = str(due)
    details = {
        "dispute_id": dispute_id,
        "amount": _int(obj.get("amount")),
        "currency": str(obj.get("currency") or ""),
        "reason": str(obj.get("reason") or ""),
        "charge_id": charge_id,
        "payment_intent_id": _str(obj.get("payment_intent")),
        "evidence_due_by": due if isinstance(due, int) else None,
    }
    return Ticket(CHARGEBACK, dispute_id, facts, details)


def classify(event: Event) -> Facts:
    """What an event says about a customer, on its own (a table of Stripe semantics)."""
    obj, kind = event.object, event.type
    email, user_id = _email_of(obj), _user_id_of(obj)
    if event.source == "app":
        if kind == "customer.linked":
            return Facts(user_id=event.user_id)
        if kind == "onboarding.started":
            return Facts(opens_onboarding=True, user_id=event.user_id)
        if kind == "onboarding.completed":
            return Facts(completes_onboarding=True, user_id=event.user_id)
        if kind == ONBOARDING_DEADLINE:
            return Facts()
        return Facts(handled=False)
    if kind == "checkout.session.completed":
        if obj.get("payment_status") in ("paid", "no_payment_required"):
            return Facts(base=ACTIVE, opens_onboarding=True, email=email, user_id=user_id)
        return Facts(email=email, user_id=user_id)
    if kind in ("invoice.paid", "invoice.payment_succeeded"):
        return Facts(base=ACTIVE, email=email, user_id=user_id)
    if kind == "invoice.payment_failed":
        ticket = _facts_of_failed_invoice(obj)
        return Facts(base=PAYMENT_FAILED, email=email, user_id=user_id, ticket=ticket)
    if kind == "customer.subscription.updated":
        base = _subscription_base(obj, event.previous_attributes)
        return Facts(base=base, user_id=user_id)
    if kind == "customer.subscription.paused":
        return Facts(base=PAUSED, user_id=user_id)
    if kind == "customer.subscription.resumed":
        return Facts(base=ACTIVE, user_id=user_id)
    if kind == "customer.subscription.deleted":
        return Facts(base=CANCELED, user_id=user_id)
    if kind == "charge.refunded":
        amount, refunded = _int(obj.get("amount")), _int(obj.get("amount_refunded"))
        full = amount > 0 and refunded >= amount
        return Facts(base=REFUNDED if full else None, email=_str(obj.get("receipt_email")))
    if kind == "charge.dispute.created":
        return Facts(ticket=_facts_of_dispute(obj))
    if kind in ("customer.created", "customer.updated"):
        return Facts(email=email, user_id=user_id)
    return Facts(handled=False)


# -- the state machine ------------------------------------------------------------------


def _newer(current: tuple[Any, ...] | None, candidate: tuple[Any, ...]) -> bool:
    return current is None or candidate > current


def _older(current: tuple[Any, ...] | None, candidate: tuple[Any, ...]) -> bool:
    return current is None or candidate < current


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
        {"opened_by": opener, "opened_at": str(opened_created)},
        {"opened_by_event_id": opener, "opened_at": int(opened_created)},
    )
    return None if ticket.key in record.tickets else ticket


def apply(
    record: CustomerRecord, event: Event, *, stuck_after_ms: int = 24 * 3600 * 1000
) -> Applied:
    """Fold one event into a customer's record; return the new record and its effects."""
    facts = classify(event)
    if not facts.handled:
        return Applied(record, (), "ignored")
    changes: dict[str, Any] = {}
    stale = False
    if event.livemode and not record.livemode:
        changes["livemode"] = True
    if facts.base is not None:
        position: Position = (event.created, RANK[facts.base], event.event_id)
        if _newer(record.base_position, position):
            changes.update(
                base=facts.base,
                base_position=position,
                cause_event_id=event.event_id,
                cause_event_type=event.type,
            )
        else:
            stale = position != record.base_position  # equal: this very event again
    stamp = (event.created, event.event_id)
    if facts.opens_onboarding and _older(record.onboarding_opened_by, stamp):
        changes["onboarding_opened_by"] = stamp
    if facts.completes_onboarding and _older(record.onboarding_completed_by, stamp):
        changes["onboarding_completed_by"] = stamp
    if facts.email and _newer(record.email_position, stamp):
        changes.update(email=facts.email, email_position=stamp)
    if facts.user_id and _newer(record.user_id_position, stamp):
        changes.update(user_id=facts.user_id, user_id_position=stamp)

    def current(name: str) -> Any:
        return changes[name] if name in changes else getattr(record, name)

    effects: list[Effect] = []
    base = current("base")
    onboarding_open = (
        current("onboarding_opened_by") is not None and current("onboarding_completed_by") is None
    )
    state = ONBOARDING_PENDING if base == ACTIVE and onboarding_open else base
    if state != record.state and state is not None:
        # Strictly increasing per customer, so a CRM that keeps "the newest" never drops
        # a change; equal to the cause's created in every ordinary case.
        changed_at = max(event.created * 1000, record.state_changed_at_ms + 1)
        if facts.base is None or stale:
            # a fact (onboarding opened/completed) changed the derived state: the base
            # event stays, the change is caused by this event
            changes.update(cause_event_id=event.event_id, cause_event_type=event.type)
        changes.update(state=state, state_changed_at_ms=changed_at)
        effects.append(StateChanged(record.state, state, changed_at))
    elif record.state is not None and (current("email"), current("user_id")) != (
        record.email,
        record.user_id,
    ):
        effects.append(ContactChanged())
    # Built from the instance's __dict__ rather than dataclasses.replace, which re-reads
    # every field through its Field object: the same record at half the cost (once per event).
    new = CustomerRecord(**{**record.__dict__, **changes}) if changes else record

    tickets = [facts.ticket] if facts.ticket is not None else []
    if event.type == ONBOARDING_DEADLINE:
        due = onboarding_stuck_ticket(new, event.created * 1000, stuck_after_ms)
        tickets += [due] if due is not None else []
    for ticket in tickets:
        if ticket.key not in new.tickets:
            new = replace(new, tickets=(*new.tickets, ticket.key))
            effects.append(OpenTicket(ticket))
    outcome: Outcome = "stale" if stale and not effects else "applied"
    return Applied(new, tuple(effects), outcome)


def apply_orphan(event: Event) -> tuple[Effect, ...]:
    """Effects of an event that names no customer (a dispute on a bare charge)."""
    facts = classify(event)
    return (OpenTicket(facts.ticket),) if facts.ticket is not None else ()
