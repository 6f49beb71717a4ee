"""What every stage reads the same way from Stripe's objects: ids and the Kafka key.

Ingest keys each event by it when publishing (SPEC §3: the Stripe customer id, else the
event id), and ``paystream doctor`` asks the worker about an event under the same key, so
the rule lives here, once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Stripe ids, types and API versions: printable ASCII, no spaces (also safe as Kafka keys).
_TOKEN = re.compile(r"[\x21-\x7e]{1,255}")


def stripe_token(value: object) -> str | None:
    """``value`` when it is a Stripe id, type or API version, else None."""
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def stripe_customer_id(obj: Mapping[str, Any]) -> str | None:
    """The customer an event's ``data.object`` belongs to, if it names one.

    A customer object is its own customer; other objects carry ``customer`` as an id or,
    when expanded, as an object with an ``id``.
    """
    if obj.get("object") == "customer":
        return stripe_token(obj.get("id"))
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    return stripe_token(customer)


def stripe_event_key(customer_id: str | None, event_id: str) -> str:
    """The Kafka key of a Stripe event: its customer, else its own id (SPEC §3)."""
    return customer_id or event_id
