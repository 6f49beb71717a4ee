"""Helpdesk commands to Zendesk tickets: pure functions on plain data (no I/O, no clock).

Every ``sink.helpdesk`` command becomes one ticket whose text a support person can act on,
with links to the customer's and the object's Stripe dashboard pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from paystream.vocabulary import (
    CHARGEBACK,
    FAILED_RENEWAL,
    ONBOARDING_STUCK,
    TICKET_TRIGGERS,
    customer_dashboard_url,
    dashboard_url,
)

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
    typed = command.get(trigger) if trigger in TICKET_TRIGGERS else None
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
