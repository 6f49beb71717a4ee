"""``paystream crm-setup``: create the custom contact properties the CRM sink writes.

Idempotent, but not credulous: a group that already exists (HubSpot answers 409) is left
as is; a property that already exists is read back (``GET
/crm/v3/properties/contacts/{name}``, "Properties" API,
https://developers.hubspot.com/docs/api-reference/latest/crm/properties/guide) and must
match what the sink writes — type, unique values, and every billing-state option — or the
command fails naming each difference (exit 1) instead of accepting any 409: a
``stripe_customer_id`` without unique values would let two contacts claim one customer.
``--dry-run`` prints the requests without sending them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from paystream.command_help import command_parser
from paystream.settings import load_settings
from paystream.vocabulary import BILLING_STATES
from sinks.errors import SinkError
from sinks.hubspot import GROUPS_PATH, PROPERTIES_PATH, HubSpotClient
from sinks.settings import SinkSettings

GROUP = "paystream"


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


def main(argv: list[str]) -> int:
    parser = command_parser("crm-setup")
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
            outcome = client.create(path, body, f"HubSpot {what}")
            if outcome == "exists" and path == PROPERTIES_PATH:
                differences = property_differences(body, client.get_property(body["name"]))
                if differences:
                    for difference in differences:
                        print(f"paystream crm-setup: {difference}", file=sys.stderr)
                    print(
                        f"paystream crm-setup: {what} exists in HubSpot but differs; fix or "
                        "delete it in HubSpot (Settings > Properties), then run again",
                        file=sys.stderr,
                    )
                    return 1
                outcome = "exists, matches"
            print(f"{what}: {outcome}")
        except SinkError as exc:
            print(f"paystream crm-setup: {what} failed ({exc})", file=sys.stderr)
            return 1
    client.close()
    return 0
