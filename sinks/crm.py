"""The CRM sink: ``sink.crm`` commands → HubSpot contact batch upserts.

Ordering: commands of one customer arrive in order on one partition, and a batch sends only
each customer's newest state (``mapping.coalesce_crm``). Replays after a crash can still
re-send an older state after a newer one went out, so before every upsert the sink reads
the contacts' ``billing_state_changed_at`` (one ``batch/read``) and leaves out every customer
whose CRM record is already strictly newer (outcome ``delivered``, reason ``stale``). The
CRM itself is the record of what was sent: no local state survives or needs to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sinks import mapping
from sinks.hubspot import HubSpotClient
from sinks.outcomes import COALESCED, STALE
from sinks.runner import Call, Command, decode_as


class CrmAdapter:
    """Plans coalesced batch upserts and sends them through a HubSpot client."""

    sink = "crm"
    schema = "crm_command"

    def __init__(
        self, client: HubSpotClient | None, stale_guard: bool = True, batch_limit: int = 100
    ) -> None:
        self.client = client
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
        fresh: Sequence[mapping.CrmUpsert] = upserts
        learnt: dict[int, str] = {}
        if self.stale_guard:
            held = mapping.current_changed_at(
                self.client.batch_read(mapping.read_body([u.customer_id for u in upserts]))
            )
            fresh, stale = mapping.split_stale(upserts, held)
            learnt = {i: STALE for u in stale for i in u.covers}
        if fresh:
            self.client.batch_upsert(mapping.upsert_body(fresh))
        return learnt
