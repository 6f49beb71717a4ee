"""``paystream forget``'s erase event through ``BatchProcessor``: which records it deletes,
in which batches, and what it leaves behind (no dedup entry, no command); and the
``TableWriter`` overlay, which must not serve an erased record before its deletion is written."""

from __future__ import annotations

import asyncio
import json

import pytest

from paystream.erasure import erase_event
from paystream.vocabulary import APPLIED, CUSTOMER_ERASE, IGNORED, ONBOARDING_DEADLINE
from processors import dedup
from processors.lifecycle import CustomerRecord
from processors.pipeline import BatchProcessor, BatchResult, InMessage
from processors.writer import TableWriter
from schemas.codec import APP_EVENT, default_codec
from schemas.topics import Topics
from tests.unit.processors.stripe_events import encoded_app, encoded_stripe

TOPICS = Topics("p.", 2)
STORED = {"cus_1": CustomerRecord(customer_id="cus_1", state="active", email="a@example.org")}


def erase(customer: str, key: str | None = None, partition: int = 1) -> InMessage:
    value = default_codec().encode(APP_EVENT, erase_event(customer, 1_700_000_000_000))
    return InMessage(TOPICS.app_events, partition, (key or customer).encode(), value)


def paid(customer: str, event_id: str) -> InMessage:
    key, value = encoded_stripe("checkout.session.completed", event_id, 100, customer)
    return InMessage(TOPICS.stripe_events, 1, key.encode(), value)


def run(batch: list[InMessage]) -> BatchResult:
    processor = BatchProcessor(TOPICS, default_codec(), stuck_after_ms=3_600_000)
    return processor.process(batch, lambda c, _p: STORED.get(c), lambda _e, _p: None, 5)


@pytest.mark.parametrize(
    ("batch", "erased", "records", "outcome"),
    [
        # a stored customer: its record is deleted on its own partition
        ([erase("cus_1")], {"cus_1": 1}, set(), APPLIED),
        # a customer nobody stored: deleting nothing is still the erase applied
        ([erase("cus_none")], {"cus_none": 1}, set(), APPLIED),
        # an event before the erase in the same batch: its record goes too
        ([paid("cus_2", "evt_a"), erase("cus_2")], {"cus_2": 1}, set(), APPLIED),
        # an event after the erase: a new record, built from nothing (not from the stored one)
        ([erase("cus_1"), paid("cus_1", "evt_b")], {"cus_1": 1}, {"cus_1"}, APPLIED),
        # keyed by another customer: not this key's record, nothing erased
        ([erase("cus_1", key="cus_other")], {}, set(), IGNORED),
    ],
)
def test_the_erase_event_deletes_the_record_of_its_key(
    batch: list[InMessage], erased: dict[str, int], records: set[str], outcome: str
) -> None:
    result = run(batch)
    assert result.erased == erased
    assert set(result.records) == records
    assert result.counts[CUSTOMER_ERASE, outcome] == 1


@pytest.mark.parametrize(
    ("batch", "looked_up"),
    [
        ([paid("cus_1", "evt_b")], ["cus_1"]),
        # after the erase, the stored record (still in the table) is never read again
        ([erase("cus_1"), paid("cus_1", "evt_b")], []),
        ([erase("cus_2"), paid("cus_1", "evt_b")], ["cus_1"]),
    ],
)
def test_a_record_made_after_the_erase_is_built_from_nothing(
    batch: list[InMessage], looked_up: list[str]
) -> None:
    asked: list[str] = []

    def get_record(customer: str, _partition: int) -> CustomerRecord | None:
        asked.append(customer)
        return STORED.get(customer)

    processor = BatchProcessor(TOPICS, default_codec(), stuck_after_ms=3_600_000)
    processor.process(batch, get_record, lambda _e, _p: None, 5)
    assert asked == looked_up


def test_an_erase_drops_the_deadline_entries_of_its_customer_from_the_batch() -> None:
    def deadline(customer: str, opener: str) -> InMessage:
        event_id = dedup.deadline_id(customer, opener)
        key, value = encoded_app(ONBOARDING_DEADLINE, event_id, 100, customer)
        return InMessage(TOPICS.app_events, 1, key.encode(), value)

    result = run([deadline("cus_1", "evt_1"), deadline("cus_12", "evt_1"), erase("cus_1")])
    assert set(result.seen) == {"app deadline:cus_12:evt_1"}
    assert dedup.deadline_prefix("cus_1") == "app deadline:cus_1:"


def test_an_erase_writes_no_dedup_entry_and_no_command() -> None:
    result = run([erase("cus_1")])
    assert result.seen == {}  # a dedup key would name the customer
    assert result.outputs == []


class _Publisher:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def flush(self) -> None:
        await self.release.wait()


def _batch(erased: tuple[str, ...] = (), records: tuple[str, ...] = ()) -> BatchResult:
    result = BatchResult()
    result.erased = {c: 0 for c in erased}
    result.records = {c: (0, CustomerRecord(c, state="active")) for c in records}
    return result


@pytest.mark.parametrize(
    ("batches", "pending_records", "pending_erased"),
    [
        # erased, not written yet: the overlay says so (the table still has the record)
        ([_batch(erased=("cus_1",))], set(), {"cus_1"}),
        # written in one batch, erased in the next: the overlay holds no stale record
        ([_batch(records=("cus_1",)), _batch(erased=("cus_1",))], set(), {"cus_1"}),
        # erased, then a new record: the new record is what reads see
        ([_batch(erased=("cus_1",)), _batch(records=("cus_1",))], {"cus_1"}, {"cus_1"}),
    ],
)
async def test_the_writer_overlay_hides_an_erased_record_until_it_is_deleted(
    batches: list[BatchResult], pending_records: set[str], pending_erased: set[str]
) -> None:
    publisher = _Publisher()
    written: list[BatchResult] = []
    writer = TableWriter(publisher, written.append, max_in_flight=len(batches) + 1)  # type: ignore[arg-type]
    for result in batches:
        await writer.submit(result)
    assert (set(writer.records), set(writer.erased)) == (pending_records, pending_erased)
    publisher.release.set()
    await writer.barrier()
    assert written == batches
    assert writer.records == {} and writer.erased == {}


@pytest.mark.parametrize(
    ("event_type", "accepted"),
    [
        (CUSTOMER_ERASE, False),
        ("paystream.onboarding_deadline", False),
        ("onboarding.started", True),
    ],
)
def test_ingest_refuses_the_internal_app_events_from_outside(
    event_type: str, accepted: bool
) -> None:
    # a leaked app secret must not be enough to erase a customer
    from ingest.envelope import MalformedEvent, parse_app_event

    body = json.dumps(
        {"id": "app_1", "type": event_type, "created": 1_700_000_000, "stripe_customer_id": "cus_1"}
    )
    try:
        parse_app_event(body, received_at_ms=0, correlation_id="c", signed_at=1_700_000_000)
    except MalformedEvent:
        assert not accepted
    else:
        assert accepted
