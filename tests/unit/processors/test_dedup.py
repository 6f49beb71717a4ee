"""Dedup decisions: when an entry has expired, and whether an event was seen already."""

from __future__ import annotations

import pytest

from processors import dedup

DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("value", "now_ms", "retention_ms", "expected"),
    [
        (b"100", 100_000 + 30 * DAY_MS, 30 * DAY_MS, False),
        (b"100", 100_001 + 30 * DAY_MS, 30 * DAY_MS, True),
        (b"100", 100_000, 30 * DAY_MS, False),
        (b"garbage", 0, DAY_MS, True),
    ],
)
def test_dedup_expiry(value: bytes, now_ms: int, retention_ms: int, expected: bool) -> None:
    assert dedup.expired(value, now_ms, retention_ms) is expected


@pytest.mark.parametrize(
    ("table_value", "batch", "expected"),
    [(None, {}, False), (b"1", {}, True), (None, {"evt_1": 1}, True), (None, {"evt_2": 1}, False)],
)
def test_dedup_decision(
    table_value: bytes | None, batch: dict[str, object], expected: bool
) -> None:
    assert dedup.is_duplicate("evt_1", table_value, batch) is expected
