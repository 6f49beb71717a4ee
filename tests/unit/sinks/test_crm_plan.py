"""CRM commands to HubSpot inputs: properties, dates, coalescing, the stale guard."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.commands import crm_command
from paystream import crm_properties
from sinks import crm_plan


def test_crm_input_has_the_spec_property_set() -> None:
    command = crm_command("cus_A", "payment_failed", 1_700_000_000, email="a@x.io", user_id="u1")
    assert crm_plan.crm_input(command) == {
        "idProperty": "stripe_customer_id",
        "id": "cus_A",
        "properties": {
            "stripe_customer_id": "cus_A",
            "billing_state": "payment_failed",
            "billing_state_changed_at": "2023-11-14T22:13:20.000Z",
            "email": "a@x.io",
            "paystream_user_id": "u1",
        },
    }


def test_crm_input_leaves_out_unknown_email_and_user() -> None:
    props = crm_plan.crm_input(crm_command())["properties"]
    assert "email" not in props
    assert "paystream_user_id" not in props


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("2023-11-14T22:13:20.000Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.123+00:00", 1_700_000_000_123),
        ("1700000000000", 1_700_000_000_000),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_parse_crm_datetime(value: str | None, ms: int | None) -> None:
    assert crm_properties.parse_crm_datetime(value) == ms


@given(st.integers(0, 4_102_444_800_000))
def test_iso8601_round_trips(ms: int) -> None:
    assert crm_properties.parse_crm_datetime(crm_properties.iso8601_ms(ms)) == ms


def test_coalesce_keeps_the_newest_state_per_customer() -> None:
    commands = [
        crm_command("cus_A", "onboarding_pending", 100),
        crm_command("cus_B", "active", 100),
        crm_command("cus_A", "payment_failed", 300),
        crm_command("cus_A", "active", 200),  # late, older than payment_failed
    ]
    upserts = crm_plan.coalesce_crm(commands)
    assert [(u.customer_id, u.input["properties"]["billing_state"]) for u in upserts] == [
        ("cus_A", "payment_failed"),
        ("cus_B", "active"),
    ]
    assert upserts[0].newest == 2
    assert upserts[0].covers == (0, 2, 3)
    assert upserts[1].covers == (1,)


def test_coalesce_tie_goes_to_the_later_command() -> None:
    commands = [crm_command("cus_A", "active", 100), crm_command("cus_A", "paused", 100)]
    assert crm_plan.coalesce_crm(commands)[0].input["properties"]["billing_state"] == "paused"


states = st.sampled_from(["active", "paused", "payment_failed", "canceled"])
crm_batches = st.lists(
    st.tuples(st.sampled_from(["cus_A", "cus_B", "cus_C"]), states, st.integers(1, 50)),
    min_size=1,
    max_size=40,
)


@given(crm_batches)
def test_coalesce_properties(batch: list[tuple[str, str, int]]) -> None:
    commands = [
        crm_command(c, s, t, cause_event_id=f"evt_{i}") for i, (c, s, t) in enumerate(batch)
    ]
    upserts = crm_plan.coalesce_crm(commands)
    # one input per customer: HubSpot refuses duplicate ids in one batch
    assert len({u.customer_id for u in upserts}) == len(upserts) == len({c for c, _, _ in batch})
    # every command is covered exactly once
    assert sorted(i for u in upserts for i in u.covers) == list(range(len(commands)))
    for u in upserts:
        newest = max(t for c, _, t in batch if c == u.customer_id)
        assert u.changed_at_ms == newest * 1000
        assert all(commands[i]["customer_id"] == u.customer_id for i in u.covers)


@pytest.mark.parametrize(
    ("held", "sent", "stale"),
    [
        ({}, ["cus_A"], []),
        ({"cus_A": None}, ["cus_A"], []),
        ({"cus_A": 99_000}, ["cus_A"], []),
        ({"cus_A": 100_000}, ["cus_A"], []),  # same time: re-sending is harmless
        ({"cus_A": 101_000}, [], ["cus_A"]),
    ],
)
def test_the_stale_guard(held: dict[str, int | None], sent: list[str], stale: list[str]) -> None:
    (upsert,) = crm_plan.coalesce_crm([crm_command("cus_A", "active", 100)])
    is_stale = crm_plan.is_stale(upsert, held.get("cus_A"))
    assert (["cus_A"] if not is_stale else []) == sent
    assert (["cus_A"] if is_stale else []) == stale


def test_held_contacts_read_the_change_time_of_a_batch_read_answer() -> None:
    answer: dict[str, Any] = {
        "results": [
            {
                "id": "1",
                "properties": {
                    "stripe_customer_id": "cus_A",
                    "billing_state_changed_at": "2023-11-14T22:13:20Z",
                },
            },
            {
                "id": "2",
                "properties": {"stripe_customer_id": "cus_B", "billing_state_changed_at": None},
            },
        ],
        "errors": [{"category": "OBJECT_NOT_FOUND", "context": {"ids": ["cus_C"]}}],
    }
    held = {c.customer_id: c.changed_at_ms for c in crm_plan.held_contacts(answer)}
    assert held == {"cus_A": 1_700_000_000_000, "cus_B": None}


@given(st.integers(0, 450), st.integers(1, 150))
def test_chunks_respect_hubspots_limit(n: int, size: int) -> None:
    upserts = crm_plan.coalesce_crm([crm_command(f"cus_{i}") for i in range(n)])
    parts = crm_plan.chunks(upserts, size)
    assert all(1 <= len(p) <= min(size, 100) for p in parts)
    assert [u for p in parts for u in p] == upserts
