"""The walking skeleton: one real Stripe event, end to end, on the real broker.

A real ``checkout.session.completed`` body from the fixtures is signed with the endpoint
secret, POSTed to ``paystream ingest``, published to Kafka, folded by ``paystream worker``
into the customer's billing state, turned into a CRM command, and delivered by
``paystream sinks crm`` to the local HubSpot stand-in.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.hubspot import HubSpotStandin
from paystream.runtime.broker import free_port
from paystream.settings import CommonSettings
from paystream.signing import sign_header
from tests.conftest import LIVE_ENV
from tests.e2e.conftest import Service, data_dir, http_ok, wait_until


def post_webhook(url: str, body: bytes, secret: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 (loopback)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": sign_header(body, secret)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_one_real_stripe_event_reaches_the_crm(
    pipeline_settings: CommonSettings,
    broker_env: Callable[..., dict[str, str]],
    services: Callable[..., Service],
    stripe_fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    body = (stripe_fixtures_dir / "checkout_session_completed.json").read_bytes()
    event = json.loads(body)
    customer = event["data"]["object"]["customer"]
    secret = "whsec_" + secrets.token_hex(16)
    token = secrets.token_urlsafe(16)
    ingest_port = free_port()

    with HubSpotStandin(token=token) as hubspot:
        env = broker_env(
            pipeline_settings.topic_prefix,
            # the fixture is a live-mode event; the mode only decides what is accepted
            **(LIVE_ENV if event["livemode"] else {"STRIPE_MODE": "test"}),
            STRIPE_WEBHOOK_SECRETS=secret,
            PAYSTREAM_INGEST_PORT=str(ingest_port),
            PAYSTREAM_WORKER_PORT=str(free_port()),
            PAYSTREAM_DATA_DIR=data_dir(tmp_path),
            PAYSTREAM_SINK_WRITES="enabled",
            HUBSPOT_API_BASE=hubspot.url,
            HUBSPOT_ACCESS_TOKEN=token,
            PAYSTREAM_SINKS_METRICS_PORT="0",
        )
        ingest = services("ingest", ["ingest"], env)
        worker = services("worker", ["worker"], env)
        sinks = services("sinks", ["sinks", "crm"], env)
        running = [ingest, worker, sinks]
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{ingest_port}/readyz"), 30, "ingest ready", running
        )

        status, answer = post_webhook(
            f"http://127.0.0.1:{ingest_port}/webhooks/stripe", body, secret
        )
        assert (status, answer) == (200, {"received": True, "id": event["id"]})

        contact = wait_until(
            lambda: hubspot.contact_by("stripe_customer_id", customer),
            90,
            f"contact {customer} in the HubSpot stand-in",
            running,
        )
        assert isinstance(contact, dict)
        properties = contact["properties"]
        assert properties["billing_state"] == "onboarding_pending"
        assert properties["stripe_customer_id"] == customer
        upserts = hubspot.requests_to("/batch/upsert")
        assert upserts, "the CRM sink never called batch upsert"
        assert upserts[-1].body["inputs"][0]["idProperty"] == "stripe_customer_id"
