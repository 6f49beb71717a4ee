"""One batch of input messages → outputs, table writes and counts (no I/O of its own).

The agent hands in the messages of a ``stream.take`` batch and two lookups into its tables;
it gets back everything to publish and to write. Keeping this out of the agent keeps the
agent a few lines long and lets the unit tests run a whole batch without Kafka.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from paystream.vocabulary import (
    APPLIED,
    CUSTOMER_ERASE,
    DUPLICATE,
    IGNORED,
    MALFORMED,
    MODE_MISMATCH,
)
from processors import commands, dedup
from processors.errors import PermanentProcessorError
from processors.events import from_app_event, from_stripe_envelope
from processors.lifecycle import (
    ContactChanged,
    CustomerRecord,
    Event,
    OpenTicket,
    StateChanged,
    apply,
    apply_orphan,
)
from schemas.codec import (
    APP_EVENT,
    CRM_COMMAND,
    HELPDESK_COMMAND,
    LIFECYCLE_CHANGE,
    STRIPE_EVENT,
    AvroCodec,
    SchemaError,
)
from schemas.topics import Topics


@dataclass(frozen=True)
class InMessage:
    """A raw input message: where it came from and its bytes."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class OutMessage:
    """A message to publish."""

    topic: str
    key: bytes
    value: bytes


@dataclass
class BatchResult:
    """What one batch produced."""

    outputs: list[OutMessage] = field(default_factory=list)
    #: customer id → (partition, record), last value per customer
    records: dict[str, tuple[int, CustomerRecord]] = field(default_factory=dict)
    #: dedup key (``dedup.dedup_key``: namespaced by source) → (partition, table value)
    seen: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    #: customer id → partition of the customers ``paystream forget`` erased in this batch:
    #: their records and deadline dedup entries are deleted (changelog tombstones) before
    #: ``records`` and ``seen`` are written, so a later event of the batch starts anew
    erased: dict[str, int] = field(default_factory=dict)
    #: (event type, outcome, API version) → count; outcome: applied, duplicate, stale,
    #: ignored, malformed; the version Stripe rendered the event at ("" for app events and
    #: bodies that could not be read): an endpoint upgrade shows as a new version
    tally: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: event type → events listed by ``paystream reconcile`` that the worker had never seen:
    #: they never arrived as a webhook (the delivery gap)
    recovered: Counter[str] = field(default_factory=Counter)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """(event type, outcome) → count, every API version together."""
        total: Counter[tuple[str, str]] = Counter()
        for (event_type, outcome, _version), count in self.tally.items():
            total[event_type, outcome] += count
        return total


RecordLookup = Callable[[str, int], CustomerRecord | None]


def erase(message: InMessage, event: Event, result: BatchResult) -> str:
    """``paystream forget``'s erase event: delete the customer's record and its deadline
    events' dedup entries (``dedup.deadline_prefix``); no dedup entry of its own, no command
    (an erase names the customer, and deleting twice changes nothing). Only an event keyed
    by the customer it names erases, on that key's partition."""
    customer = event.customer_id
    key = message.key.decode() if message.key else None
    if not customer or customer != key:
        return IGNORED
    result.records.pop(customer, None)
    result.erased[customer] = message.partition
    prefix = dedup.deadline_prefix(customer)  # the one kind of dedup key naming a customer
    for seen in [k for k in result.seen if k.startswith(prefix)]:
        del result.seen[seen]
    return APPLIED


SeenLookup = Callable[[str, int], bytes | None]


class BatchProcessor:
    """Decodes, deduplicates and folds input messages; builds the output commands."""

    def __init__(
        self, topics: Topics, codec: AvroCodec, stuck_after_ms: int, *, live: bool = False
    ) -> None:
        self.topics = topics
        self.codec = codec
        self.stuck_after_ms = stuck_after_ms
        #: STRIPE_MODE is live: the worker re-checks each event's ``livemode`` (ingest
        #: answers 403 first; this catches a topic written by anything else)
        self.live = live

    def decode(self, message: InMessage) -> Event:
        try:
            if message.topic == self.topics.app_events:
                return from_app_event(self.codec.decode_as(APP_EVENT, message.value))
            return from_stripe_envelope(self.codec.decode_as(STRIPE_EVENT, message.value))
        except SchemaError as exc:
            raise PermanentProcessorError(str(exc)) from None

    def process(
        self,
        messages: Sequence[InMessage],
        get_record: RecordLookup,
        get_seen: SeenLookup,
        processed_at_ms: int,
    ) -> BatchResult:
        result = BatchResult()
        for message in messages:
            try:
                event = self.decode(message)
            except PermanentProcessorError:
                result.tally["unknown", MALFORMED, ""] += 1
                continue
            if event.source == "stripe" and event.livemode != self.live:
                result.tally[event.type, MODE_MISMATCH, event.api_version or ""] += 1
                continue
            if event.source == "app" and event.type == CUSTOMER_ERASE:
                result.tally[event.type, erase(message, event, result), ""] += 1
                continue
            seen_key = dedup.dedup_key(event.source, event.event_id)
            batch_value = result.seen.get(seen_key)
            table_value = batch_value[1] if batch_value else get_seen(seen_key, message.partition)
            duplicate = dedup.is_duplicate(seen_key, table_value, result.seen)
            if not duplicate and event.delivered_by == "reconcile":
                result.recovered[event.type] += 1
            outcome = self._fold(message, event, duplicate, get_record, processed_at_ms, result)
            entry = (
                dedup.repeated_value(table_value)
                if table_value is not None
                else dedup.seen_value(event.created, outcome)
            )
            if entry is not None:  # the outcome the first time; once, that it came again
                result.seen[seen_key] = (message.partition, entry)
            counted = DUPLICATE if duplicate else outcome
            result.tally[event.type, counted, event.api_version or ""] += 1
        return result

    def _fold(
        self,
        message: InMessage,
        event: Event,
        duplicate: bool,
        get_record: RecordLookup,
        now_ms: int,
        result: BatchResult,
    ) -> str:
        key = message.key.decode() if message.key else None
        customer = event.customer_id
        if customer is None or customer != key:
            # Keyed by event id (no customer on the object, e.g. a dispute on a bare
            # charge) or keyed elsewhere: the record lives with its own key, so only the
            # ticket is opened here, carrying whatever customer the event names.
            # No record remembers its tickets: the dedup table alone makes them once-only
            # (a dispute.created event is the only one to carry its dispute id's trigger).
            effects = () if duplicate else apply_orphan(event)
            for effect in effects:
                if isinstance(effect, OpenTicket):
                    self._ticket(effect, customer or "", None, event, now_ms, result)
            return "applied" if effects else "ignored"
        cached = result.records.get(customer)
        if cached is None and customer in result.erased:
            record: CustomerRecord | None = None  # erased earlier in this batch: a new record
        else:
            record = cached[1] if cached else get_record(customer, message.partition)
        if record is None:
            record = CustomerRecord(customer_id=customer)
        # Duplicates are folded too: applying an event twice changes nothing and emits
        # nothing, and after a crash between table writes it restores what was lost.
        applied = apply(record, event, stuck_after_ms=self.stuck_after_ms)
        if applied.record != record:
            result.records[customer] = (message.partition, applied.record)
        out_key = customer.encode()
        for effect in applied.effects:
            if isinstance(effect, StateChanged):
                change = commands.lifecycle_change(
                    applied.record, effect.previous_state, event, now_ms
                )
                result.outputs.append(
                    OutMessage(
                        self.topics.customer_lifecycle,
                        out_key,
                        self.codec.encode(LIFECYCLE_CHANGE, change),
                    )
                )
            if isinstance(effect, StateChanged | ContactChanged):
                crm = commands.crm_command(applied.record, event, now_ms)
                result.outputs.append(
                    OutMessage(self.topics.sink_crm, out_key, self.codec.encode(CRM_COMMAND, crm))
                )
            elif isinstance(effect, OpenTicket):
                self._ticket(effect, customer, applied.record, event, now_ms, result)
        return applied.outcome

    def _ticket(
        self,
        effect: OpenTicket,
        customer: str,
        record: CustomerRecord | None,
        event: Event,
        now_ms: int,
        result: BatchResult,
    ) -> None:
        command = commands.helpdesk_command(effect.ticket, customer, record, event, now_ms)
        key = (customer or effect.ticket.object_id).encode()
        result.outputs.append(
            OutMessage(self.topics.sink_helpdesk, key, self.codec.encode(HELPDESK_COMMAND, command))
        )
