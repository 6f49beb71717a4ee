"""The sinks' one HTTP client: an ``httpx.Client`` per API, keep-alive, never redirected.

* **Connection reuse.** One pooled client per API client (one per sink thread), so calls
  ride on kept-alive connections instead of a new TCP and TLS handshake each.
* **No redirects.** ``follow_redirects=False``: a 3xx is a permanent error
  (``redirected``). A POST answered with a redirect did not happen where we meant it to,
  and a client that followed it could turn a create into a GET answered 200 — a silent
  success that never was.
* **Bad input stays one command's problem.** An id that cannot go into a URL or a header
  (a newline, non-ASCII) raises ``PermanentSinkError(invalid_command)`` for that call, so
  the runner dead-letters the one command and the process carries on.

Failures become the sinks' error classes: timeouts and connection errors (an answer lost
after the request left) are retryable, statuses are classified by
``sinks.retry.classify_status``. Error details are one line and never carry a header (the
credentials live there) nor any of a body's free text: an API's messages quote what was
sent (HubSpot's validation errors quote the email), so only the status and the error's
category (``error_category``) reach logs, metrics and dead letters.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from sinks.errors import PermanentSinkError, RetryableSinkError
from sinks.retry import (
    CONNECTION_ERROR,
    INVALID_COMMAND,
    TIMEOUT,
    SlidingWindowLimiter,
    Verdict,
    classify_status,
)

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


#: an error category is a code word (``VALIDATION_ERROR``, ``RecordInvalid``): no space, no
#: ``@``, nothing that could be an email, a name or a sentence quoting the request
_CODE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
#: where the APIs put their error's category: HubSpot ``category`` and ``subCategory``
#: (https://developers.hubspot.com/docs/api/error-handling), Zendesk ``error``
#: (https://developer.zendesk.com/api-reference/introduction/requests/#response-format)
_CATEGORY_KEYS = ("category", "subCategory", "error")


def error_category(body: Any) -> str:
    """The category an API's error body names (``VALIDATION_ERROR``, or
    ``VALIDATION_ERROR/INVALID_EMAIL``), never its free text; "" when it names none."""
    if not isinstance(body, Mapping):
        return ""
    words = []
    for key in _CATEGORY_KEYS:
        value = body.get(key)
        if isinstance(value, str) and _CODE_WORD.fullmatch(value) and value not in words:
            words.append(value)
    return "/".join(words[:2])


class HttpClient:
    """JSON over one keep-alive ``httpx.Client``; every request passes the throttle first."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        headers: Mapping[str, str],
        throttle: Throttle | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.throttle = throttle
        self.requests_sent = 0
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **headers},
            transport=transport,
        )
        self.timeout_s = timeout_s

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> HttpAnswer:
        """Send one request; raise RetryableSinkError on timeouts and connection errors.

        ``body`` is sent as JSON; ``content`` instead sends those exact bytes (a signed body).
        """
        if self.throttle is not None:
            self.throttle.acquire()
        self.requests_sent += 1
        try:
            response = self._client.request(
                method, path, json=body, content=content, params=params, headers=headers
            )
        except httpx.TimeoutException:
            raise RetryableSinkError(TIMEOUT, f"no answer within {self.timeout_s:g}s") from None
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeError) as exc:
            # our side cannot even write the request: one command's bad id, never retried
            raise PermanentSinkError(
                INVALID_COMMAND, f"request could not be built ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise RetryableSinkError(CONNECTION_ERROR, type(exc).__name__) from None
        try:
            decoded = response.json() if response.content else None
        except ValueError:
            decoded = None
        return HttpAnswer(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, decoded
        )


def check(answer: HttpAnswer, what: str, retry_after_s: float | None) -> None:
    """Raise the error class the status stands for; return on 2xx."""
    verdict, reason = classify_status(answer.status)
    if verdict is Verdict.OK:
        return
    detail = f"{what} answered {answer.status}"
    category = error_category(answer.body)
    if category:
        detail += f" ({category})"
    if verdict is Verdict.RETRY:
        raise RetryableSinkError(reason or "retry", detail, retry_after_s)
    raise PermanentSinkError(reason or "permanent", detail)
