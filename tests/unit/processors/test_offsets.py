"""The offsets ledger: no commit passes an input record the agent has not handled."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust.transport.consumer
import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st
from intervaltree import IntervalTree  # type: ignore[import-untyped]

from processors.errors import ResumePositionUnknown
from processors.offsets import HandledOffsets, Held

T = "paystream.stripe.events"


def ledger(start: int | None, handled: list[int]) -> HandledOffsets:
    offsets = HandledOffsets([T])
    for offset in handled:
        offsets.handled(T, 0, offset)
    if start is not None:
        offsets.start_at({(T, 0): start}, offsets.generation)
    return offsets


@pytest.mark.parametrize(
    ("start", "handled", "frontier"),
    [
        (0, [], 0),
        (0, [0, 1, 2], 3),
        (10, [10, 11, 13], 12),  # 12 not handled: the frontier waits there
        (10, [13, 11, 10, 12], 14),  # out of order (a stale record first), then filled
        (10, [4, 5, 10], 11),  # records below the start (read again) change nothing
        (10, [10, 10, 11, 11], 12),  # records delivered twice
        (10, [12, 13], 10),  # the record at the start never came
    ],
    ids=["none", "in-order", "hole", "refilled", "below-start", "twice", "head-missing"],
)
def test_frontier_is_the_first_offset_not_handled(
    start: int, handled: list[int], frontier: int
) -> None:
    assert ledger(start, handled).frontier(T, 0) == frontier


def test_offsets_handled_before_the_start_was_known_count_from_it() -> None:
    offsets = ledger(None, [7, 8, 9, 11])
    assert offsets.frontier(T, 0) is None
    assert offsets.unknown_starts([TP(T, 0)]) == [(T, 0)]
    offsets.start_at({(T, 0): 8}, offsets.generation)
    assert offsets.frontier(T, 0) == 10
    assert offsets.unknown_starts([TP(T, 0)]) == []


def test_a_start_looked_up_before_a_rebalance_is_ignored() -> None:
    offsets = ledger(None, [5])
    generation = offsets.generation
    offsets.forget({TP(T, 0)})
    offsets.start_at({(T, 0): 5}, generation)
    assert offsets.frontier(T, 0) is None  # asked again at the next commit


def test_forget_starts_the_partition_over() -> None:
    offsets = ledger(3, [3, 4])
    offsets.forget({TP(T, 0)})
    assert offsets.frontier(T, 0) is None
    offsets.start_at({(T, 0): 4}, offsets.generation)
    assert offsets.frontier(T, 0) == 4


@pytest.mark.parametrize(
    ("asked", "expected", "held"),
    [
        (12, 12, []),  # Faust asks the frontier: unchanged
        (11, 11, []),  # less than the frontier: unchanged (Faust is behind, never ahead)
        (6074, 12, [Held((T, 0), 6074, 12)]),  # a stale-fetch gap counted as acked
    ],
    ids=["frontier", "behind", "past"],
)
def test_hold_back_lowers_only_what_passes_the_frontier(
    asked: int, expected: int, held: list[Held]
) -> None:
    offsets = ledger(10, [10, 11])
    commit: dict[Any, int] = {TP(T, 0): asked, TP("worker-dedup-changelog", 0): 99}
    assert offsets.hold_back(commit) == held
    # the very mapping Faust commits is lowered; other topics are not the ledger's business
    assert commit == {TP(T, 0): expected, TP("worker-dedup-changelog", 0): 99}


def test_hold_back_refuses_a_partition_with_no_known_start() -> None:
    with pytest.raises(ResumePositionUnknown, match=r"\[0\]"):
        ledger(None, [10]).hold_back({TP(T, 0): 11})


@given(
    start=st.integers(0, 50),
    handled=st.lists(st.integers(0, 80), max_size=60),
    known_after=st.integers(0, 60),
    asked=st.integers(1, 120),
)
def test_no_commit_ever_passes_an_offset_not_handled(
    start: int, handled: list[int], known_after: int, asked: int
) -> None:
    offsets = HandledOffsets([T])
    for i, offset in enumerate(handled):
        if i == known_after:
            offsets.start_at({(T, 0): start}, offsets.generation)
        offsets.handled(T, 0, offset)
    offsets.start_at({(T, 0): start}, offsets.generation)  # no-op when already known
    frontier = start
    while frontier in set(handled):
        frontier += 1
    assert offsets.frontier(T, 0) == frontier
    commit: dict[Any, int] = {TP(T, 0): asked}
    offsets.hold_back(commit)
    assert commit[TP(T, 0)] == min(asked, frontier)
    assert all(o in handled for o in range(start, commit[TP(T, 0)]))


# ------------------------------------------------------------- Faust's own commit arithmetic


def faust_new_offset(committed: int | None, acked: list[int], gap: range | None = None) -> Any:
    """What faust-streaming 0.15.3's ``Consumer._new_offset`` asks to commit."""
    tp = TP(T, 0)
    gaps = IntervalTree()
    if gap is not None:
        gaps.addi(gap.start, gap.stop)
    consumer = SimpleNamespace(
        _acked={tp: list(acked)},
        _acked_index={tp: set(acked)},
        _gap={tp: gaps},
        _committed_offset={tp: committed},
    )
    return faust.transport.consumer.Consumer._new_offset(consumer, tp)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("committed", "acked", "gap", "handled"),
    [
        # a stale record (6073) delivered after the seek to 866: Faust's _add_gap counts
        # 867..6072 as acked, and the slack below lets 866 pass as well
        (866, [6073], range(867, 6073), []),
        # min(acked) - committed > 1 lets one unacked offset through (off by one)
        (10, [11, 12], None, [11, 12]),
        # nothing committed yet (or committed 0): no check of the head at all
        (0, [5, 6], None, [5, 6]),
    ],
    ids=["stale-fetch-gap", "slack-of-one", "no-commit-yet"],
)
def test_faust_asks_past_unhandled_records_and_the_ledger_holds_it_back(
    committed: int, acked: list[int], gap: range | None, handled: list[int]
) -> None:
    asked = faust_new_offset(committed, acked, gap)
    assert asked is not None and asked > committed  # the hazard, as Faust has it
    offsets = ledger(committed, handled)
    commit: dict[Any, int] = {TP(T, 0): asked}
    assert offsets.hold_back(commit) == [Held((T, 0), asked, committed)]
    assert commit[TP(T, 0)] == committed
