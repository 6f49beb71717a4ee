"""Ingest's ``/v1/customers`` throttle counts wrong tokens per client: the address a trusted
proxy reports in ``X-Forwarded-For``, the connected peer otherwise (``paystream.proxies``).

Wrong tokens are refused before the worker is asked, so no worker runs here: the route is
served on its own (real aiohttp server on loopback, the test client connects from
127.0.0.1). A worker URL that nothing listens on would answer 503 to a right token.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ingest.customers import CustomerApi, route
from ingest.requestlog import RequestLog
from paystream.proxies import parse_trusted_proxies
from paystream.throttle import DEFAULT_BURST

TOKEN = "api-token-for-the-throttle-test-0123456789"
PATH = "/v1/customers/cus_throttled01"


async def _client(aiohttp_client: Any, trusted: str) -> TestClient[Any, Any]:
    app = web.Application()
    api = CustomerApi(
        worker_url="http://127.0.0.1:9",
        token=TOKEN,
        timeout_s=1.0,
        retry_after="5",
        log=RequestLog("ingest", enabled=True, stream=io.StringIO()),
        hash_customer=lambda c: c or "",
        request_ids=lambda: "cid",
        trusted_proxies=parse_trusted_proxies(trusted),
    )
    route(app, api)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def _statuses(client: TestClient[Any, Any], forwarded: str | None, n: int) -> list[int]:
    headers = {"Authorization": "Bearer guess"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return [(await client.get(PATH, headers=headers)).status for _ in range(n)]


@pytest.mark.parametrize(
    ("trusted", "first", "second", "second_answers"),
    [
        # behind a trusted proxy: each client has its own bucket, one spent does not lock out
        # the other
        ("127.0.0.1", "203.0.113.5", "203.0.113.9", 401),
        ("127.0.0.0/8", "198.51.100.1, 203.0.113.5", "198.51.100.1, 203.0.113.9", 401),
        # IPv6 clients are named by their /64: a neighbour address is the same client
        ("127.0.0.1", "2001:db8::1", "2001:db8::2", 429),
        ("127.0.0.1", "2001:db8:0:1::1", "2001:db8:0:2::1", 401),
        # no trusted proxy: the header is anybody's to write, so it is not believed and the
        # peer (127.0.0.1) is the one client both requests come from
        ("", "203.0.113.5", "203.0.113.9", 429),
        ("10.0.0.0/8", "203.0.113.5", "203.0.113.9", 429),
    ],
)
async def test_wrong_tokens_are_throttled_per_client(
    aiohttp_client: Any, trusted: str, first: str, second: str, second_answers: int
) -> None:
    client = await _client(aiohttp_client, trusted)
    assert await _statuses(client, first, DEFAULT_BURST + 1) == [401] * DEFAULT_BURST + [429]
    assert await _statuses(client, second, 1) == [second_answers]


async def test_a_throttled_client_is_refused_even_the_right_token(aiohttp_client: Any) -> None:
    client = await _client(aiohttp_client, "127.0.0.1")
    await _statuses(client, "203.0.113.5", DEFAULT_BURST)
    right = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.5"}
    resp = await client.get(PATH, headers=right)
    assert (resp.status, await resp.json()) == (429, {"error": "too_many_attempts"})
    assert int(resp.headers["Retry-After"]) >= 1
    # another client behind the same proxy still reaches the (absent) worker: 503, not 429
    resp = await client.get(PATH, headers={**right, "X-Forwarded-For": "203.0.113.77"})
    assert resp.status == 503
