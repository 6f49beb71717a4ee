"""Broker outage: a frozen broker (SIGSTOP) gets 503 within the deadline; after SIGCONT the
same ingest process answers 200 again, by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.settings import IngestSettings
from paystream.runtime.broker import EmbeddedBroker
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings
from schemas.codec import default_codec
from tests.integration.ingest.conftest import ClientFactory, encode, ingest_settings_for, signed
from tests.kafka_helpers import consume

pytestmark = pytest.mark.broker

URL = "/webhooks/stripe"
DEADLINE_S = 2.0
#: Scheduling slack on a shared 2-core machine; the point is "answers", not "hangs for minutes".
SLACK_S = 3.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test alone: freezing the session broker would stall everyone."""
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def outage_settings(own_broker: EmbeddedBroker) -> IngestSettings:
    common = CommonSettings(
        kafka_bootstrap_servers=own_broker.bootstrap_servers,
        paystream_broker_profile="embedded",
        paystream_topic_prefix="outage.",
        paystream_topic_partitions=2,
    )
    ensure_topics(own_broker.bootstrap_servers, common.topics.specs())
    return ingest_settings_for(common, paystream_ingest_publish_timeout_s=DEADLINE_S)


async def readyz_turns(client: Any, status: int) -> int:
    """``/readyz``'s status once it is ``status`` (it follows the background broker check),
    or the last one seen after about 15 s."""
    for _ in range(75):
        seen: int = (await client.get("/readyz")).status
        if seen == status:
            break
        await asyncio.sleep(0.2)
    return seen


async def test_frozen_broker_gives_503_then_200_after_thaw(
    own_broker: EmbeddedBroker,
    outage_settings: IngestSettings,
    ingest_client: ClientFactory,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    client = await ingest_client(outage_settings)

    async def post() -> tuple[int, dict[str, Any], dict[str, str], float]:
        event = make_event("invoice_paid")
        body = encode(event)
        started = time.monotonic()
        resp = await client.post(URL, data=body, headers=signed(body))
        return resp.status, await resp.json(), dict(resp.headers), time.monotonic() - started

    before = await post()
    assert before[0] == 200
    assert (await client.get("/readyz")).status == 200

    own_broker.freeze()
    try:
        during = await asyncio.gather(*(post() for _ in range(5)))
        ready_during = await readyz_turns(client, 503)  # the refresher's next check
    finally:
        own_broker.thaw()
    for status, body, headers, elapsed in during:
        assert (status, body) == (503, {"error": "unavailable"})
        assert int(headers["Retry-After"]) >= 1
        assert elapsed < DEADLINE_S + SLACK_S
    assert ready_during == 503

    accepted: list[str] = []
    give_up = time.monotonic() + 90
    while not accepted and time.monotonic() < give_up:  # recovery without a restart
        status, body, _, _ = await post()
        if status == 200:
            accepted.append(body["id"])
        else:
            assert status == 503
            await asyncio.sleep(0.5)
    assert accepted, "ingest did not recover after the broker came back"
    assert await readyz_turns(client, 200) == 200

    messages = consume(
        outage_settings,
        outage_settings.topics.stripe_events,
        until=lambda found: (
            accepted[0] in {default_codec().decode(m.value())[1]["event_id"] for m in found}
        ),
        timeout=60,
    )
    ids = {default_codec().decode(m.value())[1]["event_id"] for m in messages}
    assert before[1]["id"] in ids
    assert accepted[0] in ids
