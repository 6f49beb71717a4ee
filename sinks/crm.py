"""The CRM sink: ``sink.crm`` commands → HubSpot contact batch upserts.

Ordering: commands of one customer arrive in order on one partition, and a batch sends only
each customer's newest state (``mapping.coalesce_crm``). Replays after a crash can still
re-send an older state after a newer one went out, so before every upsert the sink reads
the contacts' ``billing_state_changed_at`` (one ``batch/read``) and leaves out every customer
whose CRM record is already strictly newer (outcome ``delivered``, reason ``stale``). The
CRM itself is the record of what was sent: no local state survives or needs to.

Existing contacts: HubSpot keeps one contact per email. The same read tells which customers
have a contact; for the others (and for changed emails) a second ``batch/read`` by
``email`` finds a contact that already has the email — a lead from a website form or an
import — and ``mapping.plan_contacts`` links it instead of creating a duplicate (see the
README's choices for two customers sharing an email). A conflict HubSpot still reports
(a contact created between our read and our write; a whole-batch 409 or a 207 with
per-input errors alike) is retried, and the next attempt reads and links it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from paystream.vocabulary import LINKED_EXISTING_CONTACT
from sinks import contact_ids, mapping
from sinks.errors import PermanentSinkError
from sinks.hubspot import HubSpotClient
from sinks.outcomes import COALESCED, STALE
from sinks.retry import INVALID_COMMAND, is_safe_id
from sinks.runner import Call, Command, decode_as


class CrmAdapter:
    """Plans coalesced batch upserts and sends them through a HubSpot client."""

    sink = "crm"
    schema = "crm_command"

    def __init__(
        self,
        client: HubSpotClient | None,
        stale_guard: bool = True,
        batch_limit: int = 100,
        memory: dict[str, contact_ids.Remembered] | None = None,
    ) -> None:
        self.client = client
        #: contact ids by customer (None: off, every batch reads first). In-process only
        #: for now: not yet durable nor shared by replicas (issue 29, item 1).
        self.memory = memory
        self.stale_guard = stale_guard
        self.batch_limit = batch_limit

    def decode(self, raw: bytes) -> Command:
        return decode_as(self.schema, raw)

    def plan(self, commands: Sequence[Command]) -> list[Call]:
        upserts = mapping.coalesce_crm(commands)
        return [self._call(chunk) for chunk in mapping.chunks(upserts, self.batch_limit)]

    @staticmethod
    def _call(upserts: Sequence[mapping.CrmUpsert]) -> Call:
        indexes = tuple(i for u in upserts for i in u.covers)
        notes = {i: COALESCED for u in upserts for i in u.covers if i != u.newest}
        return Call(indexes=indexes, payload=tuple(upserts), notes=notes)

    def split(self, call: Call) -> list[Call]:
        upserts: tuple[mapping.CrmUpsert, ...] = call.payload
        return [self._call([u]) for u in upserts] if len(upserts) > 1 else [call]

    def send(self, call: Call) -> Mapping[int, str]:
        if self.client is None:
            raise RuntimeError("CRM writes need a HubSpot client")
        upserts: tuple[mapping.CrmUpsert, ...] = call.payload
        bad = [u for u in upserts if not is_safe_id(u.customer_id)]
        if bad:
            raise PermanentSinkError(INVALID_COMMAND, "customer id is not a printable ASCII id")
        reasons: dict[str, str] = {}
        if self.memory is not None:
            upserts, reasons = self._send_known(self.client, upserts)
        if upserts:
            reasons.update(self._send_read_first(self.client, upserts))
        return {
            i: reasons[u.customer_id]
            for u in call.payload
            if u.customer_id in reasons
            for i in u.covers
        }

    def _send_known(
        self, client: HubSpotClient, upserts: tuple[mapping.CrmUpsert, ...]
    ) -> tuple[tuple[mapping.CrmUpsert, ...], dict[str, str]]:
        """Update remembered contacts by id (one request); return the rest and the reasons."""
        memory = self.memory if self.memory is not None else {}
        split = contact_ids.split_known(upserts, memory, self.stale_guard)
        reasons = dict.fromkeys(split.stale, STALE)
        rest = list(split.unknown)
        if split.updates and client.update_known(split.updates) is None:
            for customer in split.updated:
                memory.pop(customer, None)
            rest = list(upserts)
            reasons = {}
        elif split.updates:
            by_id = {u.customer_id: u for u in upserts}
            done = [(by_id[c], memory[c].contact_id) for c in split.updated]
            memory.update(contact_ids.after_write(memory, done))
        return tuple(rest), reasons

    def _send_read_first(
        self, client: HubSpotClient, upserts: tuple[mapping.CrmUpsert, ...]
    ) -> dict[str, str]:
        """Today's path: read by id, read by email, then upsert and link."""
        by_customer = {
            c.customer_id: c
            for c in mapping.held_contacts(
                client.batch_read(
                    mapping.ID_PROPERTY,
                    [u.customer_id for u in upserts],
                    mapping.READ_PROPERTIES,
                )
            )
            if c.customer_id
        }
        emails = mapping.emails_to_look_up(upserts, by_customer)
        by_email = (
            {
                c.email: c
                for c in mapping.held_contacts(
                    client.batch_read("email", emails, mapping.READ_PROPERTIES)
                )
                if c.email
            }
            if emails
            else {}
        )
        plan = mapping.plan_contacts(upserts, by_customer, by_email, self.stale_guard, STALE)
        if plan.refused:
            # Nothing is written for a refused customer: alone, it is dead-lettered with the
            # reason; in company, the runner splits the call and the others go through.
            reason = next(iter(plan.refused.values()))
            raise PermanentSinkError(
                reason, "the email belongs to another Stripe customer's contact in the CRM"
            )
        written = client.batch_upsert(plan.upserts) if plan.upserts else {}
        if plan.links:
            client.batch_update(plan.links)
        self._remember(upserts, written, plan)
        return plan.reasons

    def _remember(
        self,
        upserts: Sequence[mapping.CrmUpsert],
        written: Mapping[str, object],
        plan: mapping.CrmPlan,
    ) -> None:
        if self.memory is None:
            return
        ids = contact_ids.written_ids(written, plan.links)
        by_id = {u.customer_id: u for u in upserts}
        kept = {None, LINKED_EXISTING_CONTACT}  # a flagged email is not remembered
        done = [(by_id[c], ids[c]) for c in by_id if c in ids and plan.reasons.get(c) in kept]
        self.memory.update(contact_ids.after_write(self.memory, done))
