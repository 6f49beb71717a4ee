"""Product notifications (SPEC §6), the pure core of the app-webhook sink.

Which records become a notification: every ``customer.lifecycle`` change whose new state
differs from the previous one (a record that changes nothing is no notification). The
body is ``{"id", "type": "billing_state.changed", "created", "stripe_customer_id",
"user_id", "previous_state", "state"}``, a pure function of the change; ``created`` is the
cause event's (Unix seconds), so the same change always has the same bytes.

Idempotency: the id is ``bsc_`` and 32 hex digits of a hash of what identifies the change
(customer, cause event, from, to), never of a wall clock, so a redelivery from Kafka, a
replay after a crash, or the worker emitting the same change twice carry the same id and the
app deduplicates by it ("once"). Two changes of one customer are two ids.

The signature is Stripe's scheme (``paystream.signing``): ``Paystream-Signature:
t=<unix>,v1=<hex>``, HMAC-SHA256 of ``"{t}.{raw body}"`` under each secret of
``PAYSTREAM_APP_WEBHOOK_SECRET``; made at every attempt, so a retry minutes later is within
the receiver's tolerance. The TypeScript client's ``verifyPaystreamWebhook()`` checks it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from paystream.signing import sign_header
from paystream.vocabulary import (
    APP_SIGNATURE_HEADER,
    APP_WEBHOOK_SINK,
    BILLING_STATE_CHANGED,
    BILLING_STATES,
)
from sinks.errors import SinkError

#: the sink's name: the ``sink`` label, ``paystream sinks app_webhook``, its consumer group
SINK = APP_WEBHOOK_SINK
ID_PREFIX = "bsc_"


class InvalidChange(SinkError, ValueError):
    """Raised when a lifecycle change cannot be put into a notification (unknown state, no
    customer): the runner dead-letters it as ``invalid_command``."""


def is_notification(change: Mapping[str, Any]) -> bool:
    """Whether the record is a change the product hears of: its state moved."""
    return bool(change.get("new_state")) and change.get("previous_state") != change["new_state"]


def notification_id(change: Mapping[str, Any]) -> str:
    """``bsc_`` + 32 hex digits of customer, cause event, previous and new state."""
    parts = [
        str(change.get("customer_id") or ""),
        str(change.get("cause_event_id") or ""),
        change.get("previous_state") or "",
        str(change.get("new_state") or ""),
    ]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return ID_PREFIX + digest[:32]


def notification(change: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body for one change; InvalidChange when it cannot be one."""
    customer = change.get("customer_id")
    state = change.get("new_state")
    previous = change.get("previous_state") or None
    if not customer:
        raise InvalidChange("the change names no customer")
    if state not in BILLING_STATES or (previous is not None and previous not in BILLING_STATES):
        raise InvalidChange("the change names a state that is not a billing state")
    return {
        "id": notification_id(change),
        "type": BILLING_STATE_CHANGED,
        "created": int(change.get("event_created") or 0),
        "stripe_customer_id": str(customer),
        "user_id": change.get("user_id") or None,
        "previous_state": previous,
        "state": state,
    }


def encode(body: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent (compact JSON, ASCII)."""
    return json.dumps(body, separators=(",", ":")).encode()


def request_headers(payload: bytes, secrets: Sequence[str], now_s: float) -> dict[str, str]:
    """The headers of one attempt: JSON, and the signature with one ``v1`` per secret."""
    return {
        "Content-Type": "application/json",
        APP_SIGNATURE_HEADER: sign_header(payload, list(secrets), int(now_s)),
    }
