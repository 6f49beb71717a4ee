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
from dataclasses import dataclass

from paystream.throttle import FailureThrottle, Policy

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


def login_throttle(per_minute: int) -> FailureThrottle:
    """Failed sign-ins allowed per client: ``per_minute`` at once, then ``per_minute`` a minute.

    Per client only (``paystream.throttle``, the same buckets as the customer APIs'): a limit
    on everybody together would let anyone lock the founder out. The client is the address
    a trusted proxy reports (``paystream.proxies.client_address``).
    """
    return FailureThrottle(Policy(burst=per_minute, per_s=per_minute / 60))
