"""Webhook signature verification (pure): Stripe's scheme, several secrets, tolerance.

The signature covers the raw request bytes: ``v1`` is the hex HMAC-SHA256 of
``"{t}.{body}"`` with the endpoint secret (Stripe's documented scheme, read the way
``stripe.WebhookSignature`` reads the header: the first ``t``, every ``v1``); each ``v1`` is
compared in constant time and nothing is parsed before one matches. Any of the configured
secrets may match, so an endpoint secret can be rotated without downtime. The timestamp must
lie within the tolerance of ``now`` in both directions (too old: a replay; too new: a
signature cannot come from the future).

Hand-written rather than ``stripe.WebhookSignature.verify_header``, because that decodes,
formats and re-encodes the whole body for every secret, on every request (docs/ingest.md
has the cost). The unit tests use the stripe library as an oracle.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from functools import lru_cache

from ingest.errors import InvalidSignature
from paystream.vocabulary import APP_SIGNATURE_HEADER

#: Header of Stripe webhooks and of first-party app events (same ``t=...,v1=...`` scheme).
STRIPE_HEADER = "Stripe-Signature"
APP_HEADER = APP_SIGNATURE_HEADER


def _timestamp_and_signatures(header: str) -> tuple[int, list[str]]:
    """The first ``t=`` value and every ``v1=`` value; ``ValueError`` without a timestamp."""
    timestamp: int | None = None
    signatures = []
    for item in header.split(","):
        name, _, value = item.partition("=")
        if name == "t" and timestamp is None:
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None:
        raise ValueError("no timestamp")
    return timestamp, signatures


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    tolerance_s: int,
    now: float | None = None,
) -> str:
    """Return the body as text when ``header`` signs ``payload`` with one of ``secrets``
    (``verify_signed`` without the signature's time)."""
    return verify_signed(payload, header, secrets, tolerance_s, now)[0]


def verify_signed(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    tolerance_s: int,
    now: float | None = None,
) -> tuple[str, int]:
    """Return the body as text and the signature's ``t`` when ``header`` signs ``payload``
    with one of ``secrets``.

    Raise ``InvalidSignature`` otherwise: no header, no matching ``v1``, a timestamp outside
    ``tolerance_s`` of ``now``, or a body that is not UTF-8 (Stripe signs UTF-8 JSON).
    """
    if not header or not secrets:
        raise InvalidSignature("no signature")
    if not header.isascii():
        # The grammar is ASCII (``t=<digits>,v1=<hex>``); anything else can only fail, and
        # ``hmac.compare_digest`` raises TypeError on non-ASCII text.
        raise InvalidSignature("signature header is not ASCII")
    try:
        timestamp, signatures = _timestamp_and_signatures(header)
    except ValueError:  # no t=, or one that is not an integer
        raise InvalidSignature("no timestamp") from None
    prefix = b"%d." % timestamp
    for secret in secrets:
        mac = _keyed(secret).copy()
        mac.update(prefix)
        mac.update(payload)
        expected = mac.hexdigest()
        for candidate in signatures:
            if hmac.compare_digest(expected, candidate):
                return _accepted(payload, timestamp, tolerance_s, now)
    raise InvalidSignature("no matching signature")


@lru_cache(maxsize=64)
def _keyed(secret: str) -> hmac.HMAC:
    """The HMAC-SHA256 state keyed with ``secret``, made once per secret: each request
    copies it instead of keying a new one (OpenSSL looks the digest up and pads the key
    for every one-shot ``hmac.digest``)."""
    return hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)


def _accepted(
    payload: bytes, timestamp: int, tolerance_s: int, now: float | None
) -> tuple[str, int]:
    """A matching signature: the timestamp must lie within the tolerance, the body be UTF-8."""
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise InvalidSignature("timestamp too old")
    if timestamp > current + tolerance_s:
        raise InvalidSignature("timestamp in the future")
    try:
        return payload.decode("utf-8"), timestamp
    except UnicodeDecodeError:
        raise InvalidSignature("body is not UTF-8") from None
