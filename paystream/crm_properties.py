"""The CRM's custom contact properties the CRM sink writes, as ``crm-setup`` creates them.

Plain data, on the ground floor: ``crm-setup`` (sinks) creates them and ``paystream doctor``
checks that the account holds them, from this one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from paystream.vocabulary import BILLING_STATES

GROUP = "paystream"

# The names of the contact properties, spelt here once: the sink writes and reads them,
# crm-setup creates them, crm-repair and doctor compare them.
STRIPE_CUSTOMER_ID = "stripe_customer_id"
BILLING_STATE = "billing_state"
BILLING_STATE_CHANGED_AT = "billing_state_changed_at"
USER_ID = "paystream_user_id"
#: HubSpot's own property (one contact per email)
EMAIL = "email"


def normalised_email(email: str | None) -> str | None:
    """The email as HubSpot compares it (without regard to case); None when blank."""
    return email.strip().lower() or None if email else None


def property_group() -> dict[str, Any]:
    return {"name": GROUP, "label": "paystream billing", "displayOrder": -1}


def contact_properties() -> list[dict[str, Any]]:
    """The custom properties of SPEC §6 (``email`` is HubSpot's own)."""
    return [
        {
            "name": STRIPE_CUSTOMER_ID,
            "label": "Stripe customer ID",
            "type": "string",
            "fieldType": "text",
            "groupName": GROUP,
            "hasUniqueValue": True,
            "description": "The Stripe customer (cus_...) this contact pays as.",
        },
        {
            "name": BILLING_STATE,
            "label": "Billing state",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": GROUP,
            "description": "The customer's billing state, kept current by paystream.",
            "options": [
                {"label": s.replace("_", " ").capitalize(), "value": s, "displayOrder": i}
                for i, s in enumerate(BILLING_STATES)
            ],
        },
        {
            "name": BILLING_STATE_CHANGED_AT,
            "label": "Billing state changed at",
            "type": "datetime",
            "fieldType": "date",
            "groupName": GROUP,
            "description": "When the Stripe event that set the billing state happened.",
        },
        {
            "name": USER_ID,
            "label": "Product user ID",
            "type": "string",
            "fieldType": "text",
            "groupName": GROUP,
            "description": "The user id in our product linked to the Stripe customer.",
        },
    ]


def property_differences(wanted: Mapping[str, Any], held: Mapping[str, Any]) -> list[str]:
    """How an existing property differs from the one the sink needs (pure; [] when fine).

    Options HubSpot holds beyond ours are accepted (someone may have added one); a missing
    option is a difference, since the sink would be refused writing it.
    """
    name = wanted["name"]
    differences = []
    if held.get("type") != wanted["type"]:
        differences.append(f"{name}: type is {held.get('type')!r}, needs {wanted['type']!r}")
    if bool(held.get("hasUniqueValue")) != bool(wanted.get("hasUniqueValue")):
        differences.append(
            f"{name}: hasUniqueValue is {bool(held.get('hasUniqueValue'))}, "
            f"needs {bool(wanted.get('hasUniqueValue'))}"
        )
    have = {str(o.get("value")) for o in held.get("options") or [] if isinstance(o, dict)}
    missing = [o["value"] for o in wanted.get("options") or [] if o["value"] not in have]
    if missing:
        differences.append(f"{name}: options lack {', '.join(missing)}")
    return differences


def iso8601_ms(ms: int) -> str:
    """UTC ISO 8601 with milliseconds, as HubSpot datetime properties accept and return."""
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def parse_crm_datetime(value: object) -> int | None:
    """A HubSpot datetime property value (ISO 8601 or epoch milliseconds) as epoch ms."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return round(parsed.timestamp() * 1000)
