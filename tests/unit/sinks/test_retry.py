"""The retry policy and the rate limiter: tables and properties, no I/O."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinks.retry import (
    DEFAULT_RETRY,
    Attempts,
    RetryPolicy,
    SlidingWindowLimiter,
    Verdict,
    after_failure,
    backoff_delay,
    classify_status,
    parse_retry_after,
    ride_out_s,
)

POLICY = RetryPolicy(
    max_attempts=4,
    max_rate_limited=3,
    backoff_base_s=1.0,
    backoff_max_s=8.0,
    retry_after_max_s=60.0,
    retry_after_default_s=5.0,
)


@pytest.mark.parametrize(
    ("status", "verdict", "reason"),
    [
        (200, Verdict.OK, None),
        (201, Verdict.OK, None),
        (207, Verdict.OK, None),
        (429, Verdict.RETRY, "rate_limited"),
        (500, Verdict.RETRY, "server_error"),
        (502, Verdict.RETRY, "server_error"),
        (503, Verdict.RETRY, "server_error"),
        (599, Verdict.RETRY, "server_error"),
        (400, Verdict.PERMANENT, "bad_request"),
        (401, Verdict.PERMANENT, "unauthorized"),
        (403, Verdict.PERMANENT, "forbidden"),
        (404, Verdict.PERMANENT, "not_found"),
        (409, Verdict.PERMANENT, "conflict"),
        (422, Verdict.PERMANENT, "unprocessable"),
        (408, Verdict.RETRY, "timeout"),
        (407, Verdict.PERMANENT, "client_error"),
        (418, Verdict.PERMANENT, "client_error"),
        (302, Verdict.PERMANENT, "redirected"),
        (307, Verdict.PERMANENT, "redirected"),
        (101, Verdict.PERMANENT, "unexpected_status"),
    ],
)
def test_classify_status(status: int, verdict: Verdict, reason: str | None) -> None:
    assert classify_status(status) == (verdict, reason)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 2 ", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),  # NOW + 30 s as an HTTP-date
        ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),  # already past
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    ("retry_after", "earlier_429s", "delay"),
    [
        (3.0, 0, 3.0),
        (None, 0, 5.0),  # no Retry-After: the default wait
        (600.0, 0, 60.0),  # capped
        (0.0, 0, 0.75),  # at least the back-off: the first step, 1 s, half fixed half random
        (1.0, 4, 6.0),  # the 5th 429 in a row: the 8 s step outgrows a short Retry-After
        (20.0, 4, 20.0),
    ],
)
def test_rate_limited_waits_for_retry_after_and_at_least_the_back_off(
    retry_after: float | None, earlier_429s: int, delay: float
) -> None:
    seen = Attempts(total=earlier_429s + 1, rate_limited=earlier_429s)
    policy = replace(POLICY, max_rate_limited=10)
    decision = after_failure(policy, seen, "rate_limited", retry_after, 0.5)
    assert decision.retry
    assert decision.delay_s == delay
    assert decision.attempts == Attempts(
        total=earlier_429s + 1, errors=0, rate_limited=earlier_429s + 1
    )


def test_rate_limited_budget_is_bounded() -> None:
    attempts = Attempts()
    decisions = []
    for _ in range(POLICY.max_rate_limited + 1):
        attempts = Attempts(attempts.total + 1, attempts.errors, attempts.rate_limited)
        decision = after_failure(POLICY, attempts, "rate_limited", 1.0, 0.0)
        decisions.append(decision.retry)
        attempts = decision.attempts
    assert decisions == [True] * POLICY.max_rate_limited + [False]


@pytest.mark.parametrize("reason", ["server_error", "timeout", "connection_error"])
def test_errors_give_up_after_max_attempts(reason: str) -> None:
    attempts = Attempts()
    tries = 0
    while True:
        tries += 1
        attempts = Attempts(attempts.total + 1, attempts.errors, attempts.rate_limited)
        decision = after_failure(POLICY, attempts, reason, 2.0, 0.3)
        attempts = decision.attempts
        if not decision.retry:
            break
    assert tries == POLICY.max_attempts
    assert attempts.errors == POLICY.max_attempts


def test_server_errors_ignore_retry_after_and_back_off() -> None:
    decision = after_failure(POLICY, Attempts(total=1), "server_error", 50.0, 0.0)
    assert decision.delay_s == pytest.approx(0.5)  # half of the first 1 s step


@pytest.mark.parametrize(
    ("errors", "rand", "delay"),
    [(1, 0.0, 0.5), (1, 1.0, 1.0), (2, 0.0, 1.0), (3, 0.5, 3.0), (4, 1.0, 8.0), (9, 0.0, 4.0)],
)
def test_backoff_table(errors: int, rand: float, delay: float) -> None:
    assert backoff_delay(POLICY, errors, rand) == pytest.approx(delay)


@given(st.integers(1, 60), st.floats(0, 1, exclude_max=True))
def test_backoff_is_jittered_within_its_step(errors: int, rand: float) -> None:
    step = min(POLICY.backoff_max_s, POLICY.backoff_base_s * 2 ** (errors - 1))
    delay = backoff_delay(POLICY, errors, rand)
    assert step / 2 <= delay <= step


@given(st.lists(st.sampled_from(["rate_limited", "server_error", "timeout"]), max_size=80))
def test_every_failure_sequence_ends_within_the_bounds(reasons: list[str]) -> None:
    attempts = Attempts()
    for reason in reasons:
        attempts = Attempts(attempts.total + 1, attempts.errors, attempts.rate_limited)
        decision = after_failure(POLICY, attempts, reason, None, 0.5)
        attempts = decision.attempts
        if not decision.retry:
            break
        assert 0 <= decision.delay_s <= max(POLICY.backoff_max_s, POLICY.retry_after_max_s)
    assert attempts.errors <= POLICY.max_attempts
    assert attempts.rate_limited <= POLICY.max_rate_limited + 1


def waited_until_dead_lettered(
    policy: RetryPolicy, reason: str, retry_after: float | None, rands: list[float]
) -> float:
    """Total back-off of one call that fails with ``reason`` every time, until it gives up."""
    attempts, waited = Attempts(), 0.0
    for rand in itertools.cycle(rands):
        attempts = Attempts(attempts.total + 1, attempts.errors, attempts.rate_limited)
        decision = after_failure(policy, attempts, reason, retry_after, rand)
        attempts = decision.attempts
        if not decision.retry:
            return waited
        waited += decision.delay_s
    raise AssertionError("unreachable")


def test_the_default_policy_rides_out_five_to_ten_minutes_of_errors() -> None:
    assert ride_out_s(DEFAULT_RETRY) == (pytest.approx(300.75), pytest.approx(601.5))
    assert waited_until_dead_lettered(DEFAULT_RETRY, "server_error", None, [0.0]) == (
        pytest.approx(300.75)
    )
    assert waited_until_dead_lettered(DEFAULT_RETRY, "timeout", None, [1.0]) == (
        pytest.approx(601.5)
    )


@given(
    st.sampled_from(["server_error", "timeout", "connection_error"]),
    st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=30),
)
def test_a_default_outage_of_five_minutes_is_ridden_out_whatever_the_jitter(
    reason: str, rands: list[float]
) -> None:
    low, high = ride_out_s(DEFAULT_RETRY)
    assert 300 <= low <= waited_until_dead_lettered(DEFAULT_RETRY, reason, None, rands) <= high


@given(
    st.one_of(st.none(), st.floats(0, 200)),
    st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=30),
)
def test_default_rate_limiting_is_ridden_out_for_five_minutes_whatever_retry_after_says(
    retry_after: float | None, rands: list[float]
) -> None:
    waited = waited_until_dead_lettered(DEFAULT_RETRY, "rate_limited", retry_after, rands)
    assert 300 <= waited <= DEFAULT_RETRY.max_rate_limited * DEFAULT_RETRY.retry_after_max_s


def test_limiter_table() -> None:
    limiter = SlidingWindowLimiter(limit=2, period_s=10.0)
    assert limiter.delay(0.0) == 0.0
    limiter.record(0.0)
    limiter.record(1.0)
    assert limiter.delay(2.0) == pytest.approx(8.0)
    assert limiter.delay(10.0) == 0.0  # the call at 0.0 left the window
    limiter.record(10.0)
    assert limiter.delay(10.5) == pytest.approx(0.5)


def test_spread_limiter_paces_the_budget_over_the_window() -> None:
    limiter = SlidingWindowLimiter(limit=100, period_s=10.0, spread=10)
    for _ in range(10):  # a tenth of the budget may go at once
        assert limiter.delay(0.0) == 0.0
        limiter.record(0.0)
    assert limiter.delay(0.0) == pytest.approx(1.0)  # not the whole budget in one burst
    assert limiter.delay(1.0) == 0.0
    sent = 10
    for t in range(1, 10):
        for _ in range(10):
            assert limiter.delay(float(t)) == 0.0
            limiter.record(float(t))
            sent += 1
    assert sent == 100
    assert limiter.delay(9.5) == pytest.approx(0.5)  # both windows full
    assert limiter.delay(10.0) == 0.0


def test_limiter_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(0, 1.0)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(1, 0.0)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(1, 1.0, spread=0)


@given(
    st.integers(1, 5),
    st.floats(0.5, 20),
    st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=60),
)
def test_limiter_never_lets_more_than_limit_into_a_window(
    limit: int, period: float, gaps: list[float]
) -> None:
    limiter = SlidingWindowLimiter(limit, period)
    now = 0.0
    sent: list[float] = []
    for gap in gaps:
        now += gap
        for _ in range(100):  # a caller that obeys the limiter, as sinks._http.Throttle does
            wait = limiter.delay(now)
            if wait <= 0:
                break
            now += wait
        limiter.record(now)
        sent.append(now)
    for i, start in enumerate(sent):
        in_window = [t for t in sent[i:] if t < start + period]
        assert len(in_window) <= limit
