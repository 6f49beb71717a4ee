"""Sessions, CSRF tokens and login throttling of the admin view: plain functions, no I/O.

Everything is derived from ``PAYSTREAM_ADMIN_TOKEN`` with HMAC-SHA256, so two admin
replicas accept each other's sessions without sharing any store, and changing the token
signs everybody out. A session cookie is ``<issued unix ms>.<nonce>.<mac>``; the CSRF
token of a session is an HMAC of its nonce under a separate derived key, so it cannot be
guessed from the cookie and is the same on every page of the session (one per form would
need server-side state for no gain: the cookie is HttpOnly and SameSite=Strict already).
Signing out is the one thing a MAC cannot undo: ``admin.sessions`` (see ``admin.sessions``)
names the sessions that ended, and every replica checks it after the MAC.
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

    def issue(self, now_s: float, nonce: str | None = None) -> str:
        nonce = nonce or secrets.token_urlsafe(18)
        body = f"{int(now_s * 1000)}.{nonce}"
        mac = _b64(hmac.new(_derive(self.token, "session"), body.encode(), "sha256").digest())
        return f"{body}.{mac}"

    def read(self, cookie: str | None, now_s: float) -> tuple[str, int] | None:
        """``(nonce, issued ms)`` when the cookie is genuine and not expired, else None."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 15:
            return None
        issued, nonce, mac = parts
        body = f"{issued}.{nonce}"
        expected = _b64(hmac.new(_derive(self.token, "session"), body.encode(), "sha256").digest())
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        if not 0 <= now_s * 1000 - int(issued) <= self.max_age_s * 1000:
            return None
        return nonce, int(issued)

    def nonce(self, cookie: str | None, now_s: float) -> str | None:
        """The session's nonce when the cookie is genuine and not expired, else None."""
        found = self.read(cookie, now_s)
        return found[0] if found is not None else None

    def csrf_token(self, nonce: str) -> str:
        return _b64(hmac.new(_derive(self.token, "csrf"), nonce.encode(), "sha256").digest())

    def csrf_ok(self, nonce: str | None, submitted: str | None) -> bool:
        if nonce is None or not submitted:
            return False
        return hmac.compare_digest(submitted.encode(), self.csrf_token(nonce).encode())


@dataclass
class LoginThrottle:
    """Failed logins allowed per client within a sliding window.

    Per client only: a limit on everybody together would let anyone lock the founder out
    (50 failures a minute from anywhere did). The client is the address a trusted proxy
    reports (``paystream.proxies.client_address``). Hand-written because the limit is on
    *failures* (a success does not count), which a leaky bucket for calls does not model.
    """

    per_client: int = 5
    window_s: float = 60.0
    max_clients: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _trim(self, q: deque[float], now: float) -> None:
        while q and now - q[0] >= self.window_s:
            q.popleft()

    def allowed(self, client: str, now: float) -> bool:
        """False while the client failed too often recently."""
        q = self._failures.get(client)
        if q is None:
            return True
        self._trim(q, now)
        if not q:
            del self._failures[client]
            return True
        return len(q) < self.per_client

    def failed(self, client: str, now: float) -> None:
        self._failures.setdefault(client, deque()).append(now)
        if len(self._failures) > self.max_clients:  # bounded memory under a spray of addresses
            oldest = min(self._failures, key=lambda c: self._failures[c][-1])
            del self._failures[oldest]

    def retry_after(self, client: str, now: float) -> int:
        q = self._failures.get(client)
        first = q[0] if q else now
        return max(1, int(self.window_s - (now - first)) + 1)
