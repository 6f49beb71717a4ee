"""sinks/contact_ids.py: which upserts skip the reads, and what the memory records."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.contact_ids import (
    Remembered,
    after_write,
    email_key,
    fold,
    from_record,
    ids_to_read,
    own_contacts,
    split_known,
    to_record,
)
from sinks.crm_plan import CrmUpsert, HeldContact
from sinks.hubspot import is_missing


def upsert(cid: str, at: int, email: str | None = None) -> CrmUpsert:
    props: dict[str, Any] = {"stripe_customer_id": cid, "billing_state": "active"}
    if email:
        props["email"] = email
    body = {"idProperty": "stripe_customer_id", "id": cid, "properties": props}
    return CrmUpsert(cid, at, body, newest=0, covers=(0,))


KNOWN = {"cus_a": Remembered("101", 1_000, email_key("a@example.com"))}


@pytest.mark.parametrize(
    ("item", "guard", "route"),
    [
        (upsert("cus_a", 2_000), True, "update"),
        (upsert("cus_a", 2_000, "a@example.com"), True, "update"),
        (upsert("cus_a", 2_000, "A@Example.com "), True, "update"),
        (upsert("cus_a", 1_000), True, "update"),
        (upsert("cus_a", 500), True, "stale"),
        (upsert("cus_a", 500), False, "update"),
        (upsert("cus_a", 2_000, "new@example.com"), True, "unknown"),
        (upsert("cus_b", 2_000), True, "unknown"),
        (upsert("cus_b", 2_000, "a@example.com"), True, "unknown"),
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


def test_the_email_is_compared_by_its_keyed_hash() -> None:
    assert email_key("A@Example.com ") == email_key("a@example.com")
    assert email_key("a@example.com", "k1") != email_key("a@example.com", "k2")
    assert email_key(None) is None and email_key("") is None
    assert "example" not in (email_key("a@example.com") or "")
    # under another hash key a remembered email counts as changed: the reads decide
    assert split_known([upsert("cus_a", 2_000, "a@example.com")], KNOWN, key="k1").unknown


def test_update_uses_the_remembered_contact_id() -> None:
    split = split_known([upsert("cus_a", 2_000)], KNOWN)
    assert split.updates == [
        {"id": "101", "properties": {"stripe_customer_id": "cus_a", "billing_state": "active"}}
    ]


def test_after_write_keeps_the_known_email_when_the_command_has_none() -> None:
    out = after_write(KNOWN, [(upsert("cus_a", 3_000), "101"), (upsert("cus_c", 5, "c@x.io"), "7")])
    assert out == {
        "cus_a": Remembered("101", 3_000, email_key("a@example.com")),
        "cus_c": Remembered("7", 5, email_key("c@x.io")),
    }


OLD = Remembered("101", 1_000, None)


@pytest.mark.parametrize(
    ("before", "incoming", "kept"),
    [
        (None, OLD, OLD),
        (OLD, None, None),  # a tombstone forgets
        (None, None, None),
        (OLD, Remembered("101", 2_000, None), Remembered("101", 2_000, None)),
        (OLD, Remembered("202", 1_000, None), Remembered("202", 1_000, None)),  # corrected id
        (Remembered("101", 2_000, None), OLD, Remembered("101", 2_000, None)),  # own echo
    ],
)
def test_fold(before: Remembered | None, incoming: Remembered | None, kept: Remembered) -> None:
    assert fold(before, incoming) == kept


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from(["1", "2"]), st.integers(0, 50)), min_size=1))
def test_fold_keeps_the_newest_write_whatever_order_it_is_read_in(
    writes: list[tuple[str, int]],
) -> None:
    entries = [Remembered(c, at, None) for c, at in writes]
    kept: Remembered | None = None
    for entry in entries:
        kept = fold(kept, entry)
    assert kept is not None
    assert kept.changed_at_ms == max(e.changed_at_ms for e in entries)


@pytest.mark.parametrize(
    "record",
    [
        {"contact_id": "101", "changed_at_ms": 5, "email_key": "ab"},
        {"contact_id": "101", "changed_at_ms": 5, "email_key": None},
    ],
)
def test_records_round_trip(record: dict[str, Any]) -> None:
    assert to_record(from_record(record)) == record


@pytest.mark.parametrize(
    "record", [{"contact_id": "", "changed_at_ms": 5}, {"changed_at_ms": 5}, {"contact_id": "1"}]
)
def test_a_bad_record_is_refused(record: dict[str, Any]) -> None:
    with pytest.raises((KeyError, ValueError)):
        from_record(record)


def held(contact: str, customer: str | None, email: str) -> HeldContact:
    return HeldContact(contact, customer, email, None)


BY_EMAIL = {
    "mine@x.io": held("1", "cus_n", "mine@x.io"),
    "lead@x.io": held("2", None, "lead@x.io"),
    "other@x.io": held("3", "cus_o", "other@x.io"),
}


@pytest.mark.parametrize(
    ("items", "remembered", "forced", "read"),
    [
        # the email settles it: nobody holds it, or the customer's own contact does
        ([upsert("cus_n", 1, "free@x.io")], (), (), []),
        ([upsert("cus_n", 1, "MINE@x.io")], (), (), []),
        # the customer's own contact decides: a lead, another customer, no email
        ([upsert("cus_n", 1, "lead@x.io")], (), (), ["cus_n"]),
        ([upsert("cus_n", 1, "other@x.io")], (), (), ["cus_n"]),
        ([upsert("cus_n", 1)], (), (), ["cus_n"]),
        # two customers of the batch share an email
        ([upsert("cus_n", 1, "s@x.io"), upsert("cus_m", 1, "S@x.io")], (), (), ["cus_n", "cus_m"]),
        # remembered (its email changed) or forced (a conflict on the update by id)
        ([upsert("cus_n", 1, "free@x.io")], ("cus_n",), (), ["cus_n"]),
        ([upsert("cus_n", 1, "free@x.io")], (), ("cus_n",), ["cus_n"]),
    ],
)
def test_ids_to_read(
    items: list[CrmUpsert], remembered: tuple[str, ...], forced: tuple[str, ...], read: list[str]
) -> None:
    assert ids_to_read(items, remembered, BY_EMAIL, forced) == read


def test_own_contacts_are_those_carrying_the_customers_id() -> None:
    items = [upsert("cus_n", 1, "mine@x.io"), upsert("cus_m", 1, "lead@x.io"), upsert("cus_k", 1)]
    assert own_contacts(items, BY_EMAIL) == {"cus_n": BY_EMAIL["mine@x.io"]}


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


NOT_FOUND = {"category": "OBJECT_NOT_FOUND", "message": "not found"}


@pytest.mark.parametrize(
    ("status", "body", "missing"),
    [
        (404, {"category": "OBJECT_NOT_FOUND"}, True),
        (404, None, True),
        (207, {"errors": [NOT_FOUND, NOT_FOUND]}, True),
        (207, {"errors": [NOT_FOUND, {"category": "CONFLICT"}]}, False),
        (207, {"errors": []}, False),
        (200, {"results": []}, False),
        (409, {"category": "CONFLICT"}, False),
    ],
)
def test_ids_hubspot_has_no_more(status: int, body: Any, missing: bool) -> None:
    assert is_missing(status, body) is missing


def test_a_crm_repair_correction_is_not_stale_against_the_date_it_overwrites() -> None:
    later = {"cus_a": Remembered("101", 5_000, None)}
    plain, repair = upsert("cus_a", 2_000), upsert("cus_a", 2_000)
    repair = CrmUpsert(**{**repair.__dict__, "overwrites_ms": 5_000})
    assert split_known([plain], later).stale == ["cus_a"]
    assert split_known([repair], later).updated == ["cus_a"]
