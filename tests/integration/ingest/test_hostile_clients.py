"""Hostile clients on raw sockets: a non-ASCII signature, trickled bodies, malformed requests.

Each talks to the real ingest app (real producer, real broker) the way an attacker would:
bytes on a TCP connection, no HTTP client smoothing anything over.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from ingest.app import STRIPE_ENDPOINT
from ingest.settings import IngestSettings
from tests.integration.ingest.conftest import ClientFactory, encode, ingest_settings_for, signed

pytestmark = pytest.mark.broker

MARKER = "zz-attacker-bytes-7f3a"


async def _open(client: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(client.server.host, client.server.port)


def _head(length: int, extra: str = "") -> bytes:
    return (
        "POST /webhooks/stripe HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
        f"Stripe-Signature: t={int(time.time())},v1={'0' * 64}\r\n{extra}"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def _status(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split(b" ", 2)[1])
    return status, head


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_non_ascii_v1_answers_401_not_500(
    ingest_client: ClientFactory, make_event: Callable[..., dict[str, Any]]
) -> None:
    client = await ingest_client()
    body = encode(make_event("customer_updated"))
    reader, writer = await _open(client)
    header = f"t={int(time.time())},v1=\u00e9\u00e9".encode()  # latin-1 bytes on the wire
    writer.write(
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: ingest\r\nStripe-Signature: "
        + header
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    await writer.drain()
    status, _ = await _status(reader)
    writer.close()
    assert status == 401
    resp = await client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": f"t={int(time.time())},v1=\uff46\uff46"},
    )
    assert resp.status == 401
    assert await resp.json() == {"error": "invalid_signature"}


@pytest.fixture
def slow_settings(ingest_settings: IngestSettings) -> IngestSettings:
    return ingest_settings_for(
        ingest_settings,
        paystream_ingest_body_timeout_s=0.5,
        paystream_ingest_max_slow_bodies=2,
    )


async def test_a_trickled_body_gets_408_and_the_connection_is_closed(
    ingest_client: ClientFactory, slow_settings: IngestSettings
) -> None:
    client = await ingest_client(slow_settings)
    reader, writer = await _open(client)
    writer.write(_head(1000) + b'{"id": "evt_')  # 12 of 1000 bytes, then nothing
    await writer.drain()
    started = time.monotonic()
    status, head = await _status(reader)
    assert status == 408
    assert b"Connection: close" in head
    body = await asyncio.wait_for(reader.read(), 5)  # the server hangs up after the answer
    assert json.loads(body) == {"error": "request_timeout"}
    assert time.monotonic() - started < 5
    writer.close()
    assert client.server.app[STRIPE_ENDPOINT].body_gate.waiting == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'reason="request_timeout",status="408"} 1.0' in metrics


async def test_slow_bodies_are_bounded_and_a_whole_request_still_gets_through(
    ingest_client: ClientFactory,
    ingest_settings: IngestSettings,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    settings = ingest_settings_for(
        ingest_settings, paystream_ingest_body_timeout_s=30, paystream_ingest_max_slow_bodies=2
    )
    client = await ingest_client(settings)
    gate = client.server.app[STRIPE_ENDPOINT].body_gate
    held = []
    for _ in range(2):
        reader, writer = await _open(client)
        writer.write(_head(1000) + b"{")
        await writer.drain()
        held.append((reader, writer))
    await _until(lambda: gate.waiting == 2)
    reader, writer = await _open(client)
    writer.write(_head(1000) + b"{")
    await writer.drain()
    status, head = await _status(reader)
    assert status == 503  # over the bound: turned away at once, Stripe retries later
    assert b"Retry-After: " in head
    writer.close()
    # A request whose body arrives with its headers is not held up by the slow ones.
    body = encode(make_event("customer_updated"))
    reader, writer = await _open(client)
    head_bytes = "".join(f"{k}: {v}\r\n" for k, v in signed(body).items()).encode()
    writer.write(
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: ingest\r\n"
        + head_bytes
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    await writer.drain()
    status, _ = await _status(reader)
    assert status == 200
    writer.close()
    for _, w in held:
        w.close()
    await _until(lambda: gate.waiting == 0)


@pytest.mark.parametrize(
    "request_bytes",
    [
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-{MARKER}\x01: 1\r\n\r\n".encode(),
        f"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: {MARKER}\r\n\r\n".encode(),
        f"{MARKER} / HTTP/1.1\r\n\r\n".encode(),
        b"GET /" + MARKER.encode() + b"\x00 HTTP/1.1\r\n\r\n",
        b"POST /webhooks/stripe HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{MARKER}\r\n".encode(),
    ],
    ids=["control-char-in-header", "bad-content-length", "bad-method", "nul-in-path", "bad-chunk"],
)
async def test_malformed_requests_are_logged_as_one_json_line_without_their_bytes(
    ingest_client: ClientFactory,
    json_logs: Callable[[], list[dict[str, Any]]],
    request_bytes: bytes,
) -> None:
    client = await ingest_client()
    json_logs()  # drop the start-up lines
    reader, writer = await _open(client)
    writer.write(request_bytes)
    await writer.drain()
    status, _ = await _status(reader)
    writer.close()
    assert status == 400
    lines = json_logs()  # aiohttp logs before it answers; a traceback line would not parse
    errors = [line for line in lines if line["event"] == "http_protocol_error"]
    assert len(errors) == 1, lines
    assert errors[0]["status"] == 400
    assert errors[0]["level"] == "warning"
    assert MARKER not in json.dumps(lines)
    assert (await client.get("/healthz")).status == 200
