"""``GET /customers``' pages (pure): id order, ``after`` continues, the overlay's newer
records win, every record once across the pages, bad paging refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.lifecycle import CustomerRecord
from processors.listing import MAX_LIMIT, ListingQuery, customer_page, listing_query


def table(*ids: str) -> dict[bytes, bytes]:
    return {i.encode(): CustomerRecord(i, "active", 1).to_json() for i in ids}


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ({}, ListingQuery("", 200)),
        ({"after": "cus_9", "limit": "1"}, ListingQuery("cus_9", 1)),
        ({"limit": str(MAX_LIMIT)}, ListingQuery("", MAX_LIMIT)),
        ({"limit": "0"}, None),
        ({"limit": str(MAX_LIMIT + 1)}, None),
        ({"limit": "-3"}, None),
        ({"limit": "ten"}, None),
        ({"after": "x" * 256}, None),
        ({"after": "cus_\n"}, None),
    ],
    ids=repr,
)
def test_paging_parameters(query: dict[str, str], wanted: ListingQuery | None) -> None:
    assert listing_query(query) == wanted


def test_pages_run_in_id_order_and_the_overlay_wins() -> None:
    overlay = {"cus_b": CustomerRecord("cus_b", "canceled", 2), "cus_d": CustomerRecord("cus_d")}
    held = table("cus_c", "cus_a", "cus_b")
    first = customer_page(held, held.get, overlay, ListingQuery("", 2), [1, 0])
    assert [c["stripe_customer_id"] for c in first["customers"]] == ["cus_a", "cus_b"]
    assert first["customers"][1]["billing_state"] == "canceled"
    assert (first["partitions"], first["next_after"]) == ([0, 1], "cus_b")
    rest = customer_page(held, held.get, overlay, ListingQuery("cus_b", 2), [])
    assert [c["stripe_customer_id"] for c in rest["customers"]] == ["cus_c", "cus_d"]
    assert rest["next_after"] is None


def test_a_record_gone_before_its_read_is_left_out() -> None:
    held = table("cus_a", "cus_b")
    page = customer_page(held, lambda k: None if k == b"cus_a" else held.get(k), {},
                         ListingQuery("", 5), [0])  # fmt: skip
    assert [c["stripe_customer_id"] for c in page["customers"]] == ["cus_b"]


@given(
    st.sets(st.from_regex(r"cus_[a-z0-9]{1,6}", fullmatch=True), max_size=30),
    st.integers(1, 7),
)
def test_every_record_is_listed_once_across_the_pages(ids: set[str], limit: int) -> None:
    seen: list[Any] = []
    after, pages = "", 0
    while True:
        held = table(*ids)
        page = customer_page(held, held.get, {}, ListingQuery(after, limit), [0])
        seen += [c["stripe_customer_id"] for c in page["customers"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert seen == sorted(ids)
    assert pages == max(1, -(-len(ids) // limit))
