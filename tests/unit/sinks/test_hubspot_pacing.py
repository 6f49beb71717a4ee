"""The CRM sink's HubSpot budget under constant demand (``sinks.app.hubspot_limiter``).

The limiter is driven on a simulated clock: a caller that always has a batch waiting asks
``delay``, waits it, and calls. What it may send is HubSpot's quota; what it waits between
slices is what a queued command waits for the quota (docs/benchmarks.md).
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from sinks.app import HUBSPOT_BURST, hubspot_limiter
from sinks.hubspot import PLAN_LIMITS_PER_10S
from sinks.retry import SlidingWindowLimiter
from sinks.settings import SinkSettings


def _calls_under_constant_demand(limiter: SlidingWindowLimiter, seconds: float) -> list[float]:
    now, calls = 0.0, []
    while now < seconds:
        wait = limiter.delay(now)
        if wait > 0:
            now += wait
            continue
        limiter.record(now)
        calls.append(now)
    return calls


def _most_in_any_window(calls: list[float], width: float) -> int:
    most, start = 0, 0
    for end, at in enumerate(calls):
        while calls[start] + width <= at:  # as the limiter expires a call
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize("plan", sorted(PLAN_LIMITS_PER_10S))
def test_the_quota_is_spent_evenly_two_calls_at_a_time(plan: str) -> None:
    settings = SinkSettings(paystream_hubspot_plan=plan)
    limit, period = settings.hubspot_paced_limit, settings.paystream_hubspot_rate_period_s
    calls = _calls_under_constant_demand(hubspot_limiter(settings), 6 * period)
    assert _most_in_any_window(calls, period) <= limit  # never past HubSpot's rolling window
    assert len(calls) >= 0.97 * 6 * limit  # and the quota is used, not left idle
    # calls go out in pairs: the longest wait for the quota is one slice of the budget
    longest_wait = max(b - a for a, b in pairwise(calls))
    assert longest_wait <= HUBSPOT_BURST * period / limit * 1.02
    assert _most_in_any_window(calls, period / (limit // HUBSPOT_BURST) * 0.99) <= HUBSPOT_BURST


def test_a_set_limit_is_paced_the_same_way() -> None:
    settings = SinkSettings(paystream_hubspot_rate_limit=1000, paystream_hubspot_rate_period_s=10)
    calls = _calls_under_constant_demand(hubspot_limiter(settings), 20.0)
    assert _most_in_any_window(calls, 10.0) <= 1000
    assert max(b - a for a, b in pairwise(calls)) <= 0.021


def test_tenths_of_the_window_held_batches_up_to_a_second() -> None:
    # the pacing before: 18 calls at once, then a wait of most of a second for the next 18
    settings = SinkSettings()
    tenths = SlidingWindowLimiter(
        settings.hubspot_paced_limit, settings.paystream_hubspot_rate_period_s, spread=10
    )
    calls = _calls_under_constant_demand(tenths, 30.0)
    assert max(b - a for a, b in pairwise(calls)) == pytest.approx(1.0)
