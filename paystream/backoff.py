"""Capped exponential back-off with equal jitter: the one formula of every retry loop
(the sinks' calls, `paystream reconcile`'s Stripe requests).

Pure: the caller passes the random number, so tests pin it.
"""

from __future__ import annotations


def exponential_step(attempt: int, base_s: float, cap_s: float) -> float:
    """``base · 2^(attempt-1)`` seconds for attempt 1, 2, ..., at most ``cap_s``."""
    return min(cap_s, base_s * 2.0 ** max(0, attempt - 1))


def jittered_delay(attempt: int, base_s: float, cap_s: float, rand: float) -> float:
    """Half the step fixed, half random (``rand`` in [0, 1]): parallel clients spread out
    and none retries at once."""
    step = exponential_step(attempt, base_s, cap_s)
    return step / 2 + step / 2 * min(max(rand, 0.0), 1.0)
