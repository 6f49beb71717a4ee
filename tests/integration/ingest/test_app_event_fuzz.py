"""Property: a signed app event's ``created`` decides alone whether it is taken (SPEC §3: at
most 5 minutes after the signature's ``t``, at most 7 days before it): 200 inside, 400
``malformed_event`` outside or when not a whole number; only the taken ones are published."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.settings import IngestSettings
from paystream.signing import sign_header
from tests.conftest import fuzz_settings
from tests.integration.ingest.conftest import APP_SECRET, ClientFactory
from tests.kafka_helpers import consume

pytestmark = pytest.mark.broker

DAY_S = 86_400
AHEAD_S, BEHIND_S = 300, 7 * DAY_S
MARGIN_S = 5  # the signing and the check are a moment apart: no example on a border
offsets = st.integers(-2 * BEHIND_S, 2 * AHEAD_S + DAY_S).filter(
    lambda o: abs(o - AHEAD_S) > MARGIN_S and abs(o + BEHIND_S) > MARGIN_S
)
odd_created = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=12), st.just([1])
)


@pytest.fixture
async def app_client(ingest_client: ClientFactory) -> Any:
    client = await ingest_client()
    client.taken = []  # the ids answered 200
    client.seen = 0
    return client


async def post(client: Any, created: object) -> int:
    client.seen += 1
    event = {
        "id": f"app_fuzz_{client.seen}",
        "type": "onboarding.started",
        "created": created,
        "stripe_customer_id": "cus_fuzz",
        "user_id": "u_1",
    }
    body = json.dumps(event).encode()
    headers = {"Paystream-Signature": sign_header(body, APP_SECRET, int(time.time()))}
    resp = await client.post("/events/app", data=body, headers=headers)
    text = await resp.text()
    if resp.status == 200:
        client.taken.append(event["id"])
    else:
        assert (resp.status, json.loads(text)["error"]) == (400, "malformed_event"), text
    return int(resp.status)


@fuzz_settings(60)
@given(offset=offsets, odd=st.none() | odd_created)
async def test_created_decides_and_only_taken_events_are_published(
    app_client: Any, ingest_settings: IngestSettings, offset: int, odd: object
) -> None:
    if odd is not None and not isinstance(odd, int):
        assert await post(app_client, odd) == 400
    status = await post(app_client, int(time.time()) + offset)
    assert status == (200 if -BEHIND_S < offset < AHEAD_S else 400), offset


async def test_refused_app_events_publish_nothing(
    app_client: Any, ingest_settings: IngestSettings
) -> None:
    now = int(time.time())
    for created in (now - 8 * DAY_S, now + 3600, "soon", 1.5, None, now):
        await post(app_client, created)
    assert len(app_client.taken) == 1
    published = consume(
        ingest_settings,
        ingest_settings.topics.app_events,
        timeout=10.0,
        idle=2.0,  # after the first record: a second one would show up by then
    )
    assert len(published) == 1 and app_client.taken[0].encode() in (published[0].value() or b"")
