"""Batching of the one sink runner and of the metrics sink: when a batch is complete, which
offsets it commits, how rows become inserts, and the store's back-off (pure parts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.metrics import PaystreamMetrics
from paystream.runtime.store import MetricsStore, batch_token
from sinks.metrics_rows import Row, inserts
from sinks.metrics_sink import MetricsAdapter
from sinks.retry import UNAVAILABLE, Attempts, RetryPolicy, after_failure, backoff_delay
from sinks.runner import batch_complete, next_offsets


def row(i: int, table: str = "sink_attempts") -> Row:
    return Row(table, f"k{i}", (i,))


@pytest.mark.parametrize(
    ("size", "waited", "complete"),
    [
        (0, 100.0, True),  # nothing came: the (empty) batch ends, however long
        (1, 0.0, False),
        (1, 2.0, True),  # the oldest message waited the interval
        (9, 1.9, False),
        (10, 0.0, True),  # size reached
    ],
)
def test_batch_completes_by_size_or_age(size: int, waited: float, complete: bool) -> None:
    assert batch_complete(size, waited, batch_size=10, batch_wait_s=2.0) is complete


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3), st.integers(0, 10_000)),
        max_size=200,
    )
)
def test_commit_offsets_are_one_past_the_highest_consumed(
    messages: list[tuple[str, int, int]],
) -> None:
    expected: dict[tuple[str, int], int] = {}
    for topic, partition, offset in messages:
        expected[(topic, partition)] = max(expected.get((topic, partition), 0), offset + 1)
    assert next_offsets(messages) == expected


def test_inserts_group_rows_per_table_with_a_deterministic_token() -> None:
    batch = inserts([row(1, "webhook_events"), row(2, "sink_attempts"), row(3, "webhook_events")])
    assert [i.table for i in batch] == ["sink_attempts", "webhook_events"]
    assert batch[1].rows == [(1,), (3,)]
    assert batch[1].token == batch_token("webhook_events", ["k1", "k3"])
    assert batch_token("webhook_events", ["k1", "k3"]) != batch_token("webhook_events", ["k3"])
    assert batch_token("webhook_events", ["k1"]) != batch_token("sink_attempts", ["k1"])
    assert inserts([]) == []


def test_a_batch_of_skipped_messages_plans_no_write() -> None:
    adapter = MetricsAdapter(MetricsStore(None, "db"), PaystreamMetrics(), "")
    assert adapter.plan([]) == []
    (call,) = adapter.plan([{"row": row(1)}, {"row": row(2, "webhook_events")}])
    assert call.indexes == (0, 1)
    assert [i.table for i in call.payload] == ["sink_attempts", "webhook_events"]


POLICY = RetryPolicy(max_attempts=6, backoff_base_s=0.5, backoff_max_s=15.0)


@pytest.mark.parametrize(
    ("failures", "expected"), [(1, 0.5), (2, 1.0), (3, 2.0), (6, 15.0), (50, 15.0)]
)
def test_store_backoff_doubles_up_to_the_cap(failures: int, expected: float) -> None:
    assert backoff_delay(POLICY, failures, rand=1.0) == expected


@pytest.mark.parametrize("failures", [0, 5, 6, 1_000])
def test_an_unavailable_store_is_retried_without_limit(failures: int) -> None:
    decision = after_failure(POLICY, Attempts(failures, failures, 0), UNAVAILABLE, None, 1.0)
    assert decision.retry
    assert decision.attempts.errors == failures + 1
    assert decision.delay_s == min(15.0, 0.5 * 2**failures)
