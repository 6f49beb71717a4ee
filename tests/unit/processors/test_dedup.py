"""Dedup decisions: when an entry has expired, what it records of the event's first
processing and a repeat, and whether an event was seen already."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors import dedup

DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("value", "now_ms", "retention_ms", "expected"),
    [
        (b"100", 100_000 + 30 * DAY_MS, 30 * DAY_MS, False),
        (b"100", 100_001 + 30 * DAY_MS, 30 * DAY_MS, True),
        (b"100", 100_000, 30 * DAY_MS, False),
        (b"garbage", 0, DAY_MS, True),
        (b"", 0, DAY_MS, True),
        # entries that record the outcome (and a repeat) expire by their created alike
        (b"100 applied", 100_000 + 30 * DAY_MS, 30 * DAY_MS, False),
        (b"100 stale duplicate", 100_001 + 30 * DAY_MS, 30 * DAY_MS, True),
    ],
)
def test_dedup_expiry(value: bytes, now_ms: int, retention_ms: int, expected: bool) -> None:
    assert dedup.expired(value, now_ms, retention_ms) is expected


@pytest.mark.parametrize(
    ("value", "outcome", "repeated", "marked"),
    [
        (b"100 applied", "applied", False, b"100 applied duplicate"),
        (b"100 stale", "stale", False, b"100 stale duplicate"),
        (b"100 ignored duplicate", "ignored", True, None),
        # an earlier release's entry: processed, outcome not recorded
        (b"100", None, False, b"100 - duplicate"),
        (b"100 - duplicate", None, True, None),
    ],
)
def test_dedup_entries_record_the_outcome_and_a_repeat(
    value: bytes, outcome: str | None, repeated: bool, marked: bytes | None
) -> None:
    assert dedup.read_entry(value) == dedup.Entry(outcome, repeated)
    assert dedup.repeated_value(value) == marked
    if marked is not None:
        assert dedup.read_entry(marked) == dedup.Entry(outcome, True)


@given(st.integers(0, 2**40), st.sampled_from(["applied", "stale", "ignored"]))
def test_an_entry_reads_back_what_was_written(created: int, outcome: str) -> None:
    value = dedup.seen_value(created, outcome)
    assert dedup.read_entry(value) == dedup.Entry(outcome, False)
    again = dedup.repeated_value(value)
    assert again is not None and dedup.repeated_value(again) is None
    assert dedup.read_entry(again) == dedup.Entry(outcome, True)
    assert not dedup.expired(again, created * 1000, 0)
    assert dedup.expired(again, created * 1000 + 1, 0)


@pytest.mark.parametrize(
    ("table_value", "batch", "expected"),
    [(None, {}, False), (b"1", {}, True), (None, {"evt_1": 1}, True), (None, {"evt_2": 1}, False)],
)
def test_dedup_decision(
    table_value: bytes | None, batch: dict[str, object], expected: bool
) -> None:
    assert dedup.is_duplicate("evt_1", table_value, batch) is expected
