"""Which CRM upserts can skip HubSpot's reads: the pure core of the contact-id memory.

SPEC §6: one request per batch of state changes of customers the sink already knows (their
HubSpot contact ids remembered durably, in the compacted ``sink.crm.contacts``), at most two
for new customers (find by email, then write). The memory holds, per Stripe customer id,
the contact id, the ``billing_state_changed_at`` last written (so the stale guard needs no
read: a known customer whose remembered write is strictly newer is left out, ``stale``, as
today's read would have) and a keyed hash of the email last written (never the email).

Routing (``split_known``): a known customer with an unchanged (or no) email is updated by
contact id. Everything else takes the reads. For customers the memory does not know,
``ids_to_read`` cuts the read by id when the read by email already settles the plan
(``choices`` below); a remembered id HubSpot answers 404 for (merged or deleted contact) is
forgotten and the customer goes through the reads, which correct it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from paystream.crm_properties import STRIPE_CUSTOMER_ID, normalised_email
from paystream.hashing import customer_hash
from sinks.crm_plan import CrmUpsert, HeldContact, is_stale


@dataclass(frozen=True, slots=True)
class Remembered:
    """What the sink last wrote for one customer's contact."""

    contact_id: str
    changed_at_ms: int
    #: ``email_key`` of the email last written (None: none known)
    email_key: str | None


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


def email_key(email: str | None, key: str = "") -> str | None:
    """A keyed hash of the lower-cased email (what the memory keeps); None without one."""
    lowered = normalised_email(email)
    return customer_hash(lowered, key) if lowered else None


def split_known(
    upserts: Sequence[CrmUpsert],
    memory: Mapping[str, Remembered],
    stale_guard: bool = True,
    key: str = "",
) -> KnownSplit:
    """Route each upsert: update by remembered id, leave out as stale, or the reads."""
    split = KnownSplit()
    for upsert in upserts:
        known = memory.get(upsert.customer_id)
        email = email_key(upsert.email, key)
        if known is None or (email is not None and email != known.email_key):
            split.unknown.append(upsert)
        elif stale_guard and is_stale(upsert, known.changed_at_ms):
            split.stale.append(upsert.customer_id)
        else:
            props = dict(upsert.input["properties"])
            split.updates.append({"id": known.contact_id, "properties": props})
            split.updated.append(upsert.customer_id)
    return split


def after_write(
    memory: Mapping[str, Remembered], written: Sequence[tuple[CrmUpsert, str]], key: str = ""
) -> dict[str, Remembered]:
    """The memory entries to record once HubSpot accepted ``(upsert, contact id)`` pairs."""
    out: dict[str, Remembered] = {}
    for upsert, contact_id in written:
        before = memory.get(upsert.customer_id)
        email = email_key(upsert.email, key) or (before.email_key if before else None)
        out[upsert.customer_id] = Remembered(contact_id, upsert.changed_at_ms, email)
    return out


def fold(before: Remembered | None, incoming: Remembered | None) -> Remembered | None:
    """One record of ``sink.crm.contacts`` folded into what is remembered of its customer.

    A tombstone (None) forgets. Otherwise the newer write wins (ties: the incoming one, so a
    corrected contact id replaces the wrong one); an older record, such as a replica's own
    earlier write read back after a newer one, changes nothing.
    """
    if incoming is None or before is None:
        return incoming
    return incoming if incoming.changed_at_ms >= before.changed_at_ms else before


def to_record(entry: Remembered) -> dict[str, Any]:
    """The ``contact_id`` Avro record of a memory entry."""
    return {
        "contact_id": entry.contact_id,
        "changed_at_ms": entry.changed_at_ms,
        "email_key": entry.email_key,
    }


def from_record(record: Mapping[str, Any]) -> Remembered:
    """A memory entry from a ``contact_id`` record (KeyError/TypeError/ValueError if bad)."""
    contact = str(record["contact_id"])
    if not contact:
        raise ValueError("empty contact id")
    key = record.get("email_key")
    return Remembered(contact, int(record["changed_at_ms"]), str(key) if key else None)


# ------------------------------------------------------------------ customers not remembered
#
# Choices (HubSpot "Upsert a batch of contacts", https://developers.hubspot.com/docs/api-
# reference/legacy/crm/objects/contacts/batch/upsert-contacts: batch/upsert by a unique
# ``idProperty`` "create[s] or update[s] records identified by a unique property value", and
# each result says whether it was ``new``). A customer the memory does not know may still
# have a contact — created by a sink whose memory record was lost, before the memory
# existed, or by someone else with ``stripe_customer_id`` set. For a new customer the sink
# reads by email first; the read by ``stripe_customer_id`` is cut when the email read
# settles the plan on its own:
#
# * the email's contact carries this customer's id: it *is* the customer's contact (the
#   property is unique), exactly what the read by id would return;
# * no contact has the email: whether or not the customer has a contact, the plan is the
#   same upsert by ``stripe_customer_id`` (HubSpot updates the customer's contact if there
#   is one, else creates it), so the read could change nothing but the stale guard — lost
#   only for a customer whose contact holds a strictly newer state under another email,
#   written by a sink whose memory record never landed (the same window today's read-then-
#   write has when two writers race);
# * otherwise — the email belongs to a lead or another customer's contact, two customers of
#   the batch share it, the command has no email, or the memory knows the customer (its
#   email changed) — the customer's own contact decides between linking, flagging and
#   refusing, so it is read by id first: today's behaviour, three requests.
#
# A conflict HubSpot still reports is retried, and the retry reads again, as today.


def own_contacts(
    upserts: Sequence[CrmUpsert], by_email: Mapping[str, HeldContact]
) -> dict[str, HeldContact]:
    """Customers whose email's contact carries their own ``stripe_customer_id``."""
    out: dict[str, HeldContact] = {}
    for upsert in upserts:
        owner = by_email.get(normalised_email(upsert.email) or "")
        if owner is not None and owner.customer_id == upsert.customer_id:
            out[upsert.customer_id] = owner
    return out


def ids_to_read(
    upserts: Sequence[CrmUpsert],
    remembered: Collection[str],
    by_email: Mapping[str, HeldContact],
    forced: Collection[str] = (),
) -> list[str]:
    """Customers whose contact must be read by ``stripe_customer_id`` before planning."""
    counts: dict[str, int] = {}
    for upsert in upserts:
        email = normalised_email(upsert.email)
        if email:
            counts[email] = counts.get(email, 0) + 1
    wanted: list[str] = []
    for upsert in upserts:
        customer, email = upsert.customer_id, normalised_email(upsert.email)
        owner = by_email.get(email) if email else None
        if (
            customer in forced
            or customer in remembered
            or email is None
            or counts[email] > 1
            or (owner is not None and owner.customer_id != customer)
        ):
            wanted.append(customer)
    return wanted


def written_ids(
    upsert_answer: Mapping[str, Any], links: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Customer id → contact id, from a ``batch/upsert`` answer and the links sent by id."""
    out: dict[str, str] = {}
    for result in upsert_answer.get("results") or []:
        if not isinstance(result, dict):
            continue
        props = result.get("properties") or {}
        customer, contact = props.get(STRIPE_CUSTOMER_ID), result.get("id")
        if customer and contact:
            out[str(customer)] = str(contact)
    for link in links:
        customer = (link.get("properties") or {}).get(STRIPE_CUSTOMER_ID)
        if customer:
            out[str(customer)] = str(link["id"])
    return out
