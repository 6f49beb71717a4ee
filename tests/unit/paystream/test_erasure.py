"""``paystream.erasure``: what ``paystream forget`` writes where, and its report (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paystream.erasure import (
    CUSTOMER_ID,
    ERASED_STEP,
    FAILED,
    KEPT,
    REQUESTED,
    DeadLetterAt,
    Report,
    Step,
    cannot_erase,
    dead_letter_row_id,
    erase_event,
    erased_marker,
    marker_key,
    marker_position,
    names,
    plan_queue,
    render,
)
from paystream.vocabulary import CUSTOMER_ERASE, ERASED
from schemas.codec import APP_EVENT, EXCEPTION_STATUS, default_codec


@pytest.mark.parametrize(
    ("key", "customer", "named"),
    [
        ("crm:cus_A:evt_1", "cus_A", True),
        ("cus_A", "cus_A", True),
        ("crm:cus_AB:evt_1", "cus_A", False),  # another customer whose id starts the same
        ("crm:xcus_A:evt_1", "cus_A", False),
        ("crm:cus_A_2:evt_1", "cus_A", False),  # '_' belongs to ids
        ("payment_failed:in_1", "cus_A", False),
        ("erased:dlq:0:1", "cus_A", False),
        ("helpdesk:dispute:dp_1:cus_A", "cus_A", True),
    ],
)
def test_names_matches_whole_customer_ids(key: str, customer: str, named: bool) -> None:
    assert names(key, customer) is named


@pytest.mark.parametrize(
    ("record", "row"),
    [
        ({"idempotency_key": "crm:cus_A:evt_1", "sink": "crm"}, "crm:cus_A:evt_1"),
        ({"idempotency_key": "", "sink": "crm"}, "crm:dlq:2:7"),
        ({"sink": "helpdesk"}, "helpdesk:dlq:2:7"),
    ],
)
def test_the_row_of_a_dead_letter(record: dict[str, str], row: str) -> None:
    assert dead_letter_row_id(record, 2, 7) == row


@given(st.integers(0, 10**6), st.integers(0, 10**12))
@settings(max_examples=50)
def test_a_marker_key_names_its_place_and_nothing_else(partition: int, offset: int) -> None:
    assert marker_position(marker_key(partition, offset)) == (partition, offset)


@pytest.mark.parametrize(
    "key", ["crm:cus_A:evt_1", "erased:dlq:1", "erased:dlq:a:1", "xerased:dlq:1:2", ""]
)
def test_other_keys_are_not_markers(key: str) -> None:
    assert marker_position(key) is None


def test_the_records_encode_with_their_schemas() -> None:
    codec = default_codec()
    event = codec.decode_as(APP_EVENT, codec.encode(APP_EVENT, erase_event("cus_A", 1_234_567)))
    assert (event["type"], event["customer_id"], event["created"]) == (
        CUSTOMER_ERASE,
        "cus_A",
        1234,
    )
    status = codec.decode_as(
        EXCEPTION_STATUS, codec.encode(EXCEPTION_STATUS, erased_marker(1, 2, 9))
    )
    assert (status["row_id"], status["status"]) == ("erased:dlq:1:2", ERASED)


def _dead(partition: int, offset: int, customer: str, key: str) -> DeadLetterAt:
    return DeadLetterAt(
        partition, offset, {"customer_id": customer, "idempotency_key": key, "sink": "crm"}
    )


@pytest.mark.parametrize(
    ("dead", "keys", "markers", "tombstones"),
    [
        # the customer's dead letters: a marker each; its decisions: a tombstone each
        (
            [_dead(0, 1, "cus_A", "crm:cus_A:evt_1"), _dead(1, 4, "cus_B", "crm:cus_B:evt_2")],
            {"crm:cus_A:evt_1", "crm:cus_B:evt_2"},
            ((0, 1),),
            ("crm:cus_A:evt_1",),
        ),
        # a dead letter that could not be decoded (no key, but the customer is known): its
        # row is named by its place, and that decision goes too
        ([_dead(2, 9, "cus_A", "")], {"crm:dlq:2:9", "crm:dlq:3:3"}, ((2, 9),), ("crm:dlq:2:9",)),
        # a dead letter without customer id whose key names the customer
        ([_dead(0, 5, "", "crm:cus_A:evt_7")], set(), ((0, 5),), ()),
        # a decision naming the customer whose dead letter has expired already
        ([], {"crm:cus_A:evt_old", "crm:cus_AB:evt_1"}, (), ("crm:cus_A:evt_old",)),
        # another customer only: nothing
        ([_dead(0, 1, "cus_B", "crm:cus_B:evt_1")], {"crm:cus_B:evt_1"}, (), ()),
        # the same dead letter read twice: one marker
        ([_dead(0, 1, "cus_A", "k"), _dead(0, 1, "cus_A", "k")], set(), ((0, 1),), ()),
    ],
)
def test_the_queue_plan(
    dead: list[DeadLetterAt],
    keys: set[str],
    markers: tuple[tuple[int, int], ...],
    tombstones: tuple[str, ...],
) -> None:
    plan = plan_queue("cus_A", dead, keys)
    assert (plan.markers, plan.tombstones) == (markers, tombstones)


@pytest.mark.parametrize(
    ("statuses", "ok"),
    [
        ([ERASED_STEP, ERASED_STEP, KEPT], True),
        ([REQUESTED, ERASED_STEP, KEPT], True),
        ([ERASED_STEP, FAILED, KEPT], False),
    ],
)
def test_the_report_fails_only_on_a_failed_store(statuses: list[str], ok: bool) -> None:
    report = Report("cus_A", [Step(f"store{i}", s, "detail") for i, s in enumerate(statuses)])
    assert report.ok is ok
    assert report.as_dict()["ok"] is ok
    text = render(report, "header")
    assert text.splitlines()[-1] == ("erased from paystream" if ok else "not erased: store1")


def test_what_cannot_be_erased_is_said_with_the_retention() -> None:
    steps = cannot_erase(["p.stripe.events", "p.sink.crm"], "p.sink.dlq", 30)
    assert {s.status for s in steps} == {KEPT}
    stores = {s.store: s.detail for s in steps}
    assert {"HubSpot", "Zendesk", "logs", "p.sink.dlq", "CRM sink memory"} <= set(stores)
    assert "30 days" in stores["p.sink.dlq"]
    assert "p.stripe.events" in stores["Kafka topics (not compacted)"]


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("cus_A1", True),
        ("cus_", False),
        ("cus_A/../x", False),
        ("acct_1", False),
        ("cus_A B", False),
    ],
)
def test_only_customer_ids_are_accepted(text: str, accepted: bool) -> None:
    assert (CUSTOMER_ID.fullmatch(text) is not None) is accepted


_CUSTOMERS = st.sampled_from(["cus_A", "cus_AB", "cus_B", ""])
_LETTERS = st.lists(
    st.builds(
        lambda p, o, c, keyed: _dead(p, o, c, f"crm:{c}:evt_{o}" if keyed and c else ""),
        st.integers(0, 3),
        st.integers(0, 50),
        _CUSTOMERS,
        st.booleans(),
    ),
    max_size=20,
)


@settings(max_examples=100)
@given(_LETTERS, st.sets(st.sampled_from(["crm:cus_A:evt_1", "crm:cus_AB:evt_1", "x:dlq:0:1"])))
def test_the_plan_marks_exactly_the_customer_s_dead_letters(
    dead: list[DeadLetterAt], keys: set[str]
) -> None:
    plan = plan_queue("cus_A", dead, keys)
    mine = {(d.partition, d.offset) for d in dead if d.record["customer_id"] == "cus_A"}
    assert set(plan.markers) == mine
    assert set(plan.tombstones) <= keys
    assert "crm:cus_A:evt_1" not in keys or "crm:cus_A:evt_1" in plan.tombstones
    assert "crm:cus_AB:evt_1" not in plan.tombstones
