"""Sessions, CSRF tokens and login throttling of the admin view: plain functions, no I/O.

Everything is derived from ``PAYSTREAM_ADMIN_TOKEN`` with HMAC-SHA256, so two admin
replicas accept each other's sessions without sharing any store, and changing the token
signs everybody out. A session cookie is ``<issued unix s>.<nonce>.<mac>``; the CSRF
token of a session is an HMAC of its nonce under a separate derived key, so it cannot be
guessed from the cookie and is the same on every page of the session (one per form would
need server-side state for no gain: the cookie is HttpOnly and SameSite=Strict already).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

SESSION_COOKIE = "paystream_admin"
CSRF_FIELD = "csrf_token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _derive(token: str, purpose: str) -> bytes:
    return hmac.new(token.encode(), f"paystream-admin:{purpose}".encode(), hashlib.sha256).digest()


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison of a submitted token with the configured one."""
    return hmac.compare_digest(given.encode(), token.encode())


@dataclass(frozen=True)
class Sessions:
    """Issues and checks session cookies and their CSRF tokens."""

    token: str
    max_age_s: int = 12 * 3600

    def issue(self, now_s: int, nonce: str | None = None) -> str:
        nonce = nonce or secrets.token_urlsafe(18)
        body = f"{int(now_s)}.{nonce}"
        mac = _b64(hmac.new(_derive(self.token, "session"), body.encode(), "sha256").digest())
        return f"{body}.{mac}"

    def nonce(self, cookie: str | None, now_s: int) -> str | None:
        """The session's nonce when the cookie is genuine and not expired, else None."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        issued, nonce, mac = parts
        body = f"{issued}.{nonce}"
        expected = _b64(hmac.new(_derive(self.token, "session"), body.encode(), "sha256").digest())
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        if not 0 <= now_s - int(issued) <= self.max_age_s:
            return None
        return nonce

    def csrf_token(self, nonce: str) -> str:
        return _b64(hmac.new(_derive(self.token, "csrf"), nonce.encode(), "sha256").digest())

    def csrf_ok(self, nonce: str | None, submitted: str | None) -> bool:
        if nonce is None or not submitted:
            return False
        return hmac.compare_digest(submitted.encode(), self.csrf_token(nonce).encode())


@dataclass
class LoginThrottle:
    """Failed logins allowed per client and in total within a sliding window.

    Hand-written because the limit is on *failures* per client address (a success does
    not count), which aiolimiter's leaky bucket for outgoing calls does not model.
    """

    per_client: int = 5
    overall: int = 50
    window_s: float = 60.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def _trim(self, q: deque[float], now: float) -> None:
        while q and now - q[0] >= self.window_s:
            q.popleft()

    def allowed(self, client: str, now: float) -> bool:
        """False while the client (or everybody together) failed too often recently."""
        self._trim(self._all, now)
        q = self._failures.get(client)
        if q is not None:
            self._trim(q, now)
            if not q:
                del self._failures[client]
                q = None
        return len(self._all) < self.overall and (q is None or len(q) < self.per_client)

    def failed(self, client: str, now: float) -> None:
        self._all.append(now)
        self._failures.setdefault(client, deque()).append(now)
        if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
            oldest = min(self._failures, key=lambda c: self._failures[c][-1])
            del self._failures[oldest]

    def retry_after(self, client: str, now: float) -> int:
        q = self._failures.get(client)
        first = q[0] if q else (self._all[0] if self._all else now)
        return max(1, int(self.window_s - (now - first)) + 1)


def cookie_secure(scheme: str, forwarded_proto: str | None, trust_forwarded: bool) -> bool:
    """Secure cookies whenever the browser talks https to us (or to our trusted proxy)."""
    if scheme == "https":
        return True
    if trust_forwarded and forwarded_proto:
        return forwarded_proto.split(",")[0].strip().lower() == "https"
    return False
