"""Property: any path and any Authorization header on ``GET /v1/customers/{id}`` gets a
4xx or 503, never another 5xx, and publishes nothing (a read is only a read)."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.settings import IngestSettings
from tests.conftest import fuzz_settings
from tests.integration.ingest.conftest import ClientFactory, ingest_settings_for
from tests.integration.ingest.test_fuzz import header_text, tokens
from tests.kafka_helpers import consume

pytestmark = pytest.mark.broker

API_TOKEN = "api-token-for-fuzzing-0123456789abcdef"

customer_ids = st.one_of(
    tokens,
    tokens.map(lambda t: "cus_" + t),
    st.text(max_size=300).map(lambda t: "cus_" + t),
    st.text(max_size=60),
    st.integers(0, 300).map(lambda n: "cus_" + "a" * n),
)
authorizations = st.one_of(
    st.none(),
    header_text,
    st.just(f"Bearer {API_TOKEN}"),
    header_text.map(lambda t: "Bearer " + t),
    st.sampled_from(["Bearer", "Bearer ", f"bearer {API_TOKEN}", f"Bearer {API_TOKEN} x"]),
)


def closed_port() -> int:
    """A loopback port nothing listens on: the worker is down, so a good read is a 503."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def read_client(ingest_client: ClientFactory, ingest_settings: IngestSettings) -> Any:
    settings = ingest_settings_for(
        ingest_settings,
        paystream_worker_url=f"http://127.0.0.1:{closed_port()}",
        paystream_api_token=API_TOKEN,
        paystream_ingest_worker_timeout_s=0.5,
    )
    return await ingest_client(settings)


@fuzz_settings(80)
@given(customer_id=customer_ids, authorization=authorizations)
async def test_any_customer_read_gets_4xx_or_503(
    read_client: Any, customer_id: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    resp = await read_client.get("/v1/customers/" + quote(customer_id, safe=""), headers=headers)
    await resp.read()
    assert resp.status in {401, 404, 429, 503}, (resp.status, customer_id, authorization)
    if authorization is None or not authorization.startswith("Bearer "):
        assert resp.status in {401, 404, 429}  # no token, no worker call


async def test_customer_reads_publish_nothing(
    read_client: Any, ingest_settings: IngestSettings
) -> None:
    for customer_id in ("cus_1", "cus_%00", "x" * 500):
        for auth in (f"Bearer {API_TOKEN}", "Bearer nope"):
            await read_client.get("/v1/customers/" + customer_id, headers={"Authorization": auth})
    topics = ingest_settings.topics
    for topic in (topics.stripe_events, topics.app_events):
        assert consume(ingest_settings, topic, timeout=2.0) == []
