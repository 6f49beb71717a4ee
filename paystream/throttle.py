"""Throttling of failed attempts per client: a token bucket on plain data, and its shell.

Every client (its address) has a bucket of ``burst`` attempts that refills at ``per_s``
attempts a second. A wrong token spends one; a client whose bucket holds less than one is
refused *before* its token is looked at, so a word list gets ``burst`` guesses and then
``per_s`` a second, never more, and a refused request reveals nothing about the token.
Right tokens spend nothing. Used by the worker's customer-state API and by ingest's
``/v1/customers`` (SPEC §3, §5), the same functions for both.

``refill``, ``allowed`` and ``spend`` are pure (a bucket and a time in, a bucket out);
``FailureThrottle`` keeps the buckets of one process, bounded: a bucket that has refilled
to ``burst`` is the same as none, so it is forgotten.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from paystream.bearer import bearer_matches

#: Wrong tokens a client may try at once, and how fast it may try again (one per 6 s).
DEFAULT_BURST = 10
DEFAULT_PER_S = 1 / 6
#: Buckets kept at most; past it the fullest ones are dropped first (they matter least).
DEFAULT_MAX_CLIENTS = 10_000
#: Float slack of a refill (``(t + w) - t`` may come out a hair under ``w``).
_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class Policy:
    """How many failed attempts a client may make at once (``burst``) and per second."""

    burst: int = DEFAULT_BURST
    per_s: float = DEFAULT_PER_S

    def __post_init__(self) -> None:
        if self.burst < 1 or not (math.isfinite(self.per_s) and self.per_s > 0):
            raise ValueError("a throttle needs burst >= 1 and a positive finite rate")


@dataclass(frozen=True, slots=True)
class Bucket:
    """What is left of a client's attempts (``tokens``) as of time ``at`` (seconds)."""

    tokens: float
    at: float


def refill(bucket: Bucket | None, now: float, policy: Policy) -> Bucket:
    """The bucket as of ``now``: refilled for the time passed, never above ``burst``.

    No bucket is a full one; a clock that went backwards refills nothing.
    """
    if bucket is None:
        return Bucket(float(policy.burst), now)
    elapsed = max(0.0, now - bucket.at)
    return Bucket(min(float(policy.burst), bucket.tokens + elapsed * policy.per_s), now)


def allowed(bucket: Bucket | None, now: float, policy: Policy) -> bool:
    """True when the client may make an attempt now."""
    return refill(bucket, now, policy).tokens >= 1 - _EPSILON


def spend(bucket: Bucket | None, now: float, policy: Policy) -> Bucket:
    """The bucket after one failed attempt at ``now`` (never below empty)."""
    current = refill(bucket, now, policy)
    return Bucket(max(0.0, current.tokens - 1), now)


def retry_after_s(bucket: Bucket | None, now: float, policy: Policy) -> int:
    """Whole seconds until the client may try again (0 when it may now)."""
    tokens = refill(bucket, now, policy).tokens
    return 0 if tokens >= 1 - _EPSILON else math.ceil((1 - tokens) / policy.per_s)


def is_full(bucket: Bucket, now: float, policy: Policy) -> bool:
    """True when the bucket has refilled completely (keeping it changes nothing)."""
    return refill(bucket, now, policy).tokens >= policy.burst


@dataclass
class FailureThrottle:
    """The buckets of one process, keyed by client (one event loop: no lock needed)."""

    policy: Policy = field(default_factory=Policy)
    max_clients: int = DEFAULT_MAX_CLIENTS
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def retry_after(self, client: str, now: float) -> int:
        """0 when ``client`` may try now, else the seconds until it may (``Retry-After``)."""
        return retry_after_s(self.buckets.get(client), now, self.policy)

    def failed(self, client: str, now: float) -> None:
        """Count a failed attempt of ``client``."""
        self.buckets[client] = spend(self.buckets.get(client), now, self.policy)
        if len(self.buckets) > self.max_clients:
            self._prune(client, now)

    def _prune(self, current: str, now: float) -> None:
        """Drop full buckets, then the fullest others; ``current``'s bucket always stays."""
        policy = self.policy
        self.buckets = {c: b for c, b in self.buckets.items() if not is_full(b, now, policy)}
        if len(self.buckets) > self.max_clients:  # still too many: keep the emptiest
            mine = self.buckets.pop(current)
            others = sorted(self.buckets.items(), key=lambda cb: refill(cb[1], now, policy).tokens)
            self.buckets = dict(others[: self.max_clients - 1])
            self.buckets[current] = mine


Verdict = Literal["ok", "unauthorized", "throttled"]


def attempt(
    throttle: FailureThrottle,
    client: str,
    now: float,
    *,
    presented: bool,
    valid: Callable[[], bool],
) -> Verdict:
    """One authentication attempt of ``client`` with its throttle.

    A throttled client's credential is not even checked (``valid`` is not called), so a
    right guess looks like a wrong one; a credential that was presented and is wrong
    spends one attempt; none presented spends nothing.
    """
    if throttle.retry_after(client, now):
        return "throttled"
    if valid():
        return "ok"
    if presented:
        throttle.failed(client, now)
    return "unauthorized"


def bearer_attempt(
    throttle: FailureThrottle, client: str, header: str | None, token: str, now: float
) -> tuple[Verdict, int]:
    """``attempt`` with an ``Authorization: Bearer`` header, and the ``Retry-After`` seconds
    of a throttled client (0 otherwise): the check both the worker's API and ingest's
    ``/v1/customers`` make."""
    verdict = attempt(
        throttle,
        client,
        now,
        presented=header is not None,
        valid=lambda: bearer_matches(header, token),
    )
    return verdict, throttle.retry_after(client, now) if verdict == "throttled" else 0
