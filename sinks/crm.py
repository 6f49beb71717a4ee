"""The CRM sink: ``sink.crm`` commands → HubSpot contact batch upserts.

Ordering: commands of one customer arrive in order on one partition, and a batch sends only
each customer's newest state (``crm_plan.coalesce_crm``). Replays after a crash can still
re-send an older state after a newer one went out, so the sink leaves out every customer
whose CRM record is already strictly newer (outcome ``delivered``, reason ``stale``),
knowing it from its contact-id memory or from a ``batch/read``.

Requests (SPEC §6, HubSpot's quota is the ceiling): the sink remembers each customer's
contact id, the change time and a hash of the email it last wrote (``sinks.contact_memory``,
durable in ``sink.crm.contacts`` and shared by replicas). A batch of known customers is one
``batch/update`` by contact id; a new customer costs a ``batch/read`` by email and the
upsert (``sinks.contact_ids`` says when the read by ``stripe_customer_id`` is still made
and why). A remembered id HubSpot answers 404 for (a merged or deleted contact) is
forgotten and its customers take the reads, which write the right id.

Existing contacts: HubSpot keeps one contact per email. The read by email finds a contact
that already has the email — a lead from a website form or an import — and
``crm_plan.plan_contacts`` links it instead of creating a duplicate (see the README's
choices for two customers sharing an email). A conflict HubSpot still reports (a contact
created between our read and our write; a whole-batch 409 or a 207 with per-input errors
alike) is retried, and the next attempt reads and links it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from paystream.vocabulary import LINKED_EXISTING_CONTACT
from sinks import contact_ids, crm_plan
from sinks.contact_memory import ContactMemory
from sinks.crm_plan import HeldContact
from sinks.errors import PermanentSinkError, RetryableSinkError
from sinks.hubspot import CONTACT_CONFLICT, HubSpotClient
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
        memory: ContactMemory | None = None,
    ) -> None:
        self.client = client
        #: contact ids by customer (``sinks.contact_memory``; the sinks process keeps them
        #: in sink.crm.contacts). None: off, every batch reads first (the path before it).
        self.memory = memory
        self.stale_guard = stale_guard
        self.batch_limit = batch_limit

    def close(self) -> None:
        if self.client is not None:
            self.client.close()  # the memory is the service's: it outlives a runner

    def decode(self, raw: bytes) -> Command:
        return decode_as(self.schema, raw)

    def plan(self, commands: Sequence[Command]) -> list[Call]:
        upserts = crm_plan.coalesce_crm(commands)
        return [self._call(chunk) for chunk in crm_plan.chunks(upserts, self.batch_limit)]

    @staticmethod
    def _call(upserts: Sequence[crm_plan.CrmUpsert]) -> Call:
        indexes = tuple(i for u in upserts for i in u.covers)
        notes = {i: COALESCED for u in upserts for i in u.covers if i != u.newest}
        return Call(indexes=indexes, payload=tuple(upserts), notes=notes)

    def split(self, call: Call) -> list[Call]:
        upserts: tuple[crm_plan.CrmUpsert, ...] = call.payload
        return [self._call([u]) for u in upserts] if len(upserts) > 1 else [call]

    def send(self, call: Call) -> Mapping[int, str]:
        if self.client is None:
            raise RuntimeError("CRM writes need a HubSpot client")
        upserts: tuple[crm_plan.CrmUpsert, ...] = call.payload
        bad = [u for u in upserts if not is_safe_id(u.customer_id)]
        if bad:
            raise PermanentSinkError(INVALID_COMMAND, "customer id is not a printable ASCII id")
        if self.memory is None:
            reasons = self._send_read_first(self.client, upserts)
        else:
            reasons = self._send_remembering(self.client, self.memory, upserts)
        return {
            i: reasons[u.customer_id]
            for u in call.payload
            if u.customer_id in reasons
            for i in u.covers
        }

    def _send_remembering(
        self, client: HubSpotClient, memory: ContactMemory, upserts: Sequence[crm_plan.CrmUpsert]
    ) -> dict[str, str]:
        """Known customers: one ``batch/update`` by contact id; the rest take the reads."""
        known = memory.view(u.customer_id for u in upserts)
        split = contact_ids.split_known(upserts, known, self.stale_guard, memory.hash_key)
        reasons = dict.fromkeys(split.stale, STALE)
        rest, forced = list(split.unknown), set[str]()
        if split.updates:
            by_id = {u.customer_id: u for u in upserts}
            # Written ahead, and acknowledged, before HubSpot hears of the states: a replica
            # that replays an older state after a crash right after the update finds the
            # newer one remembered (stale), as a read of HubSpot would have shown it.
            ahead = [(by_id[c], known[c].contact_id) for c in split.updated]
            memory.learn(contact_ids.after_write(known, ahead, memory.hash_key), acked=True)
            try:
                answer = client.update_known(split.updates)
            except RetryableSinkError as exc:
                if exc.reason_code != CONTACT_CONFLICT:
                    raise
                answer, forced = {}, set(split.updated)  # today's reads decide (a lead?)
            if answer is None:  # a remembered contact is gone (merged, deleted)
                memory.forget(split.updated)
            if answer is None or forced:
                rest += [by_id[c] for c in split.updated]
        if rest:
            reasons.update(self._send_new(client, memory, rest, forced))
        return reasons

    def _send_new(
        self,
        client: HubSpotClient,
        memory: ContactMemory,
        upserts: Sequence[crm_plan.CrmUpsert],
        forced: set[str],
    ) -> dict[str, str]:
        """Customers the memory cannot vouch for: read by email, by id only when the email
        read leaves the plan open (``contact_ids`` says when and why), then write."""
        by_email = self._read_emails(client, crm_plan.emails_to_look_up(upserts, {}))
        remembered = memory.view(u.customer_id for u in upserts)
        by_customer = contact_ids.own_contacts(upserts, by_email)
        wanted = contact_ids.ids_to_read(upserts, remembered, by_email, forced)
        if wanted:
            by_customer.update(self._read_ids(client, wanted))
        return self._write(client, upserts, by_customer, by_email, memory)

    def _send_read_first(
        self, client: HubSpotClient, upserts: Sequence[crm_plan.CrmUpsert]
    ) -> dict[str, str]:
        """Without a memory: read by id, read by email, then upsert and link."""
        by_customer = self._read_ids(client, [u.customer_id for u in upserts])
        emails = crm_plan.emails_to_look_up(upserts, by_customer)
        by_email = self._read_emails(client, emails)
        return self._write(client, upserts, by_customer, by_email, None)

    @staticmethod
    def _read_ids(client: HubSpotClient, customers: Sequence[str]) -> dict[str, HeldContact]:
        answer = client.batch_read(crm_plan.ID_PROPERTY, customers, crm_plan.READ_PROPERTIES)
        return {c.customer_id: c for c in crm_plan.held_contacts(answer) if c.customer_id}

    @staticmethod
    def _read_emails(client: HubSpotClient, emails: Sequence[str]) -> dict[str, HeldContact]:
        if not emails:
            return {}
        answer = client.batch_read("email", emails, crm_plan.READ_PROPERTIES)
        return {c.email: c for c in crm_plan.held_contacts(answer) if c.email}

    def _write(
        self,
        client: HubSpotClient,
        upserts: Sequence[crm_plan.CrmUpsert],
        by_customer: Mapping[str, HeldContact],
        by_email: Mapping[str, HeldContact],
        memory: ContactMemory | None,
    ) -> dict[str, str]:
        plan = crm_plan.plan_contacts(upserts, by_customer, by_email, self.stale_guard, STALE)
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
        if memory is not None:
            self._remember(memory, upserts, written, plan)
        return plan.reasons

    @staticmethod
    def _remember(
        memory: ContactMemory,
        upserts: Sequence[crm_plan.CrmUpsert],
        written: Mapping[str, object],
        plan: crm_plan.CrmPlan,
    ) -> None:
        ids = contact_ids.written_ids(written, plan.links)
        by_id = {u.customer_id: u for u in upserts}
        kept = {None, LINKED_EXISTING_CONTACT}  # a flagged email is not remembered
        done = [(by_id[c], ids[c]) for c in by_id if c in ids and plan.reasons.get(c) in kept]
        known = memory.view(by_id)
        memory.learn(contact_ids.after_write(known, done, memory.hash_key))
