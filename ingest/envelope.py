"""From verified text to the record published to Kafka (pure: plain data in, plain data out).

Checks the event shape (400), then the mode (403), picks the Kafka key (SPEC §3: the Stripe
customer id, else the event id) and builds the Avro record of ``schemas/stripe_event.avsc``
or ``schemas/app_event.avsc``. The JSON is parsed exactly once, here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ingest.errors import MalformedEvent, ModeMismatch
from paystream import vocabulary
from paystream.stripe_objects import stripe_customer_id, stripe_event_key, stripe_token
from schemas.codec import APP_EVENT, STRIPE_EVENT

_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
_LONG_MAX = 2**63 - 1

APP_EVENT_TYPES = frozenset(vocabulary.APP_EVENT_TYPES)
#: How far an app event's ``created`` may lie before and after its signature's ``t``
#: (SPEC §3): an app event cannot pin a state into the future, nor come back from weeks ago.
APP_CREATED_BEFORE_S = 7 * 24 * 3600
APP_CREATED_AFTER_S = 5 * 60


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One verified event, ready to publish: Avro schema name, record and Kafka key."""

    schema: str
    key: str
    event_id: str
    type: str
    customer_id: str | None
    record: dict[str, Any]


def _unix(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _LONG_MAX:
        return value
    return None


def _load_object(text: str) -> dict[str, Any]:
    try:
        data = orjson.loads(text)
    except (ValueError, RecursionError):
        raise MalformedEvent("not JSON") from None
    if not isinstance(data, dict):
        raise MalformedEvent("not a JSON object")
    return data


def parse_stripe_event(
    text: str,
    *,
    live: bool,
    received_at_ms: int,
    correlation_id: str,
    source: str = "webhook",
) -> Outgoing:
    """Check a verified Stripe event body and build its ``stripe.events`` envelope.

    Raise ``MalformedEvent`` when it is not a Stripe event and ``ModeMismatch`` when its
    ``livemode`` is not ``live``.
    """
    event = _load_object(text)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id = stripe_token(event.get("id"))
    event_type = stripe_token(event.get("type"))
    created = _unix(event.get("created"))
    livemode = event.get("livemode")
    api_version = event.get("api_version")
    if (
        event.get("object") != "event"
        or event_id is None
        or event_type is None
        or created is None
        or not isinstance(obj, dict)
        or not isinstance(livemode, bool)
        or (api_version is not None and stripe_token(api_version) is None)
    ):
        raise MalformedEvent("not a Stripe event")
    if livemode is not live:
        raise ModeMismatch("livemode differs from STRIPE_MODE")
    customer_id = stripe_customer_id(obj)
    record = {
        "event_id": event_id,
        "type": event_type,
        "created": created,
        "livemode": livemode,
        "api_version": api_version,
        "customer_id": customer_id,
        "received_at_ms": received_at_ms,
        "correlation_id": correlation_id,
        "source": source,
        "raw": text,
    }
    return Outgoing(
        STRIPE_EVENT,
        stripe_event_key(customer_id, event_id),
        event_id,
        event_type,
        customer_id,
        record,
    )


def app_created_in_window(created: int, signed_at: int) -> bool:
    """True when ``created`` lies in [t - 7 days, t + 5 minutes] of the signature's ``t``."""
    return signed_at - APP_CREATED_BEFORE_S <= created <= signed_at + APP_CREATED_AFTER_S


def parse_app_event(
    text: str, *, received_at_ms: int, correlation_id: str, signed_at: int
) -> Outgoing:
    """Check a verified first-party event body and build its ``app.events`` record;
    ``signed_at`` is the signature's ``t``, which bounds ``created``."""
    event = _load_object(text)
    event_id = stripe_token(event.get("id"))
    event_type = stripe_token(event.get("type"))
    created = _unix(event.get("created"))
    customer_id = stripe_token(event.get("stripe_customer_id"))
    user_id = event.get("user_id")
    if (
        event_id is None
        or event_type not in APP_EVENT_TYPES
        or created is None
        or not app_created_in_window(created, signed_at)
        or customer_id is None
        or not customer_id.startswith("cus_")
        or (user_id is not None and stripe_token(user_id) is None)
        or (event_type == "customer.linked" and user_id is None)
    ):
        raise MalformedEvent("not a paystream app event")
    record = {
        "event_id": event_id,
        "type": event_type,
        "created": created,
        "customer_id": customer_id,
        "user_id": user_id,
        "received_at_ms": received_at_ms,
        "correlation_id": correlation_id,
    }
    return Outgoing(APP_EVENT, customer_id, event_id, event_type, customer_id, record)


def correlation_id(
    header: str | None, generate: Callable[[], str] = lambda: uuid.uuid4().hex
) -> str:
    """The request's ``X-Request-Id`` when it is a sane token, else a fresh one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return generate()
