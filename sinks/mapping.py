"""Commands to API requests: pure functions on plain data (no I/O, no clock).

CRM: every ``sink.crm`` command becomes one HubSpot batch-upsert input keyed by
``stripe_customer_id``; several states of one customer in a batch coalesce to the newest.
Helpdesk: every ``sink.helpdesk`` command becomes one Zendesk ticket whose text a support
person can act on, with the customer's Stripe dashboard link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paystream.vocabulary import (
    CHARGEBACK,
    EMAIL_HELD_BY_OTHER_CONTACT,
    EMAIL_HELD_BY_OTHER_CUSTOMER,
    FAILED_RENEWAL,
    LINKED_EXISTING_CONTACT,
    ONBOARDING_STUCK,
    TICKET_TRIGGERS,
    customer_dashboard_url,
    dashboard_url,
)

ID_PROPERTY = "stripe_customer_id"
HUBSPOT_BATCH_LIMIT = 100

#: Stripe's zero-decimal currencies: amounts are not in cents.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
Command = Mapping[str, Any]


# ---------------------------------------------------------------------------------- links
def object_dashboard_url(object_id: str, livemode: bool) -> str | None:
    """Dashboard page of a Stripe object by its id prefix, None when there is none."""
    prefixes = {
        "in_": "invoices",
        "du_": "disputes",
        "dp_": "disputes",
        "ch_": "payments",
        "py_": "payments",
        "pi_": "payments",
        "sub_": "subscriptions",
        "cs_": "checkout/sessions",
    }
    for prefix, section in prefixes.items():
        if object_id.startswith(prefix):
            return dashboard_url(section, object_id, livemode=livemode)
    return None


# ---------------------------------------------------------------------------------- CRM
def iso8601_ms(ms: int) -> str:
    """UTC ISO 8601 with milliseconds, as HubSpot datetime properties accept and return."""
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_crm_datetime(value: object) -> int | None:
    """A HubSpot datetime property value (ISO 8601 or epoch milliseconds) as epoch ms."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)


def crm_properties(command: Command) -> dict[str, str]:
    """The SPEC §6 property set of one CRM command; email and user id only when known."""
    props = {
        "stripe_customer_id": str(command["customer_id"]),
        "billing_state": str(command["billing_state"]),
        "billing_state_changed_at": iso8601_ms(int(command["billing_state_changed_at_ms"])),
    }
    if command.get("email"):
        props["email"] = str(command["email"])
    if command.get("user_id"):
        props["paystream_user_id"] = str(command["user_id"])
    return props


def crm_input(command: Command) -> dict[str, Any]:
    """One ``contacts/batch/upsert`` input: idProperty stripe_customer_id, id the customer."""
    return {
        "idProperty": ID_PROPERTY,
        "id": str(command["customer_id"]),
        "properties": crm_properties(command),
    }


def _recency(command: Command) -> tuple[int, int]:
    return int(command["billing_state_changed_at_ms"]), int(command["event_created"])


@dataclass(frozen=True)
class CrmUpsert:
    """The newest state of one customer in a batch, and the commands it stands for."""

    customer_id: str
    changed_at_ms: int
    input: dict[str, Any]
    #: index (in the batch) of the command whose state is sent
    newest: int
    #: indexes of every command of this customer in the batch, the newest included
    covers: tuple[int, ...]
    #: the later CRM date a crm-repair correction overwrites (``overwrites_changed_at_ms``)
    overwrites_ms: int | None = None

    @property
    def email(self) -> str | None:
        value = self.input["properties"].get("email")
        return str(value) if value else None


def _contact_order(commands: Sequence[Command], i: int) -> tuple[int, int]:
    # The worker writes a customer's commands in order and each carries the record's
    # newest email and user id as of then; a contact-only change carries the state's
    # change time with an older ``event_created``. So among the newest state's commands
    # the one written last knows the newest email: order by change time, then position.
    return int(commands[i]["billing_state_changed_at_ms"]), i


def coalesce_crm(commands: Sequence[Command]) -> list[CrmUpsert]:
    """One upsert per customer: the newest state, with the newest known email and user id.

    The billing state comes from the newest command (change time, then Stripe's
    ``created``; ties to the later one). Email and user id come from the latest-written
    command among those that carry them (see ``_contact_order``), so a state change and a
    contact-only change meeting in one batch never drop the email. Customers keep the
    order of their first appearance, so the result is deterministic.
    """
    newest: dict[str, int] = {}
    covers: dict[str, list[int]] = {}
    contact: dict[str, dict[str, int]] = {}
    for i, command in enumerate(commands):
        customer = str(command["customer_id"])
        covers.setdefault(customer, []).append(i)
        best = newest.get(customer)
        if best is None or _recency(command) >= _recency(commands[best]):
            newest[customer] = i
        known = contact.setdefault(customer, {})
        for field_name in ("email", "user_id"):
            if not command.get(field_name):
                continue
            held = known.get(field_name)
            if held is None or _contact_order(commands, i) >= _contact_order(commands, held):
                known[field_name] = i
    upserts = []
    for customer, i in newest.items():
        merged = dict(commands[i])
        for field_name, j in contact[customer].items():
            merged[field_name] = commands[j][field_name]
        upserts.append(
            CrmUpsert(
                customer_id=customer,
                changed_at_ms=int(commands[i]["billing_state_changed_at_ms"]),
                input=crm_input(merged),
                newest=i,
                covers=tuple(covers[customer]),
                overwrites_ms=_overwrites(commands[i]),
            )
        )
    return upserts


def _overwrites(command: Command) -> int | None:
    value = command.get("overwrites_changed_at_ms")
    return int(value) if value is not None else None


def is_stale(upsert: CrmUpsert, held_ms: int | None) -> bool:
    """The stale guard: the CRM holds a strictly newer change time than the upsert's, and
    it is not the one date a crm-repair correction was sent to overwrite (a person set it
    by hand; the canonical record is the truth). Any other later date — a newer state the
    worker sent since the repair read the CRM — still wins."""
    if held_ms is None or held_ms <= upsert.changed_at_ms:
        return False
    return held_ms != upsert.overwrites_ms


def split_stale(
    upserts: Iterable[CrmUpsert], current: Mapping[str, int | None]
) -> tuple[list[CrmUpsert], list[CrmUpsert]]:
    """Split into (to send, stale): stale when the CRM already holds a strictly newer state."""
    fresh: list[CrmUpsert] = []
    stale: list[CrmUpsert] = []
    for upsert in upserts:
        (stale if is_stale(upsert, current.get(upsert.customer_id)) else fresh).append(upsert)
    return fresh, stale


def chunks(items: Sequence[CrmUpsert], size: int = HUBSPOT_BATCH_LIMIT) -> list[list[CrmUpsert]]:
    size = max(1, min(size, HUBSPOT_BATCH_LIMIT))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def upsert_body(upserts: Sequence[CrmUpsert]) -> dict[str, Any]:
    return {"inputs": [u.input for u in upserts]}


def read_body(customer_ids: Sequence[str]) -> dict[str, Any]:
    """``contacts/batch/read`` by stripe_customer_id, asking only for the change time."""
    return {
        "idProperty": ID_PROPERTY,
        "properties": ["stripe_customer_id", "billing_state_changed_at"],
        "inputs": [{"id": c} for c in customer_ids],
    }


def current_changed_at(read_response: Mapping[str, Any]) -> dict[str, int | None]:
    """customer id → billing_state_changed_at (ms) held by the CRM, from a batch-read answer."""
    held: dict[str, int | None] = {}
    for result in read_response.get("results") or []:
        props = result.get("properties") or {}
        customer = props.get("stripe_customer_id")
        if customer:
            held[str(customer)] = parse_crm_datetime(props.get("billing_state_changed_at"))
    return held


# reason codes of the contact plan (README "Choices where the contract is silent"), in
# paystream.vocabulary: LINKED_EXISTING_CONTACT (a lead was linked, not duplicated),
# EMAIL_HELD_BY_OTHER_CONTACT (the state went out, the contact kept its old email: a person
# decides, never a silent merge), EMAIL_HELD_BY_OTHER_CUSTOMER (dead-lettered, nothing written)

READ_PROPERTIES = ("stripe_customer_id", "billing_state_changed_at", "email")


@dataclass(frozen=True)
class HeldContact:
    """A contact as the CRM holds it (from a ``batch/read`` answer)."""

    contact_id: str
    customer_id: str | None
    email: str | None
    changed_at_ms: int | None


def _lower(email: str | None) -> str | None:
    # HubSpot keeps one contact per email, compared without regard to case
    return email.strip().lower() if email else None


def held_contacts(read_response: Mapping[str, Any]) -> list[HeldContact]:
    """The contacts of a ``batch/read`` answer (missing ids are simply absent)."""
    held = []
    for result in read_response.get("results") or []:
        props = result.get("properties") or {}
        held.append(
            HeldContact(
                contact_id=str(result.get("id") or props.get("hs_object_id") or ""),
                customer_id=str(props["stripe_customer_id"])
                if props.get("stripe_customer_id")
                else None,
                email=_lower(props.get("email")),
                changed_at_ms=parse_crm_datetime(props.get("billing_state_changed_at")),
            )
        )
    return held


def emails_to_look_up(
    upserts: Iterable[CrmUpsert], by_customer: Mapping[str, HeldContact]
) -> list[str]:
    """Emails that may already belong to a contact: new customers' and changed ones."""
    wanted: list[str] = []
    for upsert in upserts:
        email = _lower(upsert.email)
        held = by_customer.get(upsert.customer_id)
        if email and (held is None or held.email != email) and email not in wanted:
            wanted.append(email)
    return wanted


@dataclass(frozen=True)
class CrmPlan:
    """What to write for a batch, decided from what the CRM holds (see ``plan_contacts``)."""

    #: batch/upsert inputs by stripe_customer_id
    upserts: list[dict[str, Any]]
    #: batch/update inputs by contact id: an existing contact linked to its customer
    links: list[dict[str, Any]]
    #: customer id → reason code of a delivered upsert (stale, linked, flagged)
    reasons: dict[str, str]
    #: customer id → reason code of an upsert refused (dead-lettered, nothing written)
    refused: dict[str, str]


def plan_contacts(
    upserts: Sequence[CrmUpsert],
    by_customer: Mapping[str, HeldContact],
    by_email: Mapping[str, HeldContact],
    stale_guard: bool = True,
    stale_reason: str = "stale",
) -> CrmPlan:
    """Decide, per customer, how its newest state reaches exactly one contact.

    * held by ``stripe_customer_id`` and not stale (``is_stale``) → upsert; when its new
      email belongs to another contact, upsert without the email and flag
      ``email_held_by_other_contact``;
    * not held, and its email belongs to a contact without a Stripe customer (a lead from
      a form or an import) → that contact is updated by id and receives the customer id
      (``linked_existing_contact``), never a duplicate;
    * not held, and its email belongs to another Stripe customer's contact (or to another
      customer earlier in this batch) → refused ``email_held_by_other_customer``;
    * otherwise → upsert (HubSpot creates the contact).
    """
    plan = CrmPlan([], [], {}, {})
    claimed: dict[str, str] = {}  # email → customer writing it in this batch
    for upsert in upserts:
        customer = upsert.customer_id
        email = _lower(upsert.email)
        held = by_customer.get(customer)
        if stale_guard and held is not None and is_stale(upsert, held.changed_at_ms):
            plan.reasons[customer] = stale_reason
            continue
        owner = by_email.get(email) if email else None
        taken_in_batch = email is not None and claimed.get(email, customer) != customer
        if held is not None:
            if taken_in_batch or (owner is not None and owner.contact_id != held.contact_id):
                props = {k: v for k, v in upsert.input["properties"].items() if k != "email"}
                plan.upserts.append({**upsert.input, "properties": props})
                plan.reasons[customer] = EMAIL_HELD_BY_OTHER_CONTACT
                continue
            plan.upserts.append(upsert.input)
        elif taken_in_batch:
            plan.refused[customer] = EMAIL_HELD_BY_OTHER_CUSTOMER
            continue
        elif owner is None or owner.customer_id == customer:
            plan.upserts.append(upsert.input)
        elif owner.customer_id is None:
            plan.links.append({"id": owner.contact_id, "properties": upsert.input["properties"]})
            plan.reasons[customer] = LINKED_EXISTING_CONTACT
        else:
            plan.refused[customer] = EMAIL_HELD_BY_OTHER_CUSTOMER
            continue
        if email:
            claimed[email] = customer
    return plan


# ---------------------------------------------------------------------------------- helpdesk
TRIGGERS = TICKET_TRIGGERS


def format_amount(amount: int | str | None, currency: str | None) -> str | None:
    """``4900`` + ``usd`` → ``USD 49.00`` (Stripe amounts are in the smallest unit)."""
    if amount is None or amount == "":
        return None
    try:
        minor = int(amount)
    except ValueError:
        return f"{amount} {(currency or '').upper()}".strip()
    code = (currency or "").lower()
    text = f"{minor:,}" if code in ZERO_DECIMAL else f"{minor / 100:,.2f}"
    return f"{code.upper()} {text}".strip()


def format_time(unix_s: int | None) -> str | None:
    """A unix time as a date a person reads: ``7 Dec 2026, 23:59 UTC``."""
    if unix_s is None:
        return None
    when = datetime.fromtimestamp(unix_s, tz=UTC)
    return f"{when.day} {when:%b %Y, %H:%M} UTC"


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def trigger_facts(command: Command) -> dict[str, Any]:
    """The typed facts of the command's trigger, or v1's string map converted.

    v1 wrote ``amount_due`` for a failed renewal and ``amount`` for a chargeback, unix
    times as strings; this reads both so a record written before v2 still renders well.
    """
    trigger = str(command.get("trigger"))
    typed = command.get(trigger) if trigger in TRIGGERS else None
    if isinstance(typed, Mapping):
        return dict(typed)
    # The v1 reader. Workers up to paystream 0.1.0 wrote the string map beside the typed
    # record; later ones write the typed record alone, so a record without it was written
    # by an older worker. Such a record lives as long as sink.helpdesk keeps it (7 days,
    # schemas/topics.py) and as long as its dead letter in sink.dlq can be retried with
    # the original bytes (PAYSTREAM_DLQ_RETENTION, 30 days by default). Remove this
    # branch, and the "facts" field of helpdesk_command.avsc with it, once the longer of
    # the two has passed since the last 0.1.0 worker stopped.
    facts: Mapping[str, str] = command.get("facts") or {}
    if trigger == FAILED_RENEWAL:
        return {
            "invoice_id": facts.get("invoice") or str(command.get("object_id") or ""),
            "amount_due": _int(facts.get("amount_due") or facts.get("amount")),
            "currency": facts.get("currency") or "",
            "attempt_count": _int(facts.get("attempt_count")),
            "invoice_number": facts.get("invoice_number"),
            "hosted_invoice_url": facts.get("hosted_invoice_url"),
            "subscription_id": facts.get("subscription"),
            "next_payment_attempt": _int(facts.get("next_payment_attempt")),
        }
    if trigger == CHARGEBACK:
        return {
            "dispute_id": facts.get("dispute") or str(command.get("object_id") or ""),
            "amount": _int(facts.get("amount")),
            "currency": facts.get("currency") or "",
            "reason": facts.get("reason") or "",
            "charge_id": facts.get("charge") or None,
            "payment_intent_id": facts.get("payment_intent"),
            "evidence_due_by": _int(facts.get("evidence_due_by")),
        }
    if trigger == ONBOARDING_STUCK:
        return {
            "opened_by_event_id": facts.get("opened_by") or "",
            "opened_at": _int(facts.get("opened_at") or facts.get("pending_since")),
        }
    return dict(facts)


def _who(command: Command) -> str:
    email = command.get("email")
    customer = command.get("customer_id") or ""
    if email and customer:
        return f"{email} ({customer})"
    return str(email or customer or "an unknown customer")


_PRIORITY = {FAILED_RENEWAL: "high", CHARGEBACK: "urgent", ONBOARDING_STUCK: "normal"}


def _times(count: int | None) -> str:
    return {None: "repeatedly", 1: "once", 2: "twice"}.get(count, f"{count} times")


def _subject(command: Command, facts: Mapping[str, Any]) -> str:
    trigger = command["trigger"]
    who = command.get("email") or command.get("customer_id") or "unknown customer"
    if trigger == FAILED_RENEWAL:
        amount = format_amount(facts.get("amount_due"), facts.get("currency"))
        what = f"Renewal payment failed {_times(facts.get('attempt_count'))}"
        what += f" ({amount})" if amount else ""
    elif trigger == CHARGEBACK:
        amount = format_amount(facts.get("amount"), facts.get("currency"))
        what = f"Chargeback opened{f' for {amount}' if amount else ''}"
    elif trigger == ONBOARDING_STUCK:
        what = "Paid but onboarding not finished"
    else:
        what = f"Billing issue: {trigger}"
    return f"{what} — {who}"


def _what_happened(command: Command, facts: Mapping[str, Any]) -> list[str]:
    trigger = command["trigger"]
    who = _who(command)
    if trigger == FAILED_RENEWAL:
        amount = format_amount(facts.get("amount_due"), facts.get("currency"))
        return [
            f"The subscription renewal of {who} failed: Stripe tried to charge "
            f"{amount or 'the renewal'} {_times(facts.get('attempt_count'))} without success "
            f"(invoice {command['object_id']}).",
            "",
            "What to do: contact the customer and ask them to update their payment method "
            "(card expired, insufficient funds or a bank block are the usual causes). Stripe "
            "keeps retrying on its schedule; the account stays in payment_failed until one "
            "payment succeeds.",
        ]
    if trigger == CHARGEBACK:
        amount = format_amount(facts.get("amount"), facts.get("currency"))
        reason = facts.get("reason")
        return [
            f"{who} disputed a payment of {amount or 'an unknown amount'} with their bank"
            f"{f' (reason: {reason})' if reason else ''}; dispute {command['object_id']}.",
            "",
            "What to do: the money is withdrawn until the dispute is decided. Gather the "
            "evidence (invoice, usage, emails with the customer) and submit it in Stripe "
            "before the deadline; consider reaching out to the customer first.",
        ]
    if trigger == ONBOARDING_STUCK:
        return [
            f"{who} paid at checkout but has not finished onboarding, so they are not yet "
            "using what they pay for.",
            "",
            "What to do: reach out, offer help with the set-up, and check for a blocked "
            "account or an onboarding error.",
        ]
    return [f"paystream raised '{trigger}' for {who} (object {command['object_id']})."]


def _details(trigger: str, facts: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    if trigger == FAILED_RENEWAL:
        return [
            ("Invoice number", facts.get("invoice_number")),
            ("Invoice page", facts.get("hosted_invoice_url")),
            ("Subscription", facts.get("subscription_id")),
            ("Next automatic retry", format_time(facts.get("next_payment_attempt"))),
        ]
    if trigger == CHARGEBACK:
        return [
            ("Evidence due by", format_time(facts.get("evidence_due_by"))),
            ("Charge", facts.get("charge_id")),
            ("Payment", facts.get("payment_intent_id")),
        ]
    if trigger == ONBOARDING_STUCK:
        return [("Onboarding open since", format_time(facts.get("opened_at")))]
    return [(str(k).replace("_", " ").capitalize(), str(v)) for k, v in sorted(facts.items())]


def ticket_body(command: Command, *, requester: bool = True) -> dict[str, Any]:
    """The ``POST /api/v2/tickets`` body: deterministic, so a replay is the same request.

    With ``requester`` and a known email the customer becomes the ticket's requester
    (Zendesk creates the end user when new: "Create Ticket",
    https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#create-ticket).
    """
    trigger = str(command["trigger"])
    facts = trigger_facts(command)
    livemode = bool(command.get("livemode"))
    lines = _what_happened(command, facts)
    details = [f"- {label}: {value}" for label, value in _details(trigger, facts) if value]
    if details:
        lines += ["", "Details:", *details]
    lines.append("")
    customer = command.get("customer_id")
    if customer:
        lines.append(f"Customer in Stripe: {customer_dashboard_url(str(customer), livemode)}")
    else:
        lines.append("Customer in Stripe: not known yet (find it from the link below).")
    link = object_dashboard_url(str(command["object_id"]), livemode)
    if link:
        lines.append(f"{command['object_id']} in Stripe: {link}")
    lines.append(f"Stripe event: {command['cause_event_id']} ({command['cause_event_type']})")
    lines.append(f"Reference: {command['idempotency_key']}")
    ticket: dict[str, Any] = {
        "subject": _subject(command, facts),
        "comment": {"body": "\n".join(lines), "public": False},
        "external_id": str(command["idempotency_key"]),
        "tags": ["paystream", trigger],
        "priority": _PRIORITY.get(trigger, "normal"),
    }
    email = command.get("email")
    if requester and email:
        ticket["requester"] = {"email": str(email), "name": str(email)}
    return {"ticket": ticket}
