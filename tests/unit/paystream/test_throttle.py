"""The failed-attempt throttle: a token bucket per client (pure functions and the shell)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.throttle import (
    Bucket,
    FailureThrottle,
    Policy,
    allowed,
    attempt,
    refill,
    retry_after_s,
    spend,
)

POLICY = Policy(burst=3, per_s=0.5)


@pytest.mark.parametrize(
    ("bucket", "now", "tokens"),
    [
        (None, 100.0, 3.0),  # no bucket: full
        (Bucket(0.0, 100.0), 100.0, 0.0),
        (Bucket(0.0, 100.0), 101.0, 0.5),
        (Bucket(0.0, 100.0), 102.0, 1.0),
        (Bucket(2.5, 100.0), 110.0, 3.0),  # never above burst
        (Bucket(1.0, 100.0), 90.0, 1.0),  # the clock went back: nothing refilled
    ],
)
def test_refill(bucket: Bucket | None, now: float, tokens: float) -> None:
    assert refill(bucket, now, POLICY) == Bucket(tokens, now)


@pytest.mark.parametrize(
    ("bucket", "now", "may", "wait"),
    [
        (None, 0.0, True, 0),
        (Bucket(1.0, 0.0), 0.0, True, 0),
        (Bucket(0.9, 0.0), 0.0, False, 1),
        (Bucket(0.0, 0.0), 0.0, False, 2),
        (Bucket(0.0, 0.0), 1.0, False, 1),
        (Bucket(0.0, 0.0), 2.0, True, 0),
    ],
)
def test_allowed_and_retry_after(bucket: Bucket | None, now: float, may: bool, wait: int) -> None:
    assert allowed(bucket, now, POLICY) is may
    assert retry_after_s(bucket, now, POLICY) == wait


def test_a_burst_of_failures_then_one_per_refill() -> None:
    throttle = FailureThrottle(POLICY)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1", 0.0) == 0
        throttle.failed("10.0.0.1", 0.0)
    assert throttle.retry_after("10.0.0.1", 0.0) == 2
    assert throttle.retry_after("10.0.0.2", 0.0) == 0  # per client
    assert throttle.retry_after("10.0.0.1", 2.0) == 0
    throttle.failed("10.0.0.1", 2.0)
    assert throttle.retry_after("10.0.0.1", 2.0) == 2


def test_the_shell_stays_bounded_and_forgets_full_buckets_first() -> None:
    throttle = FailureThrottle(POLICY, max_clients=2)
    throttle.failed("old", 0.0)  # refilled by t=10
    throttle.failed("a", 10.0)
    throttle.failed("b", 10.0)
    assert set(throttle.buckets) == {"a", "b"}
    throttle.failed("c", 10.0)
    throttle.failed("c", 10.0)  # the emptiest are kept
    assert len(throttle.buckets) == 2 and "c" in throttle.buckets


@pytest.mark.parametrize("policy", [(0, 1.0), (1, 0.0), (1, float("inf")), (1, -1.0)])
def test_a_policy_that_cannot_refill_is_refused(policy: tuple[int, float]) -> None:
    with pytest.raises(ValueError, match="throttle"):
        Policy(*policy)


policies = st.builds(Policy, burst=st.integers(1, 50), per_s=st.floats(0.01, 100, allow_nan=False))
#: failure times in non-decreasing order, as gaps
gaps = st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=60)


@given(policy=policies, gaps=gaps)
def test_failures_allowed_never_exceed_burst_plus_refill(policy: Policy, gaps: list[float]) -> None:
    """An attacker trying as fast as allowed gets at most burst + elapsed * rate attempts."""
    bucket: Bucket | None = None
    now, tried = 0.0, 0
    for gap in gaps:
        now += gap
        if allowed(bucket, now, policy):
            bucket = spend(bucket, now, policy)
            tried += 1
    assert tried <= policy.burst + now * policy.per_s + 1e-6
    assert bucket is None or 0 <= bucket.tokens <= policy.burst


@given(policy=policies, start=st.floats(0, 1e6, allow_nan=False), waited=st.floats(0, 1e4))
def test_waiting_the_retry_after_is_always_enough(
    policy: Policy, start: float, waited: float
) -> None:
    bucket = Bucket(0.0, start)
    wait = retry_after_s(bucket, start, policy)
    assert allowed(bucket, start + wait, policy)
    assert allowed(bucket, start + wait + waited, policy)


def test_an_attempt_spends_on_wrong_credentials_only_and_then_does_not_look() -> None:
    throttle = FailureThrottle(Policy(burst=2, per_s=0.001))
    looked: list[str] = []

    def check(client: str, given: str | None) -> str:
        def valid() -> bool:
            looked.append(client)
            return given == "right"

        return attempt(throttle, client, 0.0, presented=given is not None, valid=valid)

    assert check("c", None) == "unauthorized"
    assert check("c", "right") == "ok"
    assert throttle.buckets == {}  # neither nothing presented nor a right one spends
    assert [check("c", "guess"), check("c", "guess")] == ["unauthorized"] * 2
    looked.clear()
    # throttled: not even the right one is looked at, so a right guess is not told apart
    assert check("c", "right") == "throttled"
    assert looked == []
    assert check("other", "right") == "ok"
