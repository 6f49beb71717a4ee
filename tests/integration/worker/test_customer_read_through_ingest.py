"""``GET /v1/customers/{id}`` on ingest, answered by a real ``paystream worker``.

One worker for the whole story (starting one is the cost): the record as the worker has
it, 404 unknown, 401 without or with a wrong token, wrong tokens throttled on ingest and
on the worker itself, 503 once the worker is gone.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingest.app import create_app
from paystream.settings import CommonSettings
from paystream.throttle import DEFAULT_BURST
from tests.integration.ingest.conftest import ingest_settings_for
from tests.integration.worker.conftest import StartWorker, publish
from tests.unit.processors.stripe_events import encoded_stripe

pytestmark = pytest.mark.broker

TOKEN = "api-test-token-through-ingest-0123456789"
CUSTOMER = "cus_viaIngest01"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def poll(client: TestClient[Any, Any], path: str, want: int, within_s: float = 60) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        resp = await client.get(path, headers=bearer(TOKEN))
        if resp.status == want or time.monotonic() > deadline:
            return resp
        await asyncio.sleep(0.2)


async def test_the_record_through_ingest_and_every_refusal(
    pipeline_settings: CommonSettings, start_worker: StartWorker, aiohttp_client: Any
) -> None:
    worker = start_worker(PAYSTREAM_API_TOKEN=TOKEN)
    t = int(time.time()) - 60
    publish(
        pipeline_settings,
        [("stripe", encoded_stripe("checkout.session.completed", "evt_via_ingest_1", t, CUSTOMER))],
    )
    settings = ingest_settings_for(
        pipeline_settings,
        paystream_worker_url=f"http://127.0.0.1:{worker.port}",
        paystream_api_token=TOKEN,
        paystream_ingest_worker_timeout_s=5.0,
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    await asyncio.to_thread(worker.wait_ready)

    resp = await poll(client, f"/v1/customers/{CUSTOMER}", 200)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    direct_status, direct = await asyncio.to_thread(worker.get, f"/customers/{CUSTOMER}", TOKEN)
    assert (direct_status, body) == (200, direct)  # the worker's record, as it sent it
    assert body["billing_state"] in ("onboarding_pending", "active")

    for path, status, error in [
        ("/v1/customers/cus_nobodyKnows", 404, "not_found"),
        ("/v1/customers/acct_notACustomer", 404, "not_found"),  # never asked of the worker
    ]:
        resp = await client.get(path, headers=bearer(TOKEN))
        assert (resp.status, await resp.json()) == (status, {"error": error})
    resp = await client.get(f"/v1/customers/{CUSTOMER}")
    assert (resp.status, await resp.json()) == (401, {"error": "unauthorized"})

    # the worker throttles wrong tokens too, per client
    answers = [
        (await asyncio.to_thread(worker.get, f"/customers/{CUSTOMER}", "wrong"))[0]
        for _ in range(DEFAULT_BURST + 1)
    ]
    assert answers == [401] * DEFAULT_BURST + [429]

    worker.stop()
    resp = await client.get(f"/v1/customers/{CUSTOMER}", headers=bearer(TOKEN))
    assert (resp.status, await resp.json()) == (503, {"error": "unavailable"})
    assert resp.headers["Retry-After"] == str(settings.paystream_ingest_retry_after_s)

    # ingest: a burst of wrong tokens, then refused without looking, even the right one
    for _ in range(DEFAULT_BURST):
        resp = await client.get(f"/v1/customers/{CUSTOMER}", headers=bearer("guess"))
        assert resp.status == 401
    for token in ("guess", TOKEN):
        resp = await client.get(f"/v1/customers/{CUSTOMER}", headers=bearer(token))
        assert (resp.status, await resp.json()) == (429, {"error": "too_many_attempts"})
        assert int(resp.headers["Retry-After"]) >= 1


async def test_the_read_is_off_without_a_worker_url(
    pipeline_settings: CommonSettings, aiohttp_client: Any
) -> None:
    settings = ingest_settings_for(pipeline_settings, paystream_api_token=TOKEN)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    resp = await client.get(f"/v1/customers/{CUSTOMER}", headers=bearer(TOKEN))
    assert (resp.status, await resp.json()) == (404, {"error": "not_found"})
