"""CRM commands to HubSpot requests: pure functions on plain data (no I/O, no clock).

Every ``sink.crm`` command becomes one HubSpot batch-upsert input keyed by
``stripe_customer_id``; several states of one customer in a batch coalesce to the newest;
the contact plan decides, from what HubSpot holds, which inputs go, which are stale and
which need a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paystream.crm_properties import (
    BILLING_STATE,
    BILLING_STATE_CHANGED_AT,
    EMAIL,
    STRIPE_CUSTOMER_ID,
    USER_ID,
    iso8601_ms,
    normalised_email,
    parse_crm_datetime,
)
from paystream.vocabulary import (
    EMAIL_HELD_BY_OTHER_CONTACT,
    EMAIL_HELD_BY_OTHER_CUSTOMER,
    LINKED_EXISTING_CONTACT,
)

ID_PROPERTY = STRIPE_CUSTOMER_ID
HUBSPOT_BATCH_LIMIT = 100

Command = Mapping[str, Any]


def crm_properties(command: Command) -> dict[str, str]:
    """The SPEC §6 property set of one CRM command; email and user id only when known."""
    props = {
        STRIPE_CUSTOMER_ID: str(command["customer_id"]),
        BILLING_STATE: str(command["billing_state"]),
        BILLING_STATE_CHANGED_AT: iso8601_ms(int(command["billing_state_changed_at_ms"])),
    }
    if command.get("email"):
        props[EMAIL] = str(command["email"])
    if command.get("user_id"):
        props[USER_ID] = str(command["user_id"])
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


def chunks(items: Sequence[CrmUpsert], size: int = HUBSPOT_BATCH_LIMIT) -> list[list[CrmUpsert]]:
    size = max(1, min(size, HUBSPOT_BATCH_LIMIT))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# reason codes of the contact plan (README "Choices where the contract is silent"), in
# paystream.vocabulary: LINKED_EXISTING_CONTACT (a lead was linked, not duplicated),
# EMAIL_HELD_BY_OTHER_CONTACT (the state went out, the contact kept its old email: a person
# decides, never a silent merge), EMAIL_HELD_BY_OTHER_CUSTOMER (dead-lettered, nothing written)

READ_PROPERTIES = (STRIPE_CUSTOMER_ID, BILLING_STATE_CHANGED_AT, EMAIL)


@dataclass(frozen=True)
class HeldContact:
    """A contact as the CRM holds it (from a ``batch/read`` answer)."""

    contact_id: str
    customer_id: str | None
    email: str | None
    changed_at_ms: int | None


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
                email=normalised_email(props.get("email")),
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
        email = normalised_email(upsert.email)
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
        email = normalised_email(upsert.email)
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
