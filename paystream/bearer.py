"""The one bearer-token check every HTTP endpoint of paystream uses (constant time)."""

from __future__ import annotations

import hmac

SCHEME = "Bearer"


def bearer_matches(header: str | None, token: str | None) -> bool:
    """True when ``Authorization`` is ``Bearer <token>``; never true without a token."""
    if not token:
        return False
    scheme, _, given = (header or "").partition(" ")
    return scheme == SCHEME and hmac.compare_digest(given.encode(), token.encode())
