"""ingest.app.customer_hasher: the remembered log hash is paystream's one customer hash."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.app import customer_hasher
from paystream.hashing import customer_hash


@given(key=st.text(max_size=40), customers=st.lists(st.none() | st.text(max_size=30)))
def test_remembered_hash_equals_the_shared_hash(key: str, customers: list[str | None]) -> None:
    hasher = customer_hasher(key)
    for customer in customers + customers:  # the second pass is answered from memory
        assert hasher(customer) == customer_hash(customer, key)


def test_each_key_hashes_apart() -> None:
    assert customer_hasher("a")("cus_1") != customer_hasher("b")("cus_1")
    assert customer_hasher("a")(None) == ""
