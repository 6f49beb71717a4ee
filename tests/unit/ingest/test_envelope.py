"""ingest.envelope: event shape (400), mode (403), Kafka key, Avro record — pure."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.envelope import (
    correlation_id,
    parse_app_event,
    parse_stripe_event,
)
from ingest.errors import MalformedEvent, ModeMismatch
from paystream.stripe_objects import stripe_customer_id
from schemas.codec import default_codec
from tests.conftest import FIXTURES

EVENT: dict[str, Any] = {
    "id": "evt_1",
    "object": "event",
    "api_version": "2024-06-20",
    "created": 1_700_000_000,
    "livemode": False,
    "type": "invoice.paid",
    "data": {"object": {"id": "in_1", "object": "invoice", "customer": "cus_A"}},
}


def event(**changes: Any) -> dict[str, Any]:
    e = copy.deepcopy(EVENT)
    e.update(changes)
    return e


def parse(e: Any, live: bool = False) -> Any:
    text = e if isinstance(e, str) else json.dumps(e)
    return parse_stripe_event(text, live=live, received_at_ms=5, correlation_id="c1")


def test_well_formed_event_becomes_an_encodable_envelope() -> None:
    text = json.dumps(EVENT, indent=2)
    out = parse(text)
    assert (out.schema, out.key, out.event_id, out.type, out.customer_id) == (
        "stripe_event",
        "cus_A",
        "evt_1",
        "invoice.paid",
        "cus_A",
    )
    assert out.record == {
        "event_id": "evt_1",
        "type": "invoice.paid",
        "created": 1_700_000_000,
        "livemode": False,
        "api_version": "2024-06-20",
        "customer_id": "cus_A",
        "received_at_ms": 5,
        "correlation_id": "c1",
        "source": "webhook",
        "raw": text,
    }
    codec = default_codec()
    assert codec.decode_as("stripe_event", codec.encode(out.schema, out.record)) == out.record


@pytest.mark.parametrize(
    ("obj", "customer"),
    [
        ({"object": "invoice", "customer": "cus_A"}, "cus_A"),
        ({"object": "customer", "id": "cus_B"}, "cus_B"),
        ({"object": "charge", "customer": {"id": "cus_C", "object": "customer"}}, "cus_C"),
        ({"object": "dispute", "charge": "ch_1"}, None),
        ({"object": "checkout.session", "customer": None}, None),
        ({"object": "invoice", "customer": 42}, None),
        ({"object": "invoice", "customer": "bad id with spaces"}, None),
    ],
)
def test_customer_id_and_key(obj: dict[str, Any], customer: str | None) -> None:
    assert stripe_customer_id(obj) == customer
    out = parse(event(data={"object": obj}))
    assert out.customer_id == customer
    assert out.key == (customer or "evt_1")  # no customer: the event id keeps it unique


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{",
        "[]",
        "null",
        '"event"',
        "[" * 50_000,
        json.dumps(event(object="charge")),
        json.dumps(event(id="")),
        json.dumps(event(id=7)),
        json.dumps(event(id="evt with space")),
        json.dumps(event(id="evt_\ud800")),
        json.dumps(event(type=None)),
        json.dumps(event(created="1700000000")),
        json.dumps(event(created=1.5)),
        json.dumps(event(created=True)),
        json.dumps(event(created=-1)),
        json.dumps(event(created=2**64)),
        json.dumps(event(livemode="false")),
        json.dumps(event(api_version=["2024"])),
        json.dumps(event(data={"object": []})),
        json.dumps(event(data=[])),
        json.dumps({k: v for k, v in EVENT.items() if k != "data"}),
        json.dumps({k: v for k, v in EVENT.items() if k != "livemode"}),
    ],
)
def test_malformed(body: str) -> None:
    with pytest.raises(MalformedEvent):
        parse(body)


@pytest.mark.parametrize(("livemode", "live"), [(True, False), (False, True)])
def test_mode_mismatch(livemode: bool, live: bool) -> None:
    with pytest.raises(ModeMismatch):
        parse(event(livemode=livemode), live=live)
    assert parse(event(livemode=live), live=live).record["livemode"] is live


def test_shape_is_checked_before_mode() -> None:
    with pytest.raises(MalformedEvent):
        parse(event(livemode=True, object="charge"))


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_every_real_stripe_fixture_parses(path: Path) -> None:
    text = path.read_text()
    live = json.loads(text)["livemode"]
    out = parse(text, live=live)
    default_codec().encode(out.schema, out.record)
    assert out.record["raw"] == text


APP = {
    "id": "app_1",
    "type": "customer.linked",
    "created": 1_700_000_000,
    "stripe_customer_id": "cus_A",
    "user_id": "u_1",
}


#: the signature's ``t`` of these app events (``created`` must lie near it)
SIGNED_AT = 1_700_000_000


def app(**changes: Any) -> str:
    return json.dumps({**APP, **changes})


@pytest.mark.parametrize(
    ("body", "user_id"),
    [
        (app(), "u_1"),
        (app(type="onboarding.completed", user_id=None), None),
        (app(type="onboarding.started"), "u_1"),
    ],
)
def test_app_event(body: str, user_id: str | None) -> None:
    out = parse_app_event(body, received_at_ms=9, correlation_id="c2", signed_at=SIGNED_AT)
    assert (out.schema, out.key, out.customer_id) == ("app_event", "cus_A", "cus_A")
    assert out.record["user_id"] == user_id
    codec = default_codec()
    assert codec.decode_as("app_event", codec.encode(out.schema, out.record)) == out.record


@pytest.mark.parametrize(
    "body",
    [
        "nope",
        "[]",
        app(type="invoice.paid"),
        app(type=["customer.linked"]),
        app(stripe_customer_id="acct_1"),
        app(stripe_customer_id=None),
        app(id=None),
        app(created=None),
        app(user_id=None),  # customer.linked names the user
        app(user_id=12),
    ],
)
def test_malformed_app_event(body: str) -> None:
    with pytest.raises(MalformedEvent):
        parse_app_event(body, received_at_ms=9, correlation_id="c2", signed_at=SIGNED_AT)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("abc-123", "abc-123"),
        (None, "generated"),
        ("", "generated"),
        ("has space", "generated"),
        ("x" * 129, "generated"),
        ("caf\u00e9", "generated"),
    ],
)
def test_correlation_id(header: str | None, expected: str) -> None:
    assert correlation_id(header, lambda: "generated") == expected


def test_generated_correlation_ids_differ() -> None:
    assert correlation_id(None) != correlation_id(None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10,
)


@given(
    changes=st.dictionaries(
        st.sampled_from(["id", "object", "type", "created", "livemode", "api_version", "data"]),
        json_values,
        max_size=4,
    ),
    customer=json_values,
)
def test_any_event_like_body_is_refused_cleanly_or_yields_an_encodable_record(
    changes: dict[str, Any], customer: Any
) -> None:
    e = event(**changes)
    if isinstance(e.get("data"), dict) and isinstance(e["data"].get("object"), dict):
        e["data"]["object"]["customer"] = customer
    try:
        out = parse(e)
    except (MalformedEvent, ModeMismatch):
        return
    default_codec().encode(out.schema, out.record)
    out.key.encode("ascii")


@given(
    changes=st.dictionaries(
        st.sampled_from(["id", "type", "created", "stripe_customer_id", "user_id"]),
        json_values,
        max_size=3,
    )
)
def test_any_app_event_like_body_is_refused_cleanly_or_encodable(changes: dict[str, Any]) -> None:
    try:
        out = parse_app_event(
            app(**changes), received_at_ms=1, correlation_id="c", signed_at=SIGNED_AT
        )
    except MalformedEvent:
        return
    default_codec().encode(out.schema, out.record)


@given(st.text(max_size=300))
def test_arbitrary_text_is_refused_cleanly(text: str) -> None:
    with pytest.raises(MalformedEvent):
        parse(text)
