"""Property: arbitrary bodies, headers and sizes never get a 5xx other than 503 — and the
same running service still accepts a valid event afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, composite

from ingest.handlers import ERROR_BODIES
from ingest.settings import IngestSettings
from paystream.signing import sign_header
from tests.conftest import fuzz_settings
from tests.ingest_strategies import signature_headers
from tests.integration.ingest.conftest import SECRET, ClientFactory, encode, ingest_settings_for

pytestmark = pytest.mark.broker

MAX_BODY = 4096  # a small limit so the fuzzer crosses it often
KNOWN_ERRORS = {body.decode() for body in ERROR_BODIES.values()}

#: Printable ASCII without spaces: what passes as an id, a type or a customer id.
tokens = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | tokens,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
header_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=200)


@composite
def event_like(draw: DrawFn) -> bytes:
    """A Stripe-shaped event with any field replaced by any JSON value."""
    event: dict[str, Any] = {
        "id": "evt_fuzz",
        "object": "event",
        "type": "invoice.paid",
        "created": 1700000000,
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {"object": {"id": "in_1", "object": "invoice", "customer": "cus_1"}},
    }
    obj = event["data"]["object"]
    for key in draw(st.lists(st.sampled_from([*event, "data.object.customer"]), max_size=3)):
        value = draw(json_values)
        if key == "data.object.customer":
            obj["customer"] = value
        else:
            event[key] = value
    return json.dumps(event).encode()


bodies = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=512).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    event_like(),
    st.integers(MAX_BODY - 8, MAX_BODY + 2048).map(lambda n: b'{"id":"' + b"a" * n + b'"}'),
)


@fuzz_settings(500)
@given(
    body=bodies,
    signing=st.sampled_from(["valid", "none", "garbage", "grammar", "stale", "other_secret"]),
    garbage=header_text,
    grammar=signature_headers(b"{}", "whsec_intruder"),
    request_id=st.none() | header_text,
    content_type=st.none() | header_text,
    path=st.sampled_from(["/webhooks/stripe", "/events/app"]),
)
async def test_fuzzed_requests_get_only_4xx_or_503_and_the_service_keeps_serving(
    fuzz_client: Any,
    body: bytes,
    signing: str,
    garbage: str,
    grammar: str,
    request_id: str | None,
    content_type: str | None,
    path: str,
) -> None:
    header = "Paystream-Signature" if path == "/events/app" else "Stripe-Signature"
    secret = "app_fuzz_secret" if path == "/events/app" else SECRET
    values = {
        "valid": sign_header(body, secret),
        "none": None,
        "garbage": garbage,
        "grammar": grammar,  # t=/v1= with hostile values (non-ASCII v1 was a 500)
        "stale": sign_header(body, secret, 1_000_000_000),
        "other_secret": sign_header(body, "whsec_other"),
    }
    headers = {}
    if values[signing] is not None:
        headers[header] = values[signing]
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = await fuzz_client.post(path, data=body, headers=headers)
    text = await resp.text()
    assert resp.status in {200, 400, 401, 403, 413, 503}, (resp.status, text)
    if resp.status == 200:
        assert signing == "valid"
        assert json.loads(text)["received"] is True
    else:
        assert text in KNOWN_ERRORS
    if signing != "valid" and len(body) <= MAX_BODY:
        assert resp.status == 401


@pytest.fixture
async def fuzz_client(ingest_client: ClientFactory, ingest_settings: IngestSettings) -> Any:
    settings = ingest_settings_for(
        ingest_settings,
        paystream_ingest_max_body_bytes=MAX_BODY,
        paystream_app_secrets="app_fuzz_secret",
    )
    return await ingest_client(settings)


async def test_service_still_serves_after_fuzzing(
    fuzz_client: Any, make_event: Callable[..., dict[str, Any]]
) -> None:
    for junk in (b"\xff" * 300, b"[" * 3000, b"{}" * 5000):
        await fuzz_client.post("/webhooks/stripe", data=junk, headers={"Stripe-Signature": "t=1"})
    event = make_event("customer_updated")
    body = encode(event)
    resp = await fuzz_client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": sign_header(body, SECRET)}
    )
    assert (resp.status, (await resp.json())["id"]) == (200, event["id"])
    assert (await fuzz_client.get("/healthz")).status == 200
