"""A small synchronous JSON-over-HTTP helper for the sink clients (stdlib only).

Failures become the sinks' error classes: timeouts and connection errors are retryable,
statuses are classified by ``sinks.retry.classify_status``. Error details are one line and
never carry a header (the credentials live there) or more than a short excerpt of a body.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sinks.errors import PermanentSinkError, RetryableSinkError
from sinks.retry import CONNECTION_ERROR, TIMEOUT, SlidingWindowLimiter, Verdict, classify_status

USER_AGENT = "paystream-sinks/0.1"


@dataclass(frozen=True)
class HttpAnswer:
    """Status, lower-cased headers and the decoded JSON body (None when not JSON)."""

    status: int
    headers: Mapping[str, str]
    body: Any


class Throttle:
    """Client-side rate limit: blocks (through ``wait``) until the next call may go out."""

    def __init__(
        self,
        limiter: SlidingWindowLimiter,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] = time.sleep,
    ) -> None:
        self.limiter = limiter
        self.clock = clock
        self.wait = wait
        self.waited_s = 0.0

    def acquire(self) -> None:
        for _ in range(10_000):
            delay = self.limiter.delay(self.clock())
            if delay <= 0:
                break
            self.waited_s += delay
            if self.wait(delay) is True:  # a stop event was set: let the call go
                break
        self.limiter.record(self.clock())


def _excerpt(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "description", "error"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:160]
    return ""


def request_json(
    method: str,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    timeout_s: float,
) -> HttpAnswer:
    """Send one request; raise RetryableSinkError on timeouts and connection errors."""
    data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http/https only)
    request.add_header("Accept", "application/json")
    request.add_header("User-Agent", USER_AGENT)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = response.status
            raw = response.read()
            got = {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            raw = exc.read()
        except (OSError, TimeoutError):
            raw = b""
        got = {k.lower(): v for k, v in (exc.headers or {}).items()}
        exc.close()
    except TimeoutError:
        raise RetryableSinkError(TIMEOUT, f"no answer within {timeout_s:g}s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise RetryableSinkError(TIMEOUT, f"no answer within {timeout_s:g}s") from None
        raise RetryableSinkError(CONNECTION_ERROR, type(exc.reason).__name__) from None
    except (ConnectionError, OSError) as exc:
        raise RetryableSinkError(CONNECTION_ERROR, type(exc).__name__) from None
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = None
    return HttpAnswer(status, got, decoded)


def check(answer: HttpAnswer, what: str, retry_after_s: float | None) -> None:
    """Raise the error class the status stands for; return on 2xx."""
    verdict, reason = classify_status(answer.status)
    if verdict is Verdict.OK:
        return
    detail = f"{what} answered {answer.status}"
    excerpt = _excerpt(answer.body)
    if excerpt:
        detail += f": {excerpt}"
    detail = " ".join(detail.split())
    if verdict is Verdict.RETRY:
        raise RetryableSinkError(reason or "retry", detail, retry_after_s)
    raise PermanentSinkError(reason or "permanent", detail)
