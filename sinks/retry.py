"""The retry policy and the client-side rate limit: plain functions on plain data.

SPEC §6: a 429 waits for ``Retry-After``; 5xx, timeouts and connection errors back off
exponentially with jitter up to a bounded number of attempts; any other 4xx is permanent.

The defaults ride out a CRM or helpdesk outage of several minutes (a deploy, a failover)
instead of filling the exception queue: 5xx, timeouts and connection errors back off from
0.5 s, doubling up to 30 s, for 26 attempts, which is 5 to 10 minutes of waiting
(``ride_out_s``) before a call is dead-lettered. 429s have their own budget, 30 answers:
each waits what the API asks for (``Retry-After``), and at least the same capped, jittered
back-off, so a limit that keeps answering 429 with a short ``Retry-After`` is still ridden
out for minutes. A 408 is a timeout like the others. A permanent error (another 4xx) is
dead-lettered at once.
"""

from __future__ import annotations

import email.utils
import re
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from paystream.backoff import exponential_step, jittered_delay

#: reason codes of retryable failures
RATE_LIMITED = "rate_limited"
#: HubSpot's daily limit: the sink pauses until the account's midnight (not an attempt)
DAILY_LIMIT = "daily_limit_reached"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
#: the destination (a store Kafka can wait for) cannot take writes now: retried without limit
UNAVAILABLE = "unavailable"
#: reason codes of permanent failures
BAD_REQUEST = "bad_request"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
UNPROCESSABLE = "unprocessable"
CLIENT_ERROR = "client_error"
UNEXPECTED_STATUS = "unexpected_status"
INVALID_COMMAND = "invalid_command"
#: a 3xx: the API moved or a proxy answered; never followed, never a silent success
REDIRECTED = "redirected"
#: 2xx without what a success must carry (a created ticket without its id, not a 201)
UNEXPECTED_ANSWER = "unexpected_answer"

_PERMANENT_BY_STATUS = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    409: CONFLICT,
    422: UNPROCESSABLE,
}


class Verdict(Enum):
    """What an HTTP status means for the call."""

    OK = "ok"
    RETRY = "retry"
    PERMANENT = "permanent"


def classify_status(status: int) -> tuple[Verdict, str | None]:
    """Map an HTTP status to a verdict and a reason code (None for success)."""
    if 200 <= status < 300:
        return Verdict.OK, None
    if status == 429:
        return Verdict.RETRY, RATE_LIMITED
    if status == 408:  # Request Timeout: the server gave up waiting, the request may go again
        return Verdict.RETRY, TIMEOUT
    if 500 <= status < 600:
        return Verdict.RETRY, SERVER_ERROR
    if 400 <= status < 500:
        return Verdict.PERMANENT, _PERMANENT_BY_STATUS.get(status, CLIENT_ERROR)
    if 300 <= status < 400:
        return Verdict.PERMANENT, REDIRECTED
    return Verdict.PERMANENT, UNEXPECTED_STATUS


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_s
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop; every delay is configurable so tests run fast."""

    max_attempts: int = 26
    max_rate_limited: int = 30
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0
    retry_after_default_s: float = 10.0


#: the policy the sinks' settings default to
DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Attempts:
    """How often one call has been tried, and how its failures split."""

    total: int = 0
    errors: int = 0
    rate_limited: int = 0


@dataclass(frozen=True)
class Decision:
    """After a retryable failure: try again after ``delay_s``, or give up."""

    retry: bool
    delay_s: float
    attempts: Attempts


def backoff_step(policy: RetryPolicy, failures: int) -> float:
    """The capped exponential step after ``failures`` failures in a row: ``base·2^(n-1)``."""
    return exponential_step(failures, policy.backoff_base_s, policy.backoff_max_s)


def backoff_delay(policy: RetryPolicy, errors: int, rand: float) -> float:
    """Exponential backoff, equal jitter: half the step fixed, half random (``rand`` in [0,1))."""
    return jittered_delay(errors, policy.backoff_base_s, policy.backoff_max_s, rand)


def ride_out_s(policy: RetryPolicy) -> tuple[float, float]:
    """Shortest and longest back-off a call failing with 5xx, timeouts or connection errors
    waits in total before it is dead-lettered (the calls' own time comes on top)."""
    steps = [backoff_step(policy, n) for n in range(1, policy.max_attempts)]
    return sum(steps) / 2, sum(steps)


def after_failure(
    policy: RetryPolicy,
    attempts: Attempts,
    reason_code: str,
    retry_after_s: float | None,
    rand: float,
) -> Decision:
    """Decide what follows a retryable failure of the call tried ``attempts.total`` times."""
    if reason_code == DAILY_LIMIT:
        # Waiting for the daily reset is not a failure of this call: no budget is spent and
        # no cap applies (the limit lasts until midnight, whatever the caps say).
        wait = policy.retry_after_default_s if retry_after_s is None else retry_after_s
        return Decision(True, max(0.0, wait), attempts)
    if reason_code == RATE_LIMITED:
        seen = replace(attempts, rate_limited=attempts.rate_limited + 1)
        if seen.rate_limited > policy.max_rate_limited:
            return Decision(False, 0.0, seen)
        asked = policy.retry_after_default_s if retry_after_s is None else retry_after_s
        wait = max(asked, backoff_delay(policy, seen.rate_limited, rand))
        return Decision(True, min(wait, policy.retry_after_max_s), seen)
    seen = replace(attempts, errors=attempts.errors + 1)
    if reason_code == UNAVAILABLE:  # nothing is dead-lettered: Kafka keeps the data meanwhile
        return Decision(True, backoff_delay(policy, seen.errors, rand), seen)
    if seen.errors >= policy.max_attempts:
        return Decision(False, 0.0, seen)
    return Decision(True, backoff_delay(policy, seen.errors, rand), seen)


class SlidingWindowLimiter:
    """At most ``limit`` calls in any ``period_s`` window (client-side, before the API's 429).

    ``delay(now)`` answers how long to wait before the next call may go out; ``record(now)``
    registers a call. Time comes from the caller, so the limiter is deterministic to test.

    ``spread`` > 1 also allows at most ``limit // spread`` calls (at least one) in any
    ``period_s / spread``: under load the budget is spent evenly instead of in one burst
    followed by a stall of up to a whole window, which is what the commands queued behind
    the stall would wait (latency); the batches grow meanwhile, so throughput stays.
    """

    def __init__(self, limit: int, period_s: float, spread: int = 1) -> None:
        if limit < 1 or period_s <= 0 or spread < 1:
            raise ValueError("limit and spread must be >= 1 and period_s > 0")
        self.limit = limit
        self.period_s = period_s
        self._sent: deque[float] = deque()
        self._pace = (
            SlidingWindowLimiter(max(1, limit // spread), period_s / spread) if spread > 1 else None
        )

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] + self.period_s <= now:
            self._sent.popleft()

    def delay(self, now: float) -> float:
        self._expire(now)
        paced = self._pace.delay(now) if self._pace is not None else 0.0
        if len(self._sent) < self.limit:
            return paced
        return max(paced, self._sent[0] + self.period_s - now)

    def record(self, now: float) -> None:
        self._expire(now)
        self._sent.append(now)
        if self._pace is not None:
            self._pace.record(now)


def next_daily_reset(now_s: float, time_zone: str) -> float:
    """The next midnight in ``time_zone`` after ``now_s`` (both epoch seconds).

    HubSpot's daily limit "resets at midnight based on the time zone setting of the
    account" (https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines).
    """
    zone = ZoneInfo(time_zone)
    local = datetime.fromtimestamp(now_s, tz=UTC).astimezone(zone)
    tomorrow = (local + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone)
    return midnight.timestamp()


#: what may go into a URL, a header or a HubSpot id: printable ASCII, no spaces
_SAFE_ID = re.compile(r"[!-~]{1,255}")


def is_safe_id(value: str) -> bool:
    """True when ``value`` can travel as an id, an ``external_id`` or an ``Idempotency-Key``."""
    return _SAFE_ID.fullmatch(value) is not None
