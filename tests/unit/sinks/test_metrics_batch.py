"""Pure core of the metrics sink: when a batch flushes and which offsets it commits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.runtime.store import batch_token
from sinks.metrics_sink import Batch, Row, backoff_s


def row(i: int, table: str = "sink_attempts") -> Row:
    return Row(table, f"k{i}", (i,))


@pytest.mark.parametrize(
    ("added", "elapsed", "due"),
    [
        (0, 100.0, False),  # nothing to flush, however long
        (1, 0.0, False),
        (1, 2.0, True),  # the oldest row waited the interval
        (9, 1.9, False),
        (10, 0.0, True),  # size reached
    ],
)
def test_batch_flushes_by_size_or_age(added: int, elapsed: float, due: bool) -> None:
    batch = Batch(max_rows=10, max_age_s=2.0)
    for i in range(added):
        batch.add("t", 0, i, row(i), now=50.0)
    assert batch.due(50.0 + elapsed) is due


def test_skipped_messages_commit_but_add_no_row() -> None:
    batch = Batch(max_rows=10, max_age_s=2.0)
    batch.add("t", 1, 41, None, now=0.0)
    assert batch.size == 0
    assert batch.offsets == {("t", 1): 42}
    assert batch.tables() == []
    assert batch.due(2.0)


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3), st.integers(0, 10_000)),
        min_size=1,
        max_size=200,
    )
)
def test_commit_offsets_are_one_past_the_highest_consumed(
    messages: list[tuple[str, int, int]],
) -> None:
    batch = Batch(max_rows=1000, max_age_s=1.0)
    for i, (topic, partition, offset) in enumerate(messages):
        batch.add(topic, partition, offset, row(i), now=0.0)
    expected: dict[tuple[str, int], int] = {}
    for topic, partition, offset in messages:
        expected[(topic, partition)] = max(expected.get((topic, partition), 0), offset + 1)
    assert batch.offsets == expected
    assert batch.size == len(messages)
    batch.clear()
    assert batch.empty and batch.offsets == {} and not batch.due(10.0)


def test_tables_group_rows_with_a_deterministic_token() -> None:
    batch = Batch(max_rows=10, max_age_s=1.0)
    batch.add("t", 0, 0, row(1, "webhook_events"), now=0.0)
    batch.add("t", 0, 1, row(2, "sink_attempts"), now=0.0)
    batch.add("t", 0, 2, row(3, "webhook_events"), now=0.0)
    tables = batch.tables()
    assert [t for t, _, _ in tables] == ["sink_attempts", "webhook_events"]
    assert tables[1][1] == [(1,), (3,)]
    assert tables[1][2] == batch_token("webhook_events", ["k1", "k3"])
    assert batch_token("webhook_events", ["k1", "k3"]) != batch_token("webhook_events", ["k3"])
    assert batch_token("webhook_events", ["k1"]) != batch_token("sink_attempts", ["k1"])


@pytest.mark.parametrize(
    ("failures", "expected"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 15.0), (50, 15.0)]
)
def test_backoff_doubles_up_to_the_cap(failures: int, expected: float) -> None:
    assert backoff_s(failures, 0.5, 15.0) == expected


@pytest.mark.parametrize(
    ("max_rows", "size", "room"), [(1000, 0, 500), (1000, 900, 100), (1, 0, 1), (5, 5, 1)]
)
def test_batch_asks_for_no_more_than_it_can_hold(max_rows: int, size: int, room: int) -> None:
    batch = Batch(max_rows=max_rows, max_age_s=1.0)
    for i in range(size):
        batch.add("t", 0, i, row(i), now=0.0)
    assert batch.room(500) == room
