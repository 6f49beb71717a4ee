"""aiohttp handlers (thin): size → signature → shape → mode → durable publish → answer.

Every answer is one of the fixed bodies of SPEC §3; the only thing echoed back is the
event id of an accepted event. One JSON log line and one metric sample per request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from ingest import envelope, signature
from ingest.errors import BodyTimeout, IngestError, Overloaded, TooLarge
from ingest.publisher import Publisher
from ingest.records import RecordEncoders
from ingest.requestlog import RequestLog
from paystream.metrics import PaystreamMetrics

#: Every outcome of a request (the ``reason`` label) and the status it answers with.
STATUS_OF = {
    "ok": 200,
    "invalid_signature": 401,
    "malformed_event": 400,
    "mode_mismatch": 403,
    "too_large": 413,
    "request_timeout": 408,
    "unavailable": 503,
    "internal": 500,
}
ERROR_BODIES = {r: json.dumps({"error": r}).encode() for r in STATUS_OF if r != "ok"}
JSON = "application/json"
REQUEST_ID = "X-Request-Id"

#: (verified text, received at ms, correlation id, the signature's ``t``) → the record
Parse = Callable[[str, int, str, int], envelope.Outgoing]

_log = structlog.get_logger("ingest")


@dataclass(slots=True)
class BodyGate:
    """Bounds the requests whose body is still on its way: a deadline each, a count for all.

    A client that sends headers and then trickles the body would otherwise hold a
    connection and up to the body limit in memory for as long as it likes. Shared by
    every endpoint of one app (event loop thread only, so a plain counter is enough).
    """

    timeout_s: float
    limit: int
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything one POST endpoint needs: who may sign, what it parses, where it goes."""

    name: str
    header: str
    secrets: tuple[str, ...]
    tolerance_s: int
    max_body_bytes: int
    topic: str
    parse: Parse
    publisher: Publisher
    records: RecordEncoders
    retry_after: str
    #: Pre-resolved metric children by reason (label lookups stay off the hot path).
    counters: dict[str, Any]
    duration: Histogram | None
    request_ids: Callable[[], str]
    #: the customer-id hash of log lines (``paystream.hashing``; the metrics rows use the same)
    hash_customer: Callable[[str | None], str]
    log: RequestLog
    body_gate: BodyGate


def counters_by_reason(counter: Counter) -> dict[str, Any]:
    """One metric child per outcome, resolved once."""
    return {r: counter.labels(status=str(code), reason=r) for r, code in STATUS_OF.items()}


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()  # the app's client_max_size is the same limit
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge("body over the limit") from None


async def _body(request: web.Request, limit: int, gate: BodyGate) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise TooLarge("content-length over the limit")
    if request.content.is_eof():  # the whole body came with the headers: no timer needed
        return await _read(request)
    if gate.waiting >= gate.limit:
        raise Overloaded("too many request bodies in flight")
    gate.waiting += 1
    try:
        async with asyncio.timeout(gate.timeout_s):
            return await _read(request)
    except TimeoutError:
        raise BodyTimeout("body not received within the deadline") from None
    finally:
        gate.waiting -= 1


async def accept(request: web.Request, ep: Endpoint) -> web.Response:
    """Run one signed event through every check and publish it before answering 200."""
    started = time.perf_counter()
    now = time.time()
    cid = envelope.correlation_id(request.headers.get(REQUEST_ID), ep.request_ids)
    event: envelope.Outgoing | None = None
    headers = {REQUEST_ID: cid}
    try:
        body = await _body(request, ep.max_body_bytes, ep.body_gate)
        text, signed_at = signature.verify_signed(
            body, request.headers.get(ep.header), ep.secrets, ep.tolerance_s, now
        )
        event = ep.parse(text, int(now * 1000), cid, signed_at)
        value = ep.records.encode(event.schema, event.record)
        await ep.publisher.publish(
            ep.topic, event.key.encode(), value, [("x-request-id", cid.encode())]
        )
    except IngestError as exc:
        reason, status, payload = exc.reason, exc.status, ERROR_BODIES[exc.reason]
        if status == 503:
            headers["Retry-After"] = ep.retry_after
    except Exception as exc:  # a bug, not bad input: say so in one line, no stack trace
        _log.error("unexpected_error", correlation_id=cid, error=type(exc).__name__)
        reason, status, payload = "internal", 500, ERROR_BODIES["internal"]
    else:
        reason, status = "ok", 200
        payload = b'{"received": true, "id": %s}' % encode_basestring_ascii(event.event_id).encode()
    elapsed = time.perf_counter() - started
    ep.counters[reason].inc()
    if ep.duration is not None:
        ep.duration.observe(elapsed)
    ep.log.write(
        ep.name,
        correlation_id=cid,
        event_id=event.event_id if event else None,
        type=event.type if event else None,
        customer=ep.hash_customer(event.customer_id) or None if event else None,
        status=status,
        outcome=reason,
        latency_ms=round(elapsed * 1000, 2),
        now=now,
    )
    response = web.Response(body=payload, status=status, content_type=JSON, headers=headers)
    if status == 408:
        await _answer_and_hang_up(request, response)
    return response


async def _answer_and_hang_up(request: web.Request, response: web.Response) -> None:
    """Send a 408 and close: aiohttp would otherwise linger reading the trickled body for
    another 10 s, holding the connection the deadline was meant to free."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()


def endpoint_handler(key: web.AppKey[Endpoint]) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        return await accept(request, request.app[key])

    return handle


async def healthz(_: web.Request) -> web.Response:
    return web.Response(body=b'{"alive": true}', content_type=JSON)


def readyz_handler(publisher: Publisher) -> Callable[[web.Request], Any]:
    """``/readyz`` from the broker state the publisher's refresher last saw: never a broker
    call per request, so a flood of probes costs what ``/healthz`` costs."""

    async def readyz(_: web.Request) -> web.Response:
        if publisher.is_ready():
            return web.Response(body=b'{"ready": true}', content_type=JSON)
        return web.Response(body=b'{"ready": false}', status=503, content_type=JSON)

    return readyz


def metrics_handler(metrics: PaystreamMetrics) -> Callable[[web.Request], Any]:
    async def serve(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    return serve
