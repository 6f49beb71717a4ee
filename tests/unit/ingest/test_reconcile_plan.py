"""``paystream reconcile``'s decisions: window, API key, back-off, summary and exit code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.errors import ReconcileRefused
from ingest.reconcile_plan import (
    STRIPE_EVENT_RETENTION_S,
    Summary,
    Window,
    pace_wait,
    parse_duration,
    parse_instant,
    plan_window,
    retry_delay,
)

NOW = 1_764_500_000  # 2025-11-30T10:53:20Z
DAY = 86_400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3d", 3 * DAY),
        ("12h", 12 * 3600),
        ("90m", 90 * 60),
        ("45s", 45),
        ("1w", 7 * DAY),
        ("1d12h", DAY + 12 * 3600),
        (" 2H ", 7200),
        ("30d", 30 * DAY),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3", "d", "3 days", "-3d", "3x", "1.5d", "0d", "0h0m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ReconcileRefused, match="--since"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "unix"),
    [
        ("1764500000", 1_764_500_000),
        ("2025-11-30T10:53:20Z", 1_764_500_000),
        ("2025-11-30T10:53:20+00:00", 1_764_500_000),
        ("2025-11-30T11:53:20+01:00", 1_764_500_000),
        ("2025-11-30T10:53:20", 1_764_500_000),  # no offset: UTC
        ("2025-11-30", 1_764_460_800),
    ],
)
def test_instants(text: str, unix: int) -> None:
    assert parse_instant(text, "--from") == unix


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "30/11/2025", "1.5e9"])
def test_bad_instants_name_the_flag(text: str) -> None:
    with pytest.raises(ReconcileRefused, match="--to"):
        parse_instant(text, "--to")


@pytest.mark.parametrize(
    ("since", "from_", "to", "window"),
    [
        ("3d", None, None, Window(NOW - 3 * DAY, NOW)),
        ("30d", None, None, Window(NOW - 30 * DAY, NOW)),
        (None, str(NOW - DAY), None, Window(NOW - DAY, NOW)),
        (None, str(NOW - 2 * DAY), str(NOW - DAY), Window(NOW - 2 * DAY, NOW - DAY)),
        # a --to in the future ends the window now
        (None, str(NOW - DAY), str(NOW + DAY), Window(NOW - DAY, NOW)),
        # a start within the minute of slack is moved to the 30-day edge
        (None, str(NOW - 30 * DAY - 30), None, Window(NOW - 30 * DAY, NOW)),
    ],
)
def test_windows(since: str | None, from_: str | None, to: str | None, window: Window) -> None:
    assert plan_window(since=since, from_=from_, to=to, now=NOW) == window


@pytest.mark.parametrize(
    ("since", "from_", "to", "message"),
    [
        (None, None, None, "either --since"),
        ("3d", str(NOW), None, "either --since"),
        ("3d", None, str(NOW), "--to goes with --from"),
        ("31d", None, None, "30 days"),
        ("5w", None, None, "30 days"),
        (None, str(NOW - 31 * DAY), str(NOW - 30 * DAY), "30 days"),
        (None, str(NOW - DAY), str(NOW - 2 * DAY), "before --to"),
        (None, str(NOW + 10), None, "before --to"),
    ],
)
def test_refused_windows(
    since: str | None, from_: str | None, to: str | None, message: str
) -> None:
    with pytest.raises(ReconcileRefused, match=message):
        plan_window(since=since, from_=from_, to=to, now=NOW)


@given(st.integers(min_value=1, max_value=40 * DAY))
def test_since_windows_never_reach_past_30_days(seconds: int) -> None:
    try:
        window = plan_window(since=f"{seconds}s", from_=None, to=None, now=NOW)
    except ReconcileRefused:
        assert seconds > STRIPE_EVENT_RETENTION_S
    else:
        assert window.end == NOW
        assert NOW - STRIPE_EVENT_RETENTION_S <= window.start < window.end


@pytest.mark.parametrize(
    ("attempt", "retry_after", "jitter", "delay"),
    [
        (1, None, 1.0, 0.5),
        (2, None, 1.0, 1.0),
        (3, None, 1.0, 2.0),
        (3, None, 0.0, 1.0),  # jitter halves at most
        (10, None, 1.0, 20.0),  # capped
        (1, "3", 0.0, 3.0),  # Retry-After wins when present
        (1, "0", 0.0, 0.0),
        (1, "600", 0.0, 20.0),  # ... capped as well
        (2, "soon", 1.0, 1.0),  # unreadable: back-off
    ],
)
def test_retry_delay(attempt: int, retry_after: str | None, jitter: float, delay: float) -> None:
    assert retry_delay(attempt, retry_after, jitter=lambda: jitter) == pytest.approx(delay)


@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0, max_value=1))
def test_retry_delay_grows_and_stays_bounded(attempt: int, jitter: float) -> None:
    delay = retry_delay(attempt, None, jitter=lambda: jitter)
    assert 0.25 <= delay <= 20.0
    assert retry_delay(attempt + 1, None, jitter=lambda: 1.0) >= retry_delay(
        attempt, None, jitter=lambda: 1.0
    )


W = Window(NOW - DAY, NOW)


@pytest.mark.parametrize(
    ("summary", "exit_code", "expected"),
    [
        (
            Summary(W, listed=250, published=250, failed=0, complete=True),
            0,
            [
                "listed: 250",
                "already processed: unknown (worker not asked)",
                "never arrived as a webhook (delivery gap): unknown (worker not asked)",
                "published: 250",
                "failed: 0",
                "result: ok",
            ],
        ),
        (
            Summary(W, 250, 1, 0, True, already_processed=249, missing=1),
            0,
            [
                "listed: 250",
                "already processed: 249",
                "never arrived as a webhook (delivery gap): 1",
                "published: 1",
                "result: ok",
            ],
        ),
        (
            Summary(W, 250, 4, 0, True, already_processed=246, missing=1, unanswered=3),
            0,
            [
                "already processed: at least 246 (the worker did not answer for 3)",
                "never arrived as a webhook (delivery gap): at least 1 (the worker did not",
                "published: 4",
                "result: ok",
            ],
        ),
        (Summary(W, 250, 249, 1, True), 1, ["failed: 1", "result: FAILED"]),
        (
            Summary(W, 200, 200, 0, False, error="Stripe answered 429 (rate limit) 9 times"),
            1,
            ["listed: 200 (listing incomplete)", "error: Stripe answered 429", "result: FAILED"],
        ),
        (Summary(W, 0, 0, 0, True), 0, ["listed: 0", "result: ok"]),
    ],
)
def test_summary_lines_and_exit_code(summary: Summary, exit_code: int, expected: list[str]) -> None:
    assert summary.exit_code == exit_code
    lines = summary.lines()
    assert lines[0] == "reconcile window: 2025-11-29T10:53:20+00:00 .. 2025-11-30T10:53:20+00:00"
    for part in expected:
        assert any(line.startswith(part) for line in lines), (part, lines)


@pytest.mark.parametrize(
    ("last", "now", "rate", "wait"),
    [
        (None, 100.0, 10.0, 0.0),  # the first request goes at once
        (100.0, 100.0, 10.0, 0.1),
        (100.0, 100.04, 10.0, 0.06),
        (100.0, 100.5, 10.0, 0.0),  # long enough ago
        (100.0, 100.0, 0.5, 2.0),
    ],
)
def test_pace_wait(last: float | None, now: float, rate: float, wait: float) -> None:
    assert pace_wait(last, now, rate) == pytest.approx(wait)
