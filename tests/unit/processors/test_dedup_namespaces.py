"""App event ids live in their own dedup namespace (SPEC §3): an app event never
suppresses the Stripe event with the same id, in one batch or across batches."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.dedup import dedup_key
from processors.lifecycle import CustomerRecord
from processors.pipeline import BatchProcessor, InMessage
from schemas.codec import default_codec
from schemas.topics import Topics
from tests.unit.processors.stripe_events import encoded_app, encoded_stripe

TOPICS = Topics("p.", 2)
CUSTOMER = "cus_ns1"


def processor() -> BatchProcessor:
    return BatchProcessor(TOPICS, default_codec(), stuck_after_ms=3_600_000)


def app_message(event_id: str, created: int) -> InMessage:
    key, value = encoded_app("onboarding.started", event_id, created, CUSTOMER)
    return InMessage(TOPICS.app_events, 0, key.encode(), value)


def stripe_message(event_id: str, created: int) -> InMessage:
    key, value = encoded_stripe("checkout.session.completed", event_id, created, CUSTOMER)
    return InMessage(TOPICS.stripe_events, 0, key.encode(), value)


class Store:
    """The worker's two tables, as plain dicts, fed batch by batch."""

    def __init__(self) -> None:
        self.records: dict[str, CustomerRecord] = {}
        self.seen: dict[str, bytes] = {}
        self.counts: Counter[tuple[str, str]] = Counter()

    def run(self, batch: list[InMessage]) -> None:
        result = processor().process(
            batch, lambda c, _p: self.records.get(c), lambda k, _p: self.seen.get(k), 1
        )
        self.records.update({c: r for c, (_p, r) in result.records.items()})
        self.seen.update({k: v for k, (_p, v) in result.seen.items()})
        self.counts.update(result.counts)


@pytest.mark.parametrize("one_batch", [True, False])
def test_an_app_event_with_a_stripe_events_id_does_not_suppress_it(one_batch: bool) -> None:
    store = Store()
    first, then = app_message("evt_shared", 100), stripe_message("evt_shared", 110)
    if one_batch:
        store.run([first, then])
    else:
        store.run([first])
        store.run([then])
    assert store.counts["checkout.session.completed", "applied"] == 1
    assert store.counts["checkout.session.completed", "duplicate"] == 0
    assert store.records[CUSTOMER].state == "onboarding_pending"  # the checkout was folded
    store.run([stripe_message("evt_shared", 110), app_message("evt_shared", 100)])
    assert store.counts["checkout.session.completed", "duplicate"] == 1  # its own repeat
    assert store.counts["onboarding.started", "duplicate"] == 1


#: Stripe event ids as ingest accepts them: printable ASCII without spaces
stripe_ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(stripe_id=stripe_ids, app_id=st.text(min_size=1))
def test_no_app_key_is_ever_a_stripe_key(stripe_id: str, app_id: str) -> None:
    assert dedup_key("app", app_id) != dedup_key("stripe", stripe_id)
    assert dedup_key("stripe", stripe_id) == stripe_id  # entries already stored still match


@given(
    events=st.lists(
        st.tuples(st.sampled_from(["app", "stripe"]), st.sampled_from(["e1", "e2", "e3"])),
        min_size=1,
        max_size=12,
    ),
    cut=st.integers(0, 12),
)
def test_duplicates_are_counted_per_namespace(events: list[tuple[str, str]], cut: int) -> None:
    """Any mix of app and Stripe events sharing ids, split into two batches anywhere: each
    namespace counts exactly its own repeats as duplicates."""
    messages = [
        (app_message if source == "app" else stripe_message)(f"evt_{i}", 100 + n)
        for n, (source, i) in enumerate(events)
    ]
    store = Store()
    store.run(messages[:cut])
    store.run(messages[cut:])
    for source, event_type in (
        ("app", "onboarding.started"),
        ("stripe", "checkout.session.completed"),
    ):
        ids = [i for s, i in events if s == source]
        assert store.counts[event_type, "duplicate"] == len(ids) - len(set(ids))
