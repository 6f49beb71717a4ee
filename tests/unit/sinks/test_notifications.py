"""The product notifications' pure core (``sinks.notifications``) and the app-webhook
adapter's planning: which records become a notification, the body, the id, the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.destinations import split_url
from paystream.vocabulary import BILLING_STATES
from sinks.app_webhook import AppWebhookAdapter
from sinks.errors import PermanentSinkError
from sinks.notifications import (
    InvalidChange,
    encode,
    is_notification,
    notification,
    notification_id,
    request_headers,
)
from tests.conftest import fuzz_settings


def change(
    customer: str = "cus_A",
    previous: str | None = "onboarding_pending",
    new: str = "active",
    cause: str = "evt_1",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "user_id": "user_1",
        "email": "a@example.com",
        "previous_state": previous,
        "new_state": new,
        "cause_event_id": cause,
        "cause_event_type": "invoice.paid",
        "event_created": 1_700_000_000,
        "changed_at_ms": 1_700_000_001_000,
        "received_at_ms": 1_700_000_000_500,
        "processed_at_ms": 1_700_000_000_900,
        "livemode": False,
        "correlation_id": "req_1",
        **extra,
    }


@pytest.mark.parametrize(
    ("previous", "new", "notifies"),
    [
        (None, "onboarding_pending", True),
        ("onboarding_pending", "active", True),
        ("active", "payment_failed", True),
        ("payment_failed", "active", True),
        ("active", "canceled", True),
        ("active", "active", False),  # a record that changes nothing
        (None, "", False),
    ],
)
def test_which_records_become_a_notification(
    previous: str | None, new: str, notifies: bool
) -> None:
    assert is_notification(change(previous=previous, new=new)) is notifies


def test_the_body_is_the_spec_s_seven_fields() -> None:
    c = change(previous=None, new="onboarding_pending")
    assert notification(c) == {
        "id": notification_id(c),
        "type": "billing_state.changed",
        "created": 1_700_000_000,
        "stripe_customer_id": "cus_A",
        "user_id": "user_1",
        "previous_state": None,
        "state": "onboarding_pending",
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"user_id": None}, {"user_id": None}),
        ({"user_id": ""}, {"user_id": None}),  # the client accepts null or a non-empty id
        ({"previous_state": ""}, {"previous_state": None}),
    ],
)
def test_empty_values_are_null(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = notification(change(**fields))
    assert {k: body[k] for k in expected} == expected


@pytest.mark.parametrize(
    "fields",
    [{"new_state": "trialing"}, {"previous_state": "gone"}, {"customer_id": ""}],
)
def test_a_change_that_cannot_be_a_notification_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidChange):
        notification(change(**fields))


def test_no_email_nor_stage_timestamps_reach_the_product() -> None:
    raw = encode(notification(change()))
    assert b"a@example.com" not in raw and b"req_1" not in raw
    assert raw == json.dumps(json.loads(raw), separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "redelivered",
    [
        {"changed_at_ms": 1_800_000_000_000},  # the worker emitted the change again
        {"processed_at_ms": 1},
        {"received_at_ms": 2},
        {"correlation_id": "req_other"},
        {"email": None},
    ],
)
def test_a_redelivered_change_keeps_its_id_and_bytes(redelivered: dict[str, Any]) -> None:
    first, again = change(), change(**redelivered)
    assert notification_id(first) == notification_id(again)
    assert encode(notification(first)) == encode(notification(again))


@pytest.mark.parametrize(
    "other",
    [
        {"customer": "cus_B"},
        {"cause": "evt_2"},
        {"previous": None},
        {"previous": "payment_failed"},
        {"new": "paused"},
    ],
)
def test_another_change_has_another_id(other: dict[str, Any]) -> None:
    assert notification_id(change()) != notification_id(change(**other))


ids = st.text(st.characters(codec="utf-8"), max_size=20)
states = st.sampled_from(BILLING_STATES)


@given(customer=ids, cause=ids, previous=st.none() | states, new=states)
@fuzz_settings(200)
def test_ids_are_bsc_and_32_hex_digits(
    customer: str, cause: str, previous: str | None, new: str
) -> None:
    c = change(customer=customer, cause=cause, previous=previous, new=new)
    ident = notification_id(c)
    assert ident.startswith("bsc_") and len(ident) == 36
    int(ident[4:], 16)
    assert ident == notification_id(dict(c))


def test_the_signature_is_stripes_scheme_over_the_exact_bytes() -> None:
    payload = encode(notification(change()))
    headers = request_headers(payload, ["s" * 32, "t" * 32], 1_700_000_123.9)
    assert headers["Content-Type"] == "application/json"
    parts = headers["Paystream-Signature"].split(",")
    assert parts[0] == "t=1700000123"
    signed = b"1700000123." + payload
    assert parts[1:] == [
        "v1=" + hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()
        for s in ("s" * 32, "t" * 32)
    ]


@pytest.mark.parametrize(
    ("url", "base", "path"),
    [
        ("https://app.example.com/api/paystream", "https://app.example.com", "/api/paystream"),
        ("http://127.0.0.1:3000/api/x?env=dev", "http://127.0.0.1:3000", "/api/x?env=dev"),
        ("https://app.example.com", "https://app.example.com", "/"),
        ("https://app.example.com/hook/", "https://app.example.com", "/hook/"),
    ],
)
def test_the_url_is_posted_to_as_written(url: str, base: str, path: str) -> None:
    assert split_url(url) == (base, path)


def _commands(*changes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**c, "idempotency_key": notification_id(c)} for c in changes]


def test_plan_posts_each_change_once_in_order_and_skips_non_changes() -> None:
    pending = change(previous=None, new="onboarding_pending", cause="evt_checkout")
    commands = _commands(
        pending,
        change(previous="onboarding_pending", new="active", cause="evt_done"),
        change(previous="active", new="active", cause="evt_noop"),
        pending,  # the same change again in the batch
        change(customer="cus_B", previous=None, new="payment_failed"),
    )
    calls = AppWebhookAdapter(None).plan(commands)
    assert [c.indexes for c in calls] == [(0, 3), (1,), (4,)]
    assert calls[0].notes == {3: "coalesced"}
    states = [json.loads(c.payload)["state"] for c in calls]
    assert states == ["onboarding_pending", "active", "payment_failed"]
    assert [json.loads(c.payload)["id"] for c in calls] == [
        commands[i]["idempotency_key"] for i in (0, 1, 4)
    ]


def test_an_invalid_change_is_dead_lettered_as_invalid_command() -> None:
    adapter = AppWebhookAdapter(None)
    (call,) = adapter.plan(_commands(change(new="trialing")))
    with pytest.raises(PermanentSinkError) as raised:
        adapter.send(call)
    assert raised.value.reason_code == "invalid_command"
    assert adapter.split(call) == [call]


distinct_changes = st.lists(
    st.builds(
        change,
        customer=st.sampled_from(["cus_A", "cus_B"]),
        previous=st.none() | states,
        new=states,
        cause=st.sampled_from(["evt_1", "evt_2", "evt_3"]),
    ),
    max_size=6,
)


@given(
    changes=distinct_changes,
    picks=st.lists(st.integers(min_value=0, max_value=100), max_size=15),
)
@fuzz_settings(200)
def test_a_batch_with_repeats_posts_each_distinct_change_once(
    changes: list[dict[str, Any]], picks: list[int]
) -> None:
    batch = [changes[i % len(changes)] for i in picks] if changes else []
    calls = AppWebhookAdapter(None).plan(_commands(*batch))
    posted = [json.loads(c.payload)["id"] for c in calls]
    wanted = [notification_id(c) for c in batch if is_notification(c)]
    assert posted == list(dict.fromkeys(wanted))
    covered = sorted(i for c in calls for i in c.indexes)
    assert covered == [i for i, c in enumerate(batch) if is_notification(c)]
