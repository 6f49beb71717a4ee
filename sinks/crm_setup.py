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

from paystream.command_help import command_parser
from paystream.crm_properties import (
    GROUP,
    contact_properties,
    property_differences,
    property_group,
)
from paystream.settings import load_settings
from sinks.errors import SinkError
from sinks.hubspot import GROUPS_PATH, PROPERTIES_PATH, HubSpotClient
from sinks.settings import SinkSettings


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
