"""The one customer-id hash of every log line and metrics row, so they can be joined."""

from __future__ import annotations

import hashlib
import hmac


def customer_hash(customer_id: str | None, key: str = "") -> str:
    """Keyed, stable hash of a Stripe customer id (32 hex chars); '' when there is none.

    The key is ``PAYSTREAM_CUSTOMER_HASH_KEY``; keep it stable, since changing it splits a
    customer's history.
    """
    if not customer_id:
        return ""
    return hmac.new(key.encode(), customer_id.encode(), hashlib.sha256).hexdigest()[:32]
