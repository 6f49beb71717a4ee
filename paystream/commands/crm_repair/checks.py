"""The CRM read back against the canonical records: what drifted, what is doubled (pure).

Inputs are plain data: the HubSpot contacts that carry a ``stripe_customer_id`` (the search
API's answers, as ``Contact``), the worker's records (``GET /customers``, as ``Record``) and
the contacts found holding some customers' emails (``batch/read`` by email: leads without a
customer id included). ``compare`` decides, per customer:

* **missing**: the worker holds a billing state and no contact carries the customer id;
* **duplicate**: two contacts carry the customer id (possible only when the property is not
  unique: made by hand, not by ``crm-setup``), or the customer's email is held by a second
  contact (a lead, or — for a customer without a contact — another Stripe customer's
  contact) — an upsert cannot correct either, a person merges them;
* **drift**: the one contact differs in ``billing_state``, ``billing_state_changed_at``,
  ``email`` or ``paystream_user_id`` (email and user id only when the record knows them).
  A contact whose ``billing_state_changed_at`` is later than the record's (set by hand) keeps
  that date in ``crm_later_ms``: the correction names it (``overwrites_changed_at_ms``), so
  the CRM sink's stale guard writes the canonical state over exactly that date — and still
  leaves the correction out over any other, a newer state the worker sent since;
* **unknown**: a contact with a customer id the worker has no record of (another mode's,
  one erased by ``paystream forget``): listed, never changed.

"Since when" is the later of the record's last state change and the contact's last edit:
a contact edited by hand has drifted since the edit, one the sink never reached since the
state changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from paystream.crm_properties import (
    BILLING_STATE,
    BILLING_STATE_CHANGED_AT,
    EMAIL,
    USER_ID,
    iso8601_ms,
    normalised_email,
    parse_crm_datetime,
)
from paystream.vocabulary import EMAIL_HELD_BY_OTHER_CUSTOMER

#: the fields compared, in the order of the report
FIELDS = (BILLING_STATE, BILLING_STATE_CHANGED_AT, EMAIL, USER_ID)
#: a duplicate's kinds: two contacts with the customer's id; the customer's email held by a
#: second contact; and, for a customer without a contact, its email held by another Stripe
#: customer's contact (the CRM sink refuses to write it, with the vocabulary's reason code)
SAME_CUSTOMER_ID = "same_customer_id"
EMAIL_HELD_BY_SECOND_CONTACT = "email_held_by_second_contact"
DUPLICATE_KINDS = (SAME_CUSTOMER_ID, EMAIL_HELD_BY_SECOND_CONTACT, EMAIL_HELD_BY_OTHER_CUSTOMER)


@dataclass(frozen=True)
class Contact:
    """One HubSpot contact as the search (or a batch read) returned it."""

    contact_id: str
    customer_id: str | None = None
    email: str | None = None
    user_id: str | None = None
    billing_state: str | None = None
    #: ``billing_state_changed_at`` as HubSpot holds it (ISO 8601 or epoch ms)
    changed_at: str | None = None
    #: ``lastmodifieddate`` in epoch ms
    modified_at_ms: int | None = None


@dataclass(frozen=True)
class Record:
    """The worker's canonical record of one customer (``GET /customers``)."""

    customer_id: str
    billing_state: str | None
    changed_at_ms: int | None
    email: str | None = None
    user_id: str | None = None
    cause_event_id: str | None = None
    cause_event_type: str | None = None
    livemode: bool = False


@dataclass(frozen=True)
class Drift:
    customer_id: str
    contact_id: str
    field: str
    crm_value: str | None
    canonical_value: str | None
    since_ms: int | None
    #: the contact's ``billing_state_changed_at`` (ms) when later than the record's (set by
    #: hand): the date the correction overwrites
    crm_later_ms: int | None = None


@dataclass(frozen=True)
class Duplicate:
    customer_id: str
    kind: str
    #: the customer's own contact first (when it has one), then the others, by id
    contact_ids: tuple[str, ...]


@dataclass(frozen=True)
class Missing:
    customer_id: str
    billing_state: str
    since_ms: int | None


@dataclass(frozen=True)
class Findings:
    drifts: tuple[Drift, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    missing: tuple[Missing, ...] = ()
    #: contact ids whose customer id the worker does not know
    unknown: tuple[str, ...] = field(default=())
    #: duplicates whose exception-queue row is still open: they wait for a person's merge
    queued: tuple[Duplicate, ...] = ()

    @property
    def correctable(self) -> tuple[str, ...]:
        """Customers ``--apply`` re-sends through the CRM sink, in id order."""
        drifted = {d.customer_id for d in self.drifts}
        return tuple(sorted(drifted | {m.customer_id for m in self.missing}))

    @property
    def overwrites(self) -> dict[str, int]:
        """customer id → the later CRM date its correction overwrites (see ``Drift``)."""
        return {d.customer_id: d.crm_later_ms for d in self.drifts if d.crm_later_ms}

    @property
    def clean(self) -> bool:
        """Nothing to correct, no duplicate outside the exception queue."""
        return not self.drifts and not self.missing and not self.duplicates


def set_apart_queued(
    findings: Findings, open_rows: Iterable[str], key: Callable[[str], str]
) -> Findings:
    """Move the duplicates whose row (``key(customer id)``) is open in the exception queue
    to ``queued``: ``--apply`` opened it, a person has not merged them yet."""
    rows = set(open_rows)
    waiting = tuple(d for d in findings.duplicates if key(d.customer_id) in rows)
    new = tuple(d for d in findings.duplicates if d not in waiting)
    return replace(findings, duplicates=new, queued=findings.queued + waiting)


def _since(record: Record, contact: Contact) -> int | None:
    known = [t for t in (record.changed_at_ms, contact.modified_at_ms) if t]
    return max(known) if known else None


def field_drifts(record: Record, contact: Contact, email_is_free: bool) -> list[Drift]:
    """The fields in which ``contact`` differs from ``record`` (one contact, one record), in
    the order of ``FIELDS``. ``email_is_free``: no other contact holds the record's email."""
    held_ms = parse_crm_datetime(contact.changed_at)
    canonical_ms = record.changed_at_ms
    later = held_ms if held_ms and canonical_ms is not None and held_ms > canonical_ms else None
    since = _since(record, contact)

    def drift(name: str, crm: str | None, canonical: str | None) -> Drift:
        return Drift(record.customer_id, contact.contact_id, name, crm, canonical, since, later)

    found = []
    if (contact.billing_state or None) != record.billing_state:
        found.append(drift(BILLING_STATE, contact.billing_state, record.billing_state))
    if canonical_ms is not None and held_ms != canonical_ms:
        found.append(drift(BILLING_STATE_CHANGED_AT, contact.changed_at, iso8601_ms(canonical_ms)))
    if (
        email_is_free
        and record.email
        and normalised_email(contact.email) != normalised_email(record.email)
    ):
        found.append(drift(EMAIL, contact.email, record.email))
    if record.user_id and (contact.user_id or None) != record.user_id:
        found.append(drift(USER_ID, contact.user_id, record.user_id))
    return found


def _by_customer(contacts: Iterable[Contact]) -> dict[str, list[Contact]]:
    grouped: dict[str, list[Contact]] = {}
    for contact in contacts:
        if contact.customer_id:
            grouped.setdefault(contact.customer_id, []).append(contact)
    for held in grouped.values():
        held.sort(key=lambda c: (len(c.contact_id), c.contact_id))
    return grouped


def compare(
    contacts: Sequence[Contact],
    records: Mapping[str, Record],
    email_holders: Mapping[str, Contact] | None = None,
) -> Findings:
    """Every drift, duplicate, missing customer and unknown contact (see the module doc).

    ``email_holders``: lower-cased email → the contact holding it (from a batch read by
    email); the searched contacts' own emails count too.
    """
    holders = {e: c for c in contacts if (e := normalised_email(c.email))}
    holders.update({k.lower(): v for k, v in (email_holders or {}).items()})
    grouped = _by_customer(contacts)
    drifts: list[Drift] = []
    duplicates: list[Duplicate] = []
    missing: list[Missing] = []
    for customer_id in sorted(records):
        record = records[customer_id]
        if record.billing_state is None:
            continue  # never sent to the CRM: no state yet
        held = grouped.get(customer_id, [])
        wanted = normalised_email(record.email)
        holder = holders.get(wanted) if wanted else None
        if not held:
            if holder is not None and holder.customer_id not in (None, customer_id):
                # the sink would refuse it (email_held_by_other_customer): a person decides
                duplicates.append(
                    Duplicate(customer_id, EMAIL_HELD_BY_OTHER_CUSTOMER, (holder.contact_id,))
                )
            else:
                missing.append(Missing(customer_id, record.billing_state, record.changed_at_ms))
            continue
        if len(held) > 1:
            ids = tuple(c.contact_id for c in held)
            duplicates.append(Duplicate(customer_id, SAME_CUSTOMER_ID, ids))
            continue
        contact = held[0]
        taken = holder is not None and holder.contact_id != contact.contact_id
        if taken and holder is not None and normalised_email(contact.email) != wanted:
            duplicates.append(
                Duplicate(
                    customer_id,
                    EMAIL_HELD_BY_SECOND_CONTACT,
                    (contact.contact_id, holder.contact_id),
                )
            )
        drifts += field_drifts(record, contact, email_is_free=not taken)
    unknown = tuple(
        c.contact_id for c in contacts if c.customer_id and c.customer_id not in records
    )
    return Findings(tuple(drifts), tuple(duplicates), tuple(missing), unknown)


def emails_to_look_up(contacts: Sequence[Contact], records: Mapping[str, Record]) -> list[str]:
    """Emails of customers whose one contact does not hold them and no searched contact
    does either: a lead (no customer id) may, which only a read by email finds."""
    held = {e for c in contacts if (e := normalised_email(c.email))}
    grouped = _by_customer(contacts)
    wanted = []
    for customer_id, record in sorted(records.items()):
        email = normalised_email(record.email)
        if email is None or email in held or record.billing_state is None:
            continue
        if len(grouped.get(customer_id, [])) == 1:
            wanted.append(email)
    return sorted(set(wanted))
