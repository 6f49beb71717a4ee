"""POST /events/app (first-party events) and the probes /healthz, /readyz, /metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.settings import IngestSettings
from paystream.signing import sign_header
from schemas.codec import default_codec
from tests.integration.ingest.conftest import (
    APP_SECRET,
    SECRET,
    ClientFactory,
    encode,
    ingest_settings_for,
    signed,
)
from tests.kafka_helpers import consume

pytestmark = pytest.mark.broker

APP_URL = "/events/app"


def app_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"app_{uuid.uuid4().hex[:16]}",
        "type": "customer.linked",
        "created": int(time.time()),
        "stripe_customer_id": f"cus_{uuid.uuid4().hex[:14]}",
        "user_id": "user_8841",
    }
    event.update(changes)
    return event


def app_signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Paystream-Signature": sign_header(body, secret), "X-Request-Id": "app-req-1"}


async def test_app_event_is_published_to_app_events(
    ingest_client: ClientFactory, ingest_settings: IngestSettings
) -> None:
    client = await ingest_client()
    event = app_event()
    body = encode(event)
    resp = await client.post(APP_URL, data=body, headers=app_signed(body))
    assert (resp.status, await resp.json()) == (200, {"received": True, "id": event["id"]})
    [msg] = consume(ingest_settings, ingest_settings.topics.app_events, until=lambda m: len(m) >= 1)
    record = default_codec().decode_as("app_event", msg.value())
    assert msg.key() == event["stripe_customer_id"].encode()
    assert dict(msg.headers() or [])["x-request-id"] == b"app-req-1"
    assert {k: record[k] for k in ("event_id", "type", "created", "customer_id", "user_id")} == {
        "event_id": event["id"],
        "type": "customer.linked",
        "created": event["created"],
        "customer_id": event["stripe_customer_id"],
        "user_id": "user_8841",
    }
    assert record["correlation_id"] == "app-req-1"


@pytest.mark.parametrize(
    ("body_changes", "signing", "status", "error"),
    [
        ({}, "stripe_secret", 401, "invalid_signature"),  # each endpoint has its own secrets
        ({}, "stripe_header", 401, "invalid_signature"),
        ({}, "none", 401, "invalid_signature"),
        ({"type": "invoice.paid"}, "app", 400, "malformed_event"),
        ({"stripe_customer_id": "acct_123"}, "app", 400, "malformed_event"),
        ({"user_id": None}, "app", 400, "malformed_event"),  # customer.linked needs the user
        ({"created": "now"}, "app", 400, "malformed_event"),
        # outside [t - 7 days, t + 5 min] of the signature's t (signed now)
        ({"created": int(time.time()) + 365 * 86_400}, "app", 400, "malformed_event"),
        ({"created": int(time.time()) - 8 * 86_400}, "app", 400, "malformed_event"),
    ],
)
async def test_app_event_refusals(
    ingest_client: ClientFactory,
    body_changes: dict[str, Any],
    signing: str,
    status: int,
    error: str,
) -> None:
    client = await ingest_client()
    body = encode(app_event(**body_changes))
    headers = {
        "stripe_secret": app_signed(body, SECRET),
        "stripe_header": signed(body, APP_SECRET),
        "none": {},
        "app": app_signed(body),
    }[signing]
    resp = await client.post(APP_URL, data=body, headers=headers)
    assert (resp.status, await resp.json()) == (status, {"error": error})


async def test_app_endpoint_is_off_without_app_secrets(
    ingest_client: ClientFactory, ingest_settings: IngestSettings
) -> None:
    client = await ingest_client(ingest_settings_for(ingest_settings, paystream_app_secrets=""))
    body = encode(app_event())
    resp = await client.post(APP_URL, data=body, headers=app_signed(body))
    assert resp.status == 404


async def test_probes(ingest_client: ClientFactory) -> None:
    client = await ingest_client()
    health = await client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"alive": True})
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (200, {"ready": True})


async def test_metrics_count_requests_by_status_and_reason(
    ingest_client: ClientFactory, make_event: Callable[..., dict[str, Any]]
) -> None:
    client = await ingest_client()
    body = encode(make_event())
    await client.post("/webhooks/stripe", data=body, headers=signed(body))
    await client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": "t=1,v1=0"})
    await client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": "t=1,v1=0"})
    resp = await client.get("/metrics")
    assert resp.status == 200
    families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    requests = {
        (s.labels["status"], s.labels["reason"]): s.value
        for s in families["paystream_webhook_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("200", "ok")] == 1
    assert requests[("401", "invalid_signature")] == 2
    assert requests[("503", "unavailable")] == 0
    count = [
        s.value
        for s in families["paystream_webhook_duration_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert count == [3]


async def test_request_id_is_generated_when_absent_or_unusable(
    ingest_client: ClientFactory,
    ingest_settings: IngestSettings,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    client = await ingest_client()
    ids = []
    for request_id in (None, "has spaces\tand tabs", "x" * 500):
        body = encode(make_event())
        extra = {} if request_id is None else {"X-Request-Id": request_id}
        resp = await client.post("/webhooks/stripe", data=body, headers=signed(body, **extra))
        assert resp.status == 200
        ids.append(resp.headers["X-Request-Id"])
        assert ids[-1] != request_id
    assert len(set(ids)) == 3
    messages = consume(
        ingest_settings, ingest_settings.topics.stripe_events, until=lambda m: len(m) >= 3
    )
    carried = {dict(m.headers() or [])["x-request-id"].decode() for m in messages}
    in_records = {default_codec().decode(m.value())[1]["correlation_id"] for m in messages}
    assert carried == in_records == set(ids)
