"""Produce Stripe-style signature headers (``t=<unix>,v1=<hex>``) — for demo, tests, bench.

Verification is the ingest service's job (``ingest.signature``, built on the stripe
library); this is the sender's side only, as Stripe computes it: HMAC-SHA256 of
``"{t}.{body}"`` with the endpoint secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(payload: bytes, secret: str, timestamp: int) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{payload}"``."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_header(payload: bytes, secrets: str | list[str], timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value with one ``v1`` entry per secret."""
    ts = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else secrets
    return ",".join([f"t={ts}"] + [f"v1={signature(payload, k, ts)}" for k in keys])
