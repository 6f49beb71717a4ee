"""``paystream crm-setup``: create the custom contact properties the CRM sink writes.

Idempotent: a property or group that already exists (HubSpot answers 409) is left as is.
``--dry-run`` prints the requests without sending them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from paystream.settings import load_settings
from sinks.errors import SinkError
from sinks.hubspot import GROUPS_PATH, PROPERTIES_PATH, HubSpotClient
from sinks.settings import SinkSettings

GROUP = "paystream"
BILLING_STATES = (
    "onboarding_pending",
    "active",
    "payment_failed",
    "paused",
    "refunded",
    "canceled",
)


def property_group() -> dict[str, Any]:
    return {"name": GROUP, "label": "paystream billing", "displayOrder": -1}


def contact_properties() -> list[dict[str, Any]]:
    """The custom properties of SPEC §6 (``email`` is HubSpot's own)."""
    return [
        {
            "name": "stripe_customer_id",
            "label": "Stripe customer ID",
            "type": "string",
            "fieldType": "text",
            "groupName": GROUP,
            "hasUniqueValue": True,
            "description": "The Stripe customer (cus_...) this contact pays as.",
        },
        {
            "name": "billing_state",
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
            "name": "billing_state_changed_at",
            "label": "Billing state changed at",
            "type": "datetime",
            "fieldType": "date",
            "groupName": GROUP,
            "description": "When the Stripe event that set the billing state happened.",
        },
        {
            "name": "paystream_user_id",
            "label": "Product user ID",
            "type": "string",
            "fieldType": "text",
            "groupName": GROUP,
            "description": "The user id in our product linked to the Stripe customer.",
        },
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="paystream crm-setup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dry-run", action="store_true", help="print the requests, send nothing")
    args = parser.parse_args(argv)
    requests = [(GROUPS_PATH, property_group(), f"group {GROUP}")] + [
        (PROPERTIES_PATH, p, f"property {p['name']}") for p in contact_properties()
    ]
    if args.dry_run:
        for path, body, _ in requests:
            print(f"POST {path} {json.dumps(body)}")
        return 0
    settings = load_settings(SinkSettings)
    client = HubSpotClient(
        settings.hubspot_api_base, settings.require_hubspot(), settings.paystream_sink_timeout_s
    )
    for path, body, what in requests:
        try:
            print(f"{what}: {client.create(path, body, f'HubSpot {what}')}")
        except SinkError as exc:
            print(f"paystream crm-setup: {what} failed ({exc})", file=sys.stderr)
            return 1
    return 0
