"""Which CRM upserts can skip both reads: the pure core of the contact-id memory.

SPEC §6: one request per batch of state changes of customers the sink already knows (their
HubSpot contact ids remembered durably), at most two for new customers. The memory holds,
per Stripe customer id, the contact id and the ``billing_state_changed_at`` last written, so
the stale guard needs no read: a known customer whose remembered write is strictly newer is
left out (``stale``), as today's read would have. Everything the memory cannot vouch for —
unknown customers, a changed email (a lead or another customer may hold it) — takes today's
path (read by id, read by email, ``mapping.plan_contacts``). A remembered id HubSpot answers
404 for (merged or deleted contact) is forgotten and the customer goes through today's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sinks.mapping import CrmUpsert


@dataclass(frozen=True)
class Remembered:
    """What the sink last wrote for one customer's contact."""

    contact_id: str
    changed_at_ms: int
    email: str | None


@dataclass(frozen=True)
class KnownSplit:
    """Upserts split into a batch update by contact id and the rest (today's path)."""

    #: ``batch/update`` inputs: ``{"id": contact_id, "properties": ...}``
    updates: list[dict[str, Any]] = field(default_factory=list)
    #: customer id of each update, in the same order
    updated: list[str] = field(default_factory=list)
    #: customers left out because the remembered write is strictly newer
    stale: list[str] = field(default_factory=list)
    #: upserts the memory cannot vouch for
    unknown: list[CrmUpsert] = field(default_factory=list)


def _lower(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def split_known(
    upserts: Sequence[CrmUpsert], memory: Mapping[str, Remembered], stale_guard: bool = True
) -> KnownSplit:
    """Route each upsert: update by remembered id, leave out as stale, or today's path."""
    split = KnownSplit()
    for upsert in upserts:
        known = memory.get(upsert.customer_id)
        email = _lower(upsert.email)
        if known is None or (email is not None and email != _lower(known.email)):
            split.unknown.append(upsert)
        elif stale_guard and known.changed_at_ms > upsert.changed_at_ms:
            split.stale.append(upsert.customer_id)
        else:
            props = dict(upsert.input["properties"])
            split.updates.append({"id": known.contact_id, "properties": props})
            split.updated.append(upsert.customer_id)
    return split


def after_write(
    memory: Mapping[str, Remembered], written: Sequence[tuple[CrmUpsert, str]]
) -> dict[str, Remembered]:
    """The memory entries to record once HubSpot accepted ``(upsert, contact id)`` pairs."""
    out: dict[str, Remembered] = {}
    for upsert, contact_id in written:
        before = memory.get(upsert.customer_id)
        email = upsert.email or (before.email if before else None)
        out[upsert.customer_id] = Remembered(contact_id, upsert.changed_at_ms, email)
    return out


def written_ids(
    upsert_answer: Mapping[str, Any], links: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Customer id → contact id, from a ``batch/upsert`` answer and the links sent by id."""
    out: dict[str, str] = {}
    for result in upsert_answer.get("results") or []:
        if not isinstance(result, dict):
            continue
        props = result.get("properties") or {}
        customer, contact = props.get("stripe_customer_id"), result.get("id")
        if customer and contact:
            out[str(customer)] = str(contact)
    for link in links:
        customer = (link.get("properties") or {}).get("stripe_customer_id")
        if customer:
            out[str(customer)] = str(link["id"])
    return out
