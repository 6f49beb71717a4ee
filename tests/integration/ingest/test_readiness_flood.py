"""A flood of ``/readyz`` (unauthenticated, on the public port) costs what ``/healthz``
costs: readiness is the producer's last known broker state, refreshed in the background,
never a broker call per request, and webhooks keep their latency meanwhile.

Measured against itself in the same run (no fixed timing): the webhooks' median latency
under a ``/readyz`` flood against the same under a ``/healthz`` flood.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingest.app import PUBLISHER
from ingest.publisher import READINESS_INTERVAL_S
from tests.integration.ingest.conftest import ClientFactory, encode, signed

pytestmark = pytest.mark.broker

WEBHOOKS = 30
FLOODERS = 8


async def webhooks(client: TestClient[Any, Any], make_event: Callable[..., Any]) -> list[float]:
    latencies = []
    for _ in range(WEBHOOKS):
        body = encode(make_event("invoice_paid"))
        started = time.perf_counter()
        resp = await client.post("/webhooks/stripe", data=body, headers=signed(body))
        assert resp.status == 200
        latencies.append(time.perf_counter() - started)
    return latencies


async def flood(client: TestClient[Any, Any], path: str, stop: asyncio.Event) -> list[int]:
    statuses = []
    while not stop.is_set():
        resp = await client.get(path)
        statuses.append(resp.status)
        await resp.release()
    return statuses


async def test_a_readyz_flood_costs_what_a_healthz_flood_costs(
    ingest_client: ClientFactory, make_event: Callable[..., Any]
) -> None:
    client = await ingest_client()
    publisher = client.app[PUBLISHER]
    await webhooks(client, make_event)  # warm: connections, producer, metadata
    measured: dict[str, tuple[float, list[int], int, float]] = {}
    for path in ("/healthz", "/readyz"):
        checks, started = publisher.broker_checks, time.monotonic()
        stop = asyncio.Event()
        flooders = [asyncio.create_task(flood(client, path, stop)) for _ in range(FLOODERS)]
        latencies = await webhooks(client, make_event)
        stop.set()
        statuses = [s for f in await asyncio.gather(*flooders) for s in f]
        measured[path] = (
            statistics.median(latencies),
            statuses,
            publisher.broker_checks - checks,
            time.monotonic() - started,
        )
    healthz_median, _, _, _ = measured["/healthz"]
    readyz_median, statuses, checks, elapsed = measured["/readyz"]
    assert set(statuses) == {200}
    # the probes asked the broker nothing: only the refresher did, once per interval
    assert checks <= elapsed / READINESS_INTERVAL_S + 2
    assert len(statuses) >= 10 * max(checks, 1), (len(statuses), checks)
    # and the webhooks did not notice which of the two probes was flooding
    assert readyz_median <= 3 * healthz_median + 0.01, measured
