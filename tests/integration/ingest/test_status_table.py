"""Every row of SPEC §3's status table, against the real app and the real broker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Message

from ingest.settings import IngestSettings
from paystream.hashing import customer_hash
from paystream.runtime.broker import free_port
from paystream.signing import sign_header
from schemas.codec import default_codec
from tests.conftest import LIVE_ENV
from tests.integration.ingest.conftest import (
    CARD_FINGERPRINT,
    EMAIL,
    OLD_SECRET,
    SECRET,
    ClientFactory,
    encode,
    ingest_settings_for,
    signed,
)
from tests.kafka_helpers import consume

pytestmark = pytest.mark.broker

URL = "/webhooks/stripe"
MIB = 1024 * 1024


def _ids(messages: list[Message]) -> list[str]:
    return [default_codec().decode_as("stripe_event", m.value())["event_id"] for m in messages]


async def test_valid_event_is_published_then_acknowledged(
    ingest_client: ClientFactory,
    ingest_settings: IngestSettings,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    client = await ingest_client()
    event = make_event("charge_succeeded")
    body = encode(event)
    resp = await client.post(URL, data=body, headers=signed(body, **{"X-Request-Id": "req-42"}))
    assert resp.status == 200
    assert await resp.json() == {"received": True, "id": event["id"]}
    assert resp.headers["X-Request-Id"] == "req-42"

    [msg] = consume(
        ingest_settings, ingest_settings.topics.stripe_events, until=lambda m: len(m) >= 1
    )
    record = default_codec().decode_as("stripe_event", msg.value())
    customer = event["data"]["object"]["customer"]
    assert msg.key() == customer.encode()
    assert dict(msg.headers() or [])["x-request-id"] == b"req-42"
    assert record["raw"] == body.decode()  # the bytes Stripe sent, not a re-serialisation
    assert {k: record[k] for k in ("event_id", "type", "created", "livemode", "customer_id")} == {
        "event_id": event["id"],
        "type": "charge.succeeded",
        "created": event["created"],
        "livemode": False,
        "customer_id": customer,
    }
    assert (record["correlation_id"], record["source"]) == ("req-42", "webhook")
    assert record["api_version"] == event["api_version"]
    assert abs(record["received_at_ms"] - time.time() * 1000) < 600_000


async def test_same_event_twice_is_acknowledged_twice(
    ingest_client: ClientFactory,
    ingest_settings: IngestSettings,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    client = await ingest_client()
    body = encode(make_event("invoice_paid"))
    answers = []
    for _ in range(2):  # a Stripe retry re-signs the same body with a new timestamp
        resp = await client.post(URL, data=body, headers=signed(body))
        answers.append((resp.status, await resp.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200
    messages = consume(
        ingest_settings, ingest_settings.topics.stripe_events, until=lambda m: len(m) >= 2
    )
    assert len(set(_ids(messages))) == 1  # both copies in Kafka; dedup is the worker's job


async def test_event_signed_with_the_previous_secret_is_accepted(
    ingest_client: ClientFactory, make_event: Callable[..., dict[str, Any]]
) -> None:
    client = await ingest_client()
    body = encode(make_event())
    resp = await client.post(URL, data=body, headers=signed(body, OLD_SECRET))
    assert resp.status == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=notanumber,v1=abc",
        "v1=00ff",
        "WRONG_SECRET",
        "OLD_TIMESTAMP",
        "FUTURE_TIMESTAMP",
        "V0_ONLY",
    ],
)
async def test_bad_signature_is_401(
    ingest_client: ClientFactory,
    ingest_settings: IngestSettings,
    make_event: Callable[..., dict[str, Any]],
    header: str | None,
) -> None:
    client = await ingest_client()
    body = encode(make_event())
    now = int(time.time())
    tolerance = ingest_settings.stripe_signature_tolerance_s
    special = {
        "WRONG_SECRET": sign_header(body, "whsec_somebodyElse"),
        "OLD_TIMESTAMP": sign_header(body, SECRET, now - tolerance - 30),
        "FUTURE_TIMESTAMP": sign_header(body, SECRET, now + tolerance + 30),
        "V0_ONLY": sign_header(body, SECRET).replace("v1=", "v0="),
    }
    headers = {} if header is None else {"Stripe-Signature": special.get(header, header)}
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 401
    assert await resp.json() == {"error": "invalid_signature"}


async def test_tampered_body_is_401(
    ingest_client: ClientFactory, make_event: Callable[..., dict[str, Any]]
) -> None:
    client = await ingest_client()
    event = make_event()
    headers = signed(encode(event))
    event["data"]["object"]["amount"] = 1
    resp = await client.post(URL, data=encode(event), headers=headers)
    assert (resp.status, await resp.json()) == (401, {"error": "invalid_signature"})


def _malformed(make: Callable[..., dict[str, Any]]) -> dict[str, bytes]:
    def without(key: str) -> bytes:
        event = make()
        del event[key]
        return encode(event)

    no_data_object = make()
    no_data_object["data"] = {"previous_attributes": {}}
    return {
        "not_json": b"{this is not json",
        "json_array": b"[1, 2, 3]",
        "object_not_event": encode(make(object="charge")),
        "no_id": without("id"),
        "no_type": without("type"),
        "no_created": without("created"),
        "created_not_int": encode(make(created="yesterday")),
        "no_data_object": encode(no_data_object),
        "no_livemode": without("livemode"),
        "deep_nesting": b"[" * 100_000 + b"]" * 100_000,
    }


@pytest.mark.parametrize(
    "case",
    [
        "not_json",
        "json_array",
        "object_not_event",
        "no_id",
        "no_type",
        "no_created",
        "created_not_int",
        "no_data_object",
        "no_livemode",
        "deep_nesting",
    ],
)
async def test_signed_but_malformed_is_400(
    ingest_client: ClientFactory, make_event: Callable[..., dict[str, Any]], case: str
) -> None:
    client = await ingest_client()
    body = _malformed(make_event)[case]
    resp = await client.post(URL, data=body, headers=signed(body))
    assert (resp.status, await resp.json()) == (400, {"error": "malformed_event"})


async def test_unsigned_malformed_body_is_401_not_400(
    ingest_client: ClientFactory,
) -> None:
    """The signature is checked before anything is parsed."""
    client = await ingest_client()
    resp = await client.post(URL, data=b"{not json", headers={"Stripe-Signature": "t=1,v1=00"})
    assert resp.status == 401


@pytest.mark.parametrize(("mode", "livemode"), [("test", True), ("live", False)])
async def test_livemode_differs_from_stripe_mode_is_403(
    ingest_client: ClientFactory,
    ingest_settings: IngestSettings,
    make_event: Callable[..., dict[str, Any]],
    mode: str,
    livemode: bool,
) -> None:
    live = {k.lower(): v for k, v in LIVE_ENV.items()} if mode == "live" else {}
    settings = ingest_settings_for(ingest_settings, **{"stripe_mode": mode, **live})
    client = await ingest_client(settings)
    body = encode(make_event(livemode=livemode))
    resp = await client.post(URL, data=body, headers=signed(body))
    assert (resp.status, await resp.json()) == (403, {"error": "mode_mismatch"})
    good = encode(make_event(livemode=not livemode))
    assert (await client.post(URL, data=good, headers=signed(good))).status == 200


async def test_body_over_one_mib_is_413_by_content_length(
    ingest_client: ClientFactory, make_event: Callable[..., dict[str, Any]]
) -> None:
    client = await ingest_client()
    event = make_event(padding="x" * MIB)
    body = encode(event)
    resp = await client.post(URL, data=body, headers=signed(body))
    assert (resp.status, await resp.json()) == (413, {"error": "too_large"})


async def test_chunked_body_over_one_mib_is_413(
    ingest_client: ClientFactory, make_event: Callable[..., dict[str, Any]]
) -> None:
    client = await ingest_client()
    body = encode(make_event(padding="y" * MIB))

    async def chunks() -> Any:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    resp = await client.post(URL, data=chunks(), headers=signed(body))
    assert (resp.status, await resp.json()) == (413, {"error": "too_large"})


async def test_body_just_under_the_limit_is_accepted(
    ingest_client: ClientFactory,
    ingest_settings: IngestSettings,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    client = await ingest_client()
    event = make_event(padding="")
    event["padding"] = "z" * (MIB - len(encode(event)) - 16)
    body = encode(event)
    assert MIB - 64 < len(body) <= MIB
    resp = await client.post(URL, data=body, headers=signed(body))
    assert resp.status == 200
    messages = consume(
        ingest_settings, ingest_settings.topics.stripe_events, until=lambda m: len(m) >= 1
    )
    assert _ids(messages) == [event["id"]]


async def test_broker_unreachable_is_503_with_retry_after(
    ingest_client: ClientFactory,
    ingest_settings: IngestSettings,
    make_event: Callable[..., dict[str, Any]],
) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    settings = ingest_settings_for(
        ingest_settings,
        kafka_bootstrap_servers=nobody,
        paystream_ingest_publish_timeout_s=1.0,
        # the unsent message would hold the app's shutdown for the whole default (10 s)
        paystream_ingest_shutdown_timeout_s=1.0,
    )
    client = await ingest_client(settings)
    body = encode(make_event())
    resp = await client.post(URL, data=body, headers=signed(body))
    assert (resp.status, await resp.json()) == (503, {"error": "unavailable"})
    assert int(resp.headers["Retry-After"]) > 0
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


async def test_answers_and_logs_carry_no_secret_card_data_or_payload(
    ingest_client: ClientFactory,
    make_event: Callable[..., dict[str, Any]],
    json_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    client = await ingest_client()
    event = make_event("charge_succeeded")
    body = encode(event)
    cases = [
        (body, signed(body)),  # 200
        (body, {"Stripe-Signature": sign_header(body, "whsec_intruder")}),  # 401
        (b"{", signed(b"{")),  # 400
        (encode(make_event(livemode=True)), {}),  # 401 (unsigned) then 403 below
    ]
    live = encode(make_event(livemode=True))
    cases.append((live, signed(live)))
    answers = []
    for data, headers in cases:
        resp = await client.post(URL, data=data, headers=headers)
        answers.append(await resp.text() + json.dumps(dict(resp.headers)))
    answers.append(await (await client.get("/metrics")).text())
    logs = json_logs()
    assert {entry.get("status") for entry in logs} >= {200, 401, 400, 403}
    text = "\n".join(answers) + "\n" + json.dumps(logs)
    for forbidden in (
        SECRET,
        OLD_SECRET,
        "whsec_",
        "last4",  # the key: its 4-digit value could occur by chance in a timestamp
        CARD_FINGERPRINT,
        EMAIL,
        "Traceback",
    ):
        assert forbidden not in text
    assert event["data"]["object"]["customer"] not in text  # only its hash is logged
    accepted = [e for e in logs if e.get("status") == 200]
    assert accepted[0]["event_id"] == event["id"]
    assert accepted[0]["type"] == "charge.succeeded"
    assert accepted[0]["customer"] == customer_hash(event["data"]["object"]["customer"])
    assert accepted[0]["correlation_id"]
    assert isinstance(accepted[0]["latency_ms"], float)


async def test_accepted_id_is_echoed_as_valid_json_whatever_its_characters(
    ingest_client: ClientFactory, make_event: Callable[..., dict[str, Any]]
) -> None:
    client = await ingest_client()
    event = make_event(id='evt_"quoted"\\slash')
    body = encode(event)
    resp = await client.post(URL, data=body, headers=signed(body))
    assert (resp.status, await resp.json()) == (200, {"received": True, "id": event["id"]})
