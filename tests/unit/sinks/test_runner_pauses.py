"""pause_changes: which partitions the sink runner pauses and resumes (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinks.runner import Partition, pause_changes

A, B, C = ("t", 0), ("t", 1), ("t", 2)
NONE: frozenset[Partition] = frozenset()


@pytest.mark.parametrize(
    ("assigned", "backing_off", "paused", "fresh", "pause", "resume"),
    [
        # a back-off starts: every assigned partition is paused
        ({A, B}, {A, B}, NONE, NONE, {A, B}, NONE),
        # it ends: every paused partition is resumed
        ({A, B}, NONE, {A, B}, NONE, NONE, {A, B}),
        # a rebalance took B away mid-back-off: B is resumed too, so it cannot come back paused
        ({A}, NONE, {A, B}, NONE, NONE, {A, B}),
        # B comes back with the pause flag librdkafka kept: resumed as a fresh partition
        ({A, B}, NONE, NONE, {B}, NONE, {B}),
        # fresh partitions are resumed even when this runner never paused them (harmless)
        ({A, B, C}, NONE, NONE, {A, B, C}, NONE, {A, B, C}),
        # a back-off holds only what is assigned; a revoked partition in it is not paused
        ({A}, {A, B}, NONE, NONE, {A}, NONE),
        # already paused and still held: nothing to do
        ({A, B}, {A, B}, {A, B}, NONE, NONE, NONE),
        # a fresh partition a back-off holds stays paused
        ({A, B}, {A, B}, {A}, {B}, {B}, NONE),
        # nothing assigned, nothing paused: nothing to do
        (NONE, NONE, NONE, NONE, NONE, NONE),
    ],
)
def test_pause_changes(
    assigned: set[Partition],
    backing_off: set[Partition],
    paused: set[Partition],
    fresh: set[Partition],
    pause: set[Partition],
    resume: set[Partition],
) -> None:
    changes = pause_changes(assigned, backing_off, paused, fresh)
    assert (changes.pause, changes.resume) == (frozenset(pause), frozenset(resume))


partitions = st.frozensets(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3)))


@given(partitions, partitions, partitions, partitions)
def test_after_the_changes_exactly_the_held_partitions_are_paused(
    assigned: frozenset[Partition],
    backing_off: frozenset[Partition],
    paused: frozenset[Partition],
    fresh: frozenset[Partition],
) -> None:
    changes = pause_changes(assigned, backing_off, paused, fresh)
    # librdkafka's flags: what was paused (or left paused, for a fresh partition), then the changes
    flags = (paused | fresh | changes.pause) - changes.resume
    assert flags == assigned & backing_off  # no partition left paused, none outside a back-off
    assert not changes.pause & changes.resume
    assert changes.pause <= assigned  # a back-off never pauses what it was not assigned
