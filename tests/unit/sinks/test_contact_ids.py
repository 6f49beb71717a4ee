"""sinks/contact_ids.py: which upserts skip the reads, and what the memory records."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.contact_ids import Remembered, after_write, split_known
from sinks.mapping import CrmUpsert


def upsert(cid: str, at: int, email: str | None = None) -> CrmUpsert:
    props: dict[str, Any] = {"stripe_customer_id": cid, "billing_state": "active"}
    if email:
        props["email"] = email
    body = {"idProperty": "stripe_customer_id", "id": cid, "properties": props}
    return CrmUpsert(cid, at, body, newest=0, covers=(0,))


KNOWN = {"cus_a": Remembered("101", 1_000, "a@example.com")}


@pytest.mark.parametrize(
    ("item", "guard", "route"),
    [
        (upsert("cus_a", 2_000), True, "update"),
        (upsert("cus_a", 2_000, "A@Example.com "), True, "update"),
        (upsert("cus_a", 1_000), True, "update"),
        (upsert("cus_a", 500), True, "stale"),
        (upsert("cus_a", 500), False, "update"),
        (upsert("cus_a", 2_000, "new@example.com"), True, "unknown"),
        (upsert("cus_b", 2_000), True, "unknown"),
    ],
)
def test_split_known_routes(item: CrmUpsert, guard: bool, route: str) -> None:
    split = split_known([item], KNOWN, guard)
    got = {
        "update": split.updated == [item.customer_id],
        "stale": split.stale == [item.customer_id],
        "unknown": split.unknown == [item],
    }
    assert [k for k, v in got.items() if v] == [route]


def test_update_uses_the_remembered_contact_id() -> None:
    split = split_known([upsert("cus_a", 2_000)], KNOWN)
    assert split.updates == [
        {"id": "101", "properties": {"stripe_customer_id": "cus_a", "billing_state": "active"}}
    ]


def test_after_write_keeps_the_known_email_when_the_command_has_none() -> None:
    out = after_write(KNOWN, [(upsert("cus_a", 3_000), "101"), (upsert("cus_c", 5, "c@x.io"), "7")])
    assert out == {
        "cus_a": Remembered("101", 3_000, "a@example.com"),
        "cus_c": Remembered("7", 5, "c@x.io"),
    }


@settings(max_examples=50)
@given(
    st.lists(
        st.tuples(st.sampled_from(["cus_a", "cus_b", "cus_c"]), st.integers(0, 3_000)),
        unique_by=lambda t: t[0],
    )
)
def test_every_upsert_lands_in_exactly_one_route(items: list[tuple[str, int]]) -> None:
    ups = [upsert(c, at) for c, at in items]
    split = split_known(ups, KNOWN)
    routed = split.updated + split.stale + [u.customer_id for u in split.unknown]
    assert sorted(routed) == sorted(c for c, _ in items)
    assert len(split.updates) == len(split.updated)
