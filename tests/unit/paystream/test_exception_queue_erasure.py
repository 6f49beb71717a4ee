"""Erasure markers in the exception queue's fold: a forgotten customer's dead letters make
no row, whatever order the admin reads ``sink.dlq`` and ``admin.exceptions`` in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paystream.erasure import erased_marker
from paystream.exception_queue.fold import RETRYING, DeadLetter, Decision, ExceptionQueue
from paystream.vocabulary import ERASED


def dead(customer: str, event: str, offset: int, failed_at: int = 1_000) -> DeadLetter:
    key = f"crm:{customer}:{event}"
    return DeadLetter(
        row_id=key,
        sink="crm",
        idempotency_key=key,
        reason_code="http_400",
        last_error="bad request",
        attempts=1,
        failed_at_ms=failed_at,
        customer_id=customer,
        cause_event_id=event,
        cause_event_type="invoice.paid",
        source_topic="p.sink.crm",
        command=b"command",
        position=(0, offset),
    )


def marker(offset: int) -> Decision:
    record = erased_marker(0, offset, 5_000)
    return Decision(record["row_id"], "", ERASED, 0, 5_000)


def fold(items: list[DeadLetter | Decision]) -> ExceptionQueue:
    queue = ExceptionQueue()
    for item in items:
        if isinstance(item, DeadLetter):
            queue.add_dead_letter(item)
        else:
            queue.add_decision(item)
    return queue


def customers(queue: ExceptionQueue) -> list[str]:
    return sorted(r.dead_letter.customer_id for r in queue.visible())


A1, A2, B1 = dead("cus_A", "evt_1", 0), dead("cus_A", "evt_2", 1), dead("cus_B", "evt_3", 2)
A1_AGAIN = dead("cus_A", "evt_1", 3, failed_at=2_000)  # the same command dead-lettered again


@pytest.mark.parametrize(
    ("items", "listed"),
    [
        ([A1, A2, B1], ["cus_A", "cus_A", "cus_B"]),
        # marker after the dead letter: the row goes
        ([A1, A2, B1, marker(0), marker(1)], ["cus_B"]),
        # marker before it: the row never comes
        ([marker(0), marker(1), A1, A2, B1], ["cus_B"]),
        # a marker naming a place nobody's dead letter is at: nothing happens
        ([A1, B1, marker(9)], ["cus_A", "cus_B"]),
        # a row with two dead letters: marking both drops it, in either order
        ([A1, A1_AGAIN, marker(3), marker(0)], []),
        ([A1, A1_AGAIN, marker(0), marker(3)], []),
        # only the older one marked: the newer dead letter (after forget) keeps the row
        ([A1, A1_AGAIN, marker(0)], ["cus_A"]),
        # a decision about an erased row changes nothing
        ([marker(0), A1, Decision(A1.row_id, "crm", RETRYING, 1_000, 2_000)], []),
    ],
)
def test_markers_hide_the_dead_letters_at_their_places(
    items: list[DeadLetter | Decision], listed: list[str]
) -> None:
    queue = fold(items)
    assert customers(queue) == listed
    assert queue.open_count == len(listed)


def test_an_erased_row_is_gone_from_every_view() -> None:
    queue = fold([A1, B1])
    assert queue.counts()  # cached views, rebuilt after the marker
    version = queue.version
    assert queue.add_decision(marker(0)) == A1.row_id
    assert queue.version > version
    assert queue.row(A1.row_id) is None
    assert [r.row_id for r in queue.visible()] == [B1.row_id]
    assert sum(queue.counts().values()) == 1
    assert queue.add_decision(marker(0)) is None  # twice: nothing more


@settings(max_examples=60, deadline=None)
@given(st.permutations([A1, A2, B1, A1_AGAIN, marker(0), marker(1), marker(3)]))
def test_any_read_order_gives_the_same_queue(items: list[DeadLetter | Decision]) -> None:
    assert customers(fold(items)) == ["cus_B"]


def test_a_marker_names_no_customer() -> None:
    record = erased_marker(3, 41, 5_000)
    assert record["row_id"] == "erased:dlq:3:41"
    assert "cus_" not in repr(record)
