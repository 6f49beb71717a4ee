"""The ingest application factory: routes, app state (typed keys) and the producer's life."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from functools import lru_cache, partial
from typing import Any

import structlog
from aiohttp import web

from ingest import envelope, signature
from ingest.customers import CustomerApi, route
from ingest.handlers import (
    BodyGate,
    Endpoint,
    counters_by_reason,
    endpoint_handler,
    healthz,
    metrics_handler,
    readyz_handler,
)
from ingest.publisher import Publisher
from ingest.records import RecordEncoders
from ingest.requestlog import RequestIds, RequestLog
from ingest.settings import IngestSettings
from paystream.hashing import customer_hash
from paystream.metrics import PaystreamMetrics
from schemas.codec import APP_EVENT, STRIPE_EVENT, default_codec

SETTINGS = web.AppKey("settings", IngestSettings)
METRICS = web.AppKey("metrics", PaystreamMetrics)
PUBLISHER = web.AppKey("publisher", Publisher)
STRIPE_ENDPOINT = web.AppKey("stripe_endpoint", Endpoint)
APP_ENDPOINT = web.AppKey("app_endpoint", Endpoint)

#: librdkafka room above the body limit for the envelope's other fields and headers.
ENVELOPE_OVERHEAD_BYTES = 64 * 1024
#: How long start-up waits for the broker's first metadata answer (not fatal when missed).
WARM_UP_TIMEOUT_S = 2.0


def producer_config(settings: IngestSettings) -> dict[str, Any]:
    """Durable producer settings (acks=all, idempotent) sized for the body limit."""
    return settings.producer_config(
        **{
            "client.id": "paystream-ingest",
            "linger.ms": settings.paystream_ingest_linger_ms,
            "message.max.bytes": settings.paystream_ingest_max_body_bytes + ENVELOPE_OVERHEAD_BYTES,
            # What waits while the broker is away; full → 503 within the deadline.
            "queue.buffering.max.kbytes": 256 * 1024,
        }
    )


def customer_hasher(key: str) -> Callable[[str | None], str]:
    """The log line's customer hash (an HMAC), remembered for the last 4,096 customers:
    Stripe sends several events per customer in a burst (invoice, payment, charge)."""
    return lru_cache(maxsize=4096)(partial(customer_hash, key=key))


def create_app(settings: IngestSettings) -> web.Application:
    """Build the service; the producer starts with the app and is flushed when it stops."""
    app = web.Application(client_max_size=settings.paystream_ingest_max_body_bytes)
    metrics = PaystreamMetrics()
    publisher = Publisher(producer_config(settings), settings.paystream_ingest_publish_timeout_s)
    topics = settings.topics
    common: dict[str, Any] = {
        "tolerance_s": settings.stripe_signature_tolerance_s,
        "max_body_bytes": settings.paystream_ingest_max_body_bytes,
        "publisher": publisher,
        "records": RecordEncoders(default_codec(), (STRIPE_EVENT, APP_EVENT)),
        "retry_after": str(settings.paystream_ingest_retry_after_s),
        "request_ids": RequestIds(),
        "hash_customer": customer_hasher(settings.paystream_customer_hash_key.get_secret_value()),
        "log": RequestLog("ingest", enabled=settings.paystream_log_level in ("debug", "info")),
        "body_gate": BodyGate(
            settings.paystream_ingest_body_timeout_s, settings.paystream_ingest_max_slow_bodies
        ),
    }
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[PUBLISHER] = publisher
    app[STRIPE_ENDPOINT] = Endpoint(
        name="webhook",
        header=signature.STRIPE_HEADER,
        secrets=settings.webhook_secrets,
        topic=topics.stripe_events,
        parse=partial(_parse_stripe, settings.stripe_mode == "live"),
        counters=counters_by_reason(metrics.webhook_requests),
        duration=metrics.webhook_duration,
        **common,
    )
    app.router.add_post("/webhooks/stripe", endpoint_handler(STRIPE_ENDPOINT))
    if settings.app_secrets:
        app[APP_ENDPOINT] = Endpoint(
            name="app_event",
            header=signature.APP_HEADER,
            secrets=settings.app_secrets,
            topic=topics.app_events,
            parse=_parse_app,
            counters=counters_by_reason(metrics.app_event_requests),
            duration=None,
            **common,
        )
        app.router.add_post("/events/app", endpoint_handler(APP_ENDPOINT))
    route(app, _customer_api(settings, common))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz_handler(publisher))
    app.router.add_get("/metrics", metrics_handler(metrics))
    app.cleanup_ctx.append(_run_publisher)
    return app


def _customer_api(settings: IngestSettings, common: dict[str, Any]) -> CustomerApi:
    token = settings.paystream_api_token
    return CustomerApi(
        worker_url=settings.paystream_worker_url,
        token=token.get_secret_value() if token else None,
        timeout_s=settings.paystream_ingest_worker_timeout_s,
        retry_after=common["retry_after"],
        log=common["log"],
        hash_customer=common["hash_customer"],
        request_ids=common["request_ids"],
        trusted_proxies=settings.trusted_proxies,
    )


def _parse_stripe(
    live: bool, text: str, received_at_ms: int, cid: str, _signed_at: int
) -> envelope.Outgoing:
    return envelope.parse_stripe_event(
        text, live=live, received_at_ms=received_at_ms, correlation_id=cid
    )


def _parse_app(text: str, received_at_ms: int, cid: str, signed_at: int) -> envelope.Outgoing:
    return envelope.parse_app_event(
        text, received_at_ms=received_at_ms, correlation_id=cid, signed_at=signed_at
    )


async def _run_publisher(app: web.Application) -> AsyncIterator[None]:
    publisher = app[PUBLISHER]
    settings = app[SETTINGS]
    log = structlog.get_logger("ingest")
    await publisher.start()
    # Connect before the first webhook arrives; a broker that is away is not fatal here
    # (requests get 503 and /readyz says so until it is back).
    topic = settings.topics.stripe_events
    ready = await publisher.check_broker(topic, WARM_UP_TIMEOUT_S)
    log.info("broker_connected" if ready else "broker_unreachable")
    # /readyz answers from the state this keeps fresh in the background
    refresher = asyncio.create_task(publisher.keep_checking(topic), name="readiness")
    yield
    refresher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await refresher
    left = await publisher.close(settings.paystream_ingest_shutdown_timeout_s)
    if left:
        log.error("producer_flush_incomplete", unsent=left)
    else:
        log.info("producer_flushed")
