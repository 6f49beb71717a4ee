"""Webhook signature verification (pure): stripe's own check, several secrets, tolerance.

The signature covers the raw request bytes (``"{t}.{body}"``, HMAC-SHA256, compared in
constant time by ``stripe.WebhookSignature``); nothing is parsed before it holds. Any of
the configured secrets may match, so an endpoint secret can be rotated without downtime.
The HMAC is stripe's check; the timestamp must lie within the tolerance of ``now`` in
both directions (too old: a replay; too new: a signature cannot come from the future).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from stripe import SignatureVerificationError, WebhookSignature

from ingest.errors import InvalidSignature

#: Header of Stripe webhooks and of first-party app events (same ``t=...,v1=...`` scheme).
STRIPE_HEADER = "Stripe-Signature"
APP_HEADER = "Paystream-Signature"


def _timestamp(header: str) -> int:
    """The ``t=`` value the way stripe's parser reads it (the first ``t`` entry)."""
    for item in header.split(","):
        parts = item.split("=", 2)
        if parts[0] == "t":
            return int(parts[1])
    raise ValueError("no timestamp")


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    tolerance_s: int,
    now: float | None = None,
) -> str:
    """Return the body as text when ``header`` signs ``payload`` with one of ``secrets``.

    Raise ``InvalidSignature`` otherwise: no header, no matching ``v1``, a timestamp outside
    ``tolerance_s`` of ``now``, or a body that is not UTF-8 (Stripe signs UTF-8 JSON).
    """
    if not header or not secrets:
        raise InvalidSignature("no signature")
    if not header.isascii():
        # The grammar is ASCII (``t=<digits>,v1=<hex>``); anything else can only fail, and
        # stripe's ``hmac.compare_digest`` raises TypeError on non-ASCII text (was a 500).
        raise InvalidSignature("signature header is not ASCII")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("body is not UTF-8") from None
    for secret in secrets:
        try:
            # stripe's check of the HMAC (constant time, every v1); the timestamp window is
            # checked below against ``now`` so that it is pure and covers both directions.
            WebhookSignature.verify_header(text, header, secret, None)
        except SignatureVerificationError:
            continue
        except (ValueError, OverflowError, TypeError):  # a pathological t= or v1= value
            break
        current = time.time() if now is None else now
        try:
            timestamp = _timestamp(header)
        except (ValueError, IndexError):
            break
        if timestamp < current - tolerance_s:
            raise InvalidSignature("timestamp too old")
        if timestamp > current + tolerance_s:
            raise InvalidSignature("timestamp in the future")
        return text
    raise InvalidSignature("no matching signature")
