"""Decoded topic records → lifecycle ``Event`` (pure)."""

from __future__ import annotations

from typing import Any

import orjson

from processors.errors import MalformedEventError
from processors.lifecycle import Event, customer_id_of


def from_stripe_envelope(envelope: dict[str, Any]) -> Event:
    """A ``stripe_event`` record (raw = Stripe's JSON body) as an ``Event``."""
    try:
        body = orjson.loads(envelope["raw"])
        data = body["data"]
        obj = data["object"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise MalformedEventError("stripe event without a readable data.object") from None
    if not isinstance(obj, dict):
        raise MalformedEventError("stripe event data.object is not an object")
    previous = data.get("previous_attributes") if isinstance(data, dict) else None
    return Event(
        event_id=envelope["event_id"],
        type=envelope["type"],
        created=int(envelope["created"]),
        customer_id=customer_id_of(envelope["type"], obj, envelope.get("customer_id")),
        source="stripe",
        object=obj,
        previous_attributes=previous if isinstance(previous, dict) else None,
        livemode=bool(envelope.get("livemode")),
        received_at_ms=int(envelope.get("received_at_ms") or 0),
        correlation_id=str(envelope.get("correlation_id") or ""),
        delivered_by=str(envelope.get("source") or "webhook"),
        api_version=envelope.get("api_version") or None,
    )


def from_app_event(record: dict[str, Any]) -> Event:
    """An ``app_event`` record as an ``Event``."""
    return Event(
        event_id=record["event_id"],
        type=record["type"],
        created=int(record["created"]),
        customer_id=record.get("customer_id") or None,
        source="app",
        user_id=record.get("user_id"),
        received_at_ms=int(record.get("received_at_ms") or 0),
        correlation_id=str(record.get("correlation_id") or ""),
    )
