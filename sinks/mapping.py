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

ID_PROPERTY = "stripe_customer_id"
HUBSPOT_BATCH_LIMIT = 100
DASHBOARD = "https://dashboard.stripe.com"

#: Stripe's zero-decimal currencies: amounts are not in cents.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
Command = Mapping[str, Any]


# ---------------------------------------------------------------------------------- links
def dashboard_url(path: str, livemode: bool) -> str:
    """A Stripe dashboard URL; test-mode objects live under ``/test``."""
    return f"{DASHBOARD}{'' if livemode else '/test'}/{path.lstrip('/')}"


def customer_dashboard_url(customer_id: str, livemode: bool) -> str:
    return dashboard_url(f"customers/{customer_id}", livemode)


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
            return dashboard_url(f"{section}/{object_id}", livemode)
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


def coalesce_crm(commands: Sequence[Command]) -> list[CrmUpsert]:
    """One upsert per customer, carrying the newest state; ties go to the later command.

    Customers keep the order of their first appearance, so the result is deterministic.
    """
    newest: dict[str, int] = {}
    covers: dict[str, list[int]] = {}
    for i, command in enumerate(commands):
        customer = str(command["customer_id"])
        covers.setdefault(customer, []).append(i)
        best = newest.get(customer)
        if best is None or _recency(command) >= _recency(commands[best]):
            newest[customer] = i
    return [
        CrmUpsert(
            customer_id=customer,
            changed_at_ms=int(commands[i]["billing_state_changed_at_ms"]),
            input=crm_input(commands[i]),
            newest=i,
            covers=tuple(covers[customer]),
        )
        for customer, i in newest.items()
    ]


def split_stale(
    upserts: Iterable[CrmUpsert], current: Mapping[str, int | None]
) -> tuple[list[CrmUpsert], list[CrmUpsert]]:
    """Split into (to send, stale): stale when the CRM already holds a strictly newer state."""
    fresh: list[CrmUpsert] = []
    stale: list[CrmUpsert] = []
    for upsert in upserts:
        held = current.get(upsert.customer_id)
        (stale if held is not None and held > upsert.changed_at_ms else fresh).append(upsert)
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


# ---------------------------------------------------------------------------------- helpdesk
def format_amount(amount: str | None, currency: str | None) -> str | None:
    """``4900`` + ``usd`` → ``USD 49.00`` (Stripe amounts are in the smallest unit)."""
    if not amount:
        return None
    try:
        minor = int(amount)
    except ValueError:
        return f"{amount} {(currency or '').upper()}".strip()
    code = (currency or "").lower()
    text = f"{minor:,}" if code in ZERO_DECIMAL else f"{minor / 100:,.2f}"
    return f"{code.upper()} {text}".strip()


def _who(command: Command) -> str:
    email = command.get("email")
    customer = command.get("customer_id") or ""
    if email and customer:
        return f"{email} ({customer})"
    return str(email or customer or "an unknown customer")


_PRIORITY = {"failed_renewal": "high", "chargeback": "urgent", "onboarding_stuck": "normal"}

_FACT_LABELS = {
    "attempt_count": "Payment attempts",
    "reason": "Reason",
    "evidence_due_by": "Evidence due by",
    "invoice_number": "Invoice number",
    "hosted_invoice_url": "Invoice page",
    "next_payment_attempt": "Next automatic retry",
    "pending_since": "Onboarding open since",
    "plan": "Plan",
}


def _subject(command: Command, amount: str | None) -> str:
    trigger = command["trigger"]
    who = command.get("email") or command.get("customer_id") or "unknown customer"
    if trigger == "failed_renewal":
        what = f"Renewal payment failed twice{f' ({amount})' if amount else ''}"
    elif trigger == "chargeback":
        what = f"Chargeback opened{f' for {amount}' if amount else ''}"
    elif trigger == "onboarding_stuck":
        what = "Paid but onboarding not finished"
    else:
        what = f"Billing issue: {trigger}"
    return f"{what} — {who}"


def _what_happened(command: Command, amount: str | None) -> list[str]:
    trigger = command["trigger"]
    facts: Mapping[str, str] = command.get("facts") or {}
    who = _who(command)
    money = amount or "the amount due"
    if trigger == "failed_renewal":
        attempts = facts.get("attempt_count", "2")
        return [
            f"The subscription renewal of {who} failed: Stripe tried to charge {money} "
            f"{attempts} times without success (invoice {command['object_id']}).",
            "",
            "What to do: contact the customer and ask them to update their payment method "
            "(card expired, insufficient funds or a bank block are the usual causes). Stripe "
            "keeps retrying on its schedule; the account stays in payment_failed until one "
            "payment succeeds.",
        ]
    if trigger == "chargeback":
        reason = facts.get("reason")
        return [
            f"{who} disputed a payment of {money} with their bank"
            f"{f' (reason: {reason})' if reason else ''}; dispute {command['object_id']}.",
            "",
            "What to do: the money is withdrawn until the dispute is decided. Gather the "
            "evidence (invoice, usage, emails with the customer) and submit it in Stripe "
            "before the deadline; consider reaching out to the customer first.",
        ]
    if trigger == "onboarding_stuck":
        return [
            f"{who} paid at checkout but has not finished onboarding, so they are not yet "
            "using what they pay for.",
            "",
            "What to do: reach out, offer help with the set-up, and check for a blocked "
            "account or an onboarding error.",
        ]
    return [f"paystream raised '{trigger}' for {who} (object {command['object_id']})."]


def ticket_body(command: Command) -> dict[str, Any]:
    """The ``POST /api/v2/tickets`` body: deterministic, so a replay is the same request."""
    facts: Mapping[str, str] = command.get("facts") or {}
    amount = format_amount(facts.get("amount"), facts.get("currency"))
    livemode = bool(command.get("livemode"))
    lines = _what_happened(command, amount)
    trigger = str(command["trigger"])
    details: list[str] = []
    in_text = {"amount", "currency", "reason" if trigger == "chargeback" else "amount"}
    for key in sorted(facts):
        if key in in_text:
            continue
        label = _FACT_LABELS.get(key, key.replace("_", " ").capitalize())
        details.append(f"- {label}: {facts[key]}")
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
    return {
        "ticket": {
            "subject": _subject(command, amount),
            "comment": {"body": "\n".join(lines), "public": False},
            "external_id": str(command["idempotency_key"]),
            "tags": ["paystream", trigger],
            "priority": _PRIORITY.get(trigger, "normal"),
        }
    }
