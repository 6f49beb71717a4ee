"""The client-side throttle the sink runners consult: ``ready_in`` tells the wait (the time
a batch may keep filling) without spending budget."""

from __future__ import annotations

import threading

from sinks._http import Throttle
from sinks.retry import SlidingWindowLimiter


class FakeClock:
    """Time that moves only when a caller waits (no sleeping in unit tests)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def wait(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_ready_in_tells_the_wait_without_spending_the_budget() -> None:
    clock = FakeClock()
    throttle = Throttle(SlidingWindowLimiter(2, 10.0), clock=clock, wait=clock.wait)
    assert throttle.ready_in() == 0.0
    assert throttle.ready_in() == 0.0  # asking twice spends nothing
    throttle.acquire()
    throttle.acquire()
    assert throttle.ready_in() == 10.0
    clock.wait(4.0)
    assert throttle.ready_in() == 6.0
