"""``paystream demo``: send a realistic, signed storyline of Stripe events to a running ingest.

Each event is signed with the first secret of ``STRIPE_WEBHOOK_SECRETS`` exactly as Stripe
signs it, POSTed to ``/webhooks/stripe``, and the answer printed. One event is sent twice,
as Stripe's retries do, to show that dedup keeps it to one effect.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from typing import Any

import aiohttp

from paystream.command_help import command_parser
from paystream.errors import SettingsError
from paystream.runtime.running_stack import load_beside_running_stack
from paystream.settings import CommonSettings, Environment, IngestPort, WebhookSecrets
from paystream.signing import sign_header
from paystream.storyline import storyline, two_subscriptions


class DemoSettings(CommonSettings, IngestPort, WebhookSecrets):
    """What the demo needs: where ingest listens and the secret to sign with."""

    #: a local tool (beside ``paystream up``): development unless told otherwise
    paystream_env: Environment = "development"


async def send_storyline(
    url: str, secret: str, events: list[dict[str, Any]], resend: int | None = 1
) -> list[tuple[int, str, str]]:
    """POST every event in order (and ``events[resend]`` twice); return (status, type, id)."""
    order = list(events)
    if resend is not None and events:
        order.insert(resend + 1, events[resend])
    results: list[tuple[int, str, str]] = []
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for event in order:
            body = json.dumps(event).encode()
            headers = {
                "Content-Type": "application/json",
                "Stripe-Signature": sign_header(body, secret),
            }
            async with session.post(url, data=body, headers=headers) as response:
                results.append((response.status, event["type"], event["id"]))
    return results


def main(argv: list[str]) -> int:
    parser = command_parser("demo")
    parser.add_argument(
        "--url", help="ingest base URL (default http://127.0.0.1:$PAYSTREAM_INGEST_PORT)"
    )
    parser.add_argument(
        "--customer", help="Stripe customer id to use (default: a new cus_demo_...)"
    )
    args = parser.parse_args(argv)
    # Beside a running `paystream up`, its secret and port are the defaults.
    settings = load_beside_running_stack(DemoSettings)
    if settings.stripe_webhook_secrets is None:
        raise SettingsError(
            "invalid setting STRIPE_WEBHOOK_SECRETS: not set and no running `paystream up` "
            "found in PAYSTREAM_DATA_DIR (`paystream up` prints it)"
        )
    secret = settings.stripe_webhook_secrets.get_secret_value().split(",")[0].strip()
    base = args.url or f"http://127.0.0.1:{settings.paystream_ingest_port}"
    customer = args.customer or f"cus_demo{secrets.token_hex(6)}"
    # One second apart, ending now: the sync latency the metrics show is the real one.
    live = settings.stripe_mode == "live"
    now = int(time.time())
    # the second customer has a plan and an add-on; its add-on is canceled, it stays active
    stories = {
        customer: (storyline(customer, now - 12, step=1, livemode=live), 1),
        f"{customer}_addon": (
            two_subscriptions(f"{customer}_addon", now - 5, step=1, livemode=live),
            None,
        ),
    }
    url = base.rstrip("/") + "/webhooks/stripe"
    results: list[tuple[int, str, str]] = []
    try:
        for who, (events, resend) in stories.items():
            print(f"customer {who}")
            answers = asyncio.run(send_storyline(url, secret, events, resend))
            for status, event_type, event_id in answers:
                print(f"{status}  {event_type:32} {event_id}")
            results += answers
    except aiohttp.ClientError as exc:
        print(
            f"paystream demo: cannot reach ingest at {base} ({type(exc).__name__})", file=sys.stderr
        )
        return 1
    failed = [r for r in results if r[0] != 200]
    print(f"{len(results) - len(failed)}/{len(results)} accepted")
    return 1 if failed else 0
