"""Dedup decisions, settings, the onboarding scan and the API's bearer check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.bearer import bearer_matches as authorized
from paystream.errors import SettingsError
from paystream.settings import load_settings
from processors import dedup
from processors.lifecycle import CustomerRecord
from processors.settings import WorkerSettings, parse_duration
from processors.timers import overdue

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


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", 86400.0),
        ("30d", 2_592_000.0),
        ("90s", 90.0),
        ("500ms", 0.5),
        ("15m", 900.0),
        ("2", 2.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1h", "0s", "1y"])
def test_bad_duration_names_the_variable(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_ONBOARDING_STUCK_AFTER", text)
    with pytest.raises(SettingsError, match="PAYSTREAM_ONBOARDING_STUCK_AFTER"):
        load_settings(WorkerSettings)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PAYSTREAM_ONBOARDING_STUCK_AFTER",
        "PAYSTREAM_DEDUP_RETENTION",
        "PAYSTREAM_API_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(WorkerSettings)
    assert settings.stuck_after_ms == 86_400_000
    assert settings.dedup_retention_ms == 30 * DAY_MS
    assert settings.paystream_worker_port == 6066
    assert settings.paystream_api_token is None


def test_api_token_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_API_TOKEN", "s3cret-token")
    settings = load_settings(WorkerSettings)
    assert "s3cret-token" not in repr(settings)


def pending(customer: str, opened: int, tickets: tuple[str, ...] = ()) -> CustomerRecord:
    return CustomerRecord(
        customer,
        state="onboarding_pending",
        onboarding_opened_by=(opened, f"evt_{customer}"),
        tickets=tickets,
    )


def test_onboarding_scan_picks_only_overdue_unticketed_customers() -> None:
    records = [
        pending("a", 1000),
        pending("b", 5000),
        pending("c", 1000, ("paystream:onboarding_stuck:c:evt_c",)),
        CustomerRecord(
            "d",
            state="active",
            onboarding_opened_by=(1000, "evt_d"),
            onboarding_completed_by=(1200, "app_d"),
        ),
    ]
    due = list(overdue(records, now_ms=4_600_000, stuck_after_ms=3_600_000))
    assert [d["customer_id"] for d in due] == ["a"]
    assert due[0]["event_id"] == "deadline:a:evt_a"
    assert due[0]["created"] == 4600


@pytest.mark.parametrize(
    ("header", "token", "expected"),
    [
        ("Bearer t0k", "t0k", True),
        ("Bearer wrong", "t0k", False),
        ("t0k", "t0k", False),
        (None, "t0k", False),
        ("Bearer ", None, False),
        ("Basic t0k", "t0k", False),
    ],
)
def test_bearer(header: str | None, token: str | None, expected: bool) -> None:
    assert authorized(header, token) is expected
