"""The exception queue's fold, filters and paging: tables of cases and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paystream.exception_queue.fold import (
    DISMISSED,
    OPEN,
    RESOLVED,
    RETRYING,
    DeadLetter,
    Decision,
    ExceptionQueue,
    Filter,
    clean_reason,
    dismiss_decision,
    intervention_result,
    resolved_decision,
    retry_decisions,
    row_id_of,
    row_status,
    stripe_customer_url,
)
from paystream.vocabulary import DELIVERED


def dead(
    key: str = "crm:cus_A:evt_1",
    failed_at: int = 1_000,
    attempts: int = 1,
    reason: str = "http_400",
    sink: str = "crm",
    error: str = "bad request",
) -> DeadLetter:
    return DeadLetter(
        row_id=key,
        sink=sink,
        idempotency_key=key,
        reason_code=reason,
        last_error=error,
        attempts=attempts,
        failed_at_ms=failed_at,
        customer_id="cus_A",
        cause_event_id="evt_1",
        cause_event_type="invoice.paid",
        source_topic="p.sink.crm",
        command=b"\xc3\x01command",
    )


def decision(
    status: str, failed_at: int = 1_000, at: int = 2_000, key: str = "crm:cus_A:evt_1"
) -> Decision:
    return Decision(key, "crm", status, failed_at, at, "dup" if status == DISMISSED else "")


def delivered(
    key: str = "crm:cus_A:evt_1", acked: int = 3_000, outcome: str = "delivered"
) -> dict[str, Any]:
    return {"idempotency_key": key, "outcome": outcome, "acked_at_ms": acked}


@pytest.mark.parametrize(
    ("decision_", "delivered_at", "expected"),
    [
        (None, None, OPEN),
        (decision(RETRYING), None, RETRYING),
        (decision(DISMISSED), None, DISMISSED),
        (decision(RESOLVED), None, RESOLVED),
        # a decision about an earlier dead letter does not apply: dead-lettered again
        (decision(RETRYING, failed_at=500), None, OPEN),
        (decision(DISMISSED, failed_at=500), None, OPEN),
        # delivered after the dead letter: resolved whatever was decided
        (decision(RETRYING), 1_000, RESOLVED),
        (None, 5_000, RESOLVED),
        # delivered before this dead letter: that delivery was of an older failure
        (decision(RETRYING), 999, RETRYING),
        (None, 10, OPEN),
    ],
)
def test_row_status(decision_: Decision | None, delivered_at: int | None, expected: str) -> None:
    assert row_status(dead(), decision_, delivered_at) == expected


def test_retry_then_delivered_leaves_the_list() -> None:
    q = ExceptionQueue()
    q.add_dead_letter(dead())
    assert [r.status for r in q.visible()] == [OPEN]
    (d,) = retry_decisions(q.visible(), at_ms=2_000)
    q.add_decision(d)
    assert [r.status for r in q.visible()] == [RETRYING]
    assert q.open_count == 1
    q.add_result(delivered(acked=2_500))
    assert q.visible() == ()
    assert q.open_count == 0
    row = q.row("crm:cus_A:evt_1")
    assert row is not None and row.status == RESOLVED
    assert resolved_decision(row, 2_600) == Decision(
        "crm:cus_A:evt_1", "crm", RESOLVED, 1_000, 2_600
    )


def test_retry_that_fails_again_comes_back_with_the_new_error_and_attempts() -> None:
    q = ExceptionQueue()
    q.add_dead_letter(dead(attempts=6, reason="http_503", error="unavailable"))
    q.add_decision(decision(RETRYING))
    q.add_result({"idempotency_key": "crm:cus_A:evt_1", "outcome": "retry", "acked_at_ms": 2_500})
    assert q.visible()[0].status == RETRYING
    q.add_dead_letter(dead(failed_at=3_000, attempts=1, reason="http_400", error="invalid email"))
    (row,) = q.visible()
    assert (row.status, row.reason_code, row.dead_letter.last_error, row.attempts) == (
        OPEN,
        "http_400",
        "invalid email",
        7,
    )


def test_dismissed_rows_leave_the_list_and_keep_their_reason() -> None:
    q = ExceptionQueue()
    q.add_dead_letter(dead())
    (row,) = q.visible()
    q.add_decision(dismiss_decision(row, "  customer\ndeleted   in Stripe ", 5_000))
    assert q.visible() == ()
    gone = q.row(row.row_id)
    assert gone is not None and (gone.status, gone.note) == (
        DISMISSED,
        "customer deleted in Stripe",
    )


def test_only_open_decodable_rows_are_retried() -> None:
    q = ExceptionQueue()
    q.add_dead_letter(dead("crm:a"))
    q.add_dead_letter(dead("crm:b"))
    undecodable = dead("crm:dlq:0:7")
    q.add_dead_letter(
        DeadLetter(
            **{**undecodable.__dict__, "idempotency_key": "", "reason_code": "invalid_command"}
        )
    )
    q.add_decision(decision(RETRYING, key="crm:b"))
    assert [d.row_id for d in retry_decisions(q.visible(), 9)] == ["crm:a"]


def test_dry_run_counts_as_delivered_and_retry_outcomes_do_not() -> None:
    for outcome, status in [
        ("dry_run", RESOLVED),
        ("retry", OPEN),
        ("dead_lettered", OPEN),
        ("retried", OPEN),
        ("dismissed", OPEN),
    ]:
        q = ExceptionQueue()
        q.add_dead_letter(dead())
        q.add_result(delivered(outcome=outcome))
        row = q.row("crm:cus_A:evt_1")
        assert row is not None and row.status == status, outcome


@pytest.mark.parametrize(
    ("record", "partition", "offset", "expected"),
    [
        ({"idempotency_key": "crm:cus_A:evt_1", "sink": "crm"}, 0, 5, "crm:cus_A:evt_1"),
        ({"idempotency_key": "", "sink": "crm"}, 3, 17, "crm:dlq:3:17"),
        ({"sink": "helpdesk"}, 1, 2, "helpdesk:dlq:1:2"),
    ],
)
def test_row_ids(record: dict[str, Any], partition: int, offset: int, expected: str) -> None:
    assert row_id_of(record, partition, offset) == expected


@pytest.mark.parametrize(
    ("customer", "mode", "url"),
    [
        ("cus_ABC123", "test", "https://dashboard.stripe.com/test/customers/cus_ABC123"),
        ("cus_ABC123", "live", "https://dashboard.stripe.com/customers/cus_ABC123"),
        ("", "test", None),
        ("evt_1", "live", None),
        ("cus_A/../../x", "test", None),
        ('cus_A"><script>', "test", None),
    ],
)
def test_stripe_dashboard_link_by_mode(customer: str, mode: str, url: str | None) -> None:
    assert stripe_customer_url(customer, mode) == url


@pytest.mark.parametrize(
    ("text", "expected"),
    [("dup", "dup"), ("  a \n b\t", "a b"), ("x" * 500, "x" * 200), ("   ", "")],
)
def test_dismiss_reason_is_one_short_line(text: str, expected: str) -> None:
    assert clean_reason(text) == expected


def test_intervention_result_is_a_valid_sink_result() -> None:
    from schemas.codec import SINK_RESULT, default_codec

    q = ExceptionQueue()
    q.add_dead_letter(dead())
    record = intervention_result(q.visible()[0], "retried", 7_000)
    codec = default_codec()
    assert codec.decode_as(SINK_RESULT, codec.encode(SINK_RESULT, record)) == record
    assert (record["outcome"], record["acked_at_ms"], record["sink"]) == ("retried", 7_000, "crm")


# ----------------------------------------------------------------------- filters and paging


def filled(n: int) -> ExceptionQueue:
    q = ExceptionQueue()
    for i in range(n):
        q.add_dead_letter(
            dead(
                f"k{i:05d}",
                failed_at=1_000 + i,
                sink="crm" if i % 3 else "helpdesk",
                reason="http_400" if i % 2 else "http_503",
            )
        )
    return q


def test_newest_first_filters_and_pages() -> None:
    q = filled(10)
    page = q.page(Filter(), 1, 4)
    assert [r.row_id for r in page.rows] == ["k00009", "k00008", "k00007", "k00006"]
    assert (page.number, page.pages, page.total) == (1, 3, 10)
    assert page.sinks == ("crm", "helpdesk")
    assert page.reasons == ("http_400", "http_503")
    last = q.page(Filter(), 99, 4)  # past the end: the last page
    assert (last.number, [r.row_id for r in last.rows]) == (3, ["k00001", "k00000"])
    only = q.page(Filter(sink="helpdesk", reason="http_503"), 1, 50)
    assert [r.row_id for r in only.rows] == ["k00006", "k00000"]
    assert q.page(Filter(sink="nope"), 1, 50).total == 0
    assert q.counts()[next(iter(q.counts()))] >= 1
    assert sum(q.counts().values()) == q.open_count == 10


def test_paging_10000_open_rows_sorts_once_not_per_request() -> None:
    q = filled(10_000)
    q.page(Filter(), 1, 50)
    q.page(Filter(sink="crm"), 1, 50)
    first = q.work
    assert first >= 10_000  # the first page sorted and counted everything once
    for number in range(1, 200):
        page = q.page(Filter(), number, 50)
        assert len(page.rows) == 50
        q.page(Filter(sink="crm"), number, 50)
    assert q.work == first  # 400 more pages, no row touched again
    # one change → one rebuild, then cheap again
    q.add_decision(decision(DISMISSED, failed_at=1_000, key="k00000"))
    q.page(Filter(), 200, 50)
    assert q.open_count == 9_999
    rebuilt = q.work
    q.page(Filter(), 3, 50)
    assert q.work == rebuilt


# ----------------------------------------------------------------------- properties

keys = st.sampled_from(["crm:a", "crm:b", "paystream:chargeback:dp_1"])
times = st.integers(min_value=1, max_value=50)
inputs = st.one_of(
    st.builds(
        lambda k, t, a: ("dead", dead(k, failed_at=t, attempts=a)), keys, times, st.integers(1, 6)
    ),
    st.builds(
        lambda k, s, f, t: ("decision", Decision(k, "crm", s, f, t)),
        keys,
        st.sampled_from([RETRYING, DISMISSED, RESOLVED]),
        times,
        times,
    ),
    st.builds(
        lambda k, o, t: ("result", {"idempotency_key": k, "outcome": o, "acked_at_ms": t}),
        keys,
        st.sampled_from(["delivered", "dry_run", "retry", "dead_lettered", "retried"]),
        times,
    ),
)


def fold(items: list[tuple[str, Any]]) -> ExceptionQueue:
    q = ExceptionQueue()
    for kind, item in items:
        if kind == "dead":
            q.add_dead_letter(item)
        elif kind == "decision":
            q.add_decision(item)
        else:
            q.add_result(item)
    return q


def snapshot(q: ExceptionQueue) -> list[tuple[Any, ...]]:
    return sorted(
        (r.row_id, r.status, r.attempts, r.dead_letter.failed_at_ms, r.note)
        for r in (q.row(k) for k in ["crm:a", "crm:b", "paystream:chargeback:dp_1"])
        if r is not None
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(inputs, max_size=25), st.randoms(use_true_random=False))
def test_any_order_and_any_repetition_gives_the_same_queue(
    items: list[tuple[str, Any]], rnd: Any
) -> None:
    """Kafka gives the three topics in no common order, and at least once."""
    shuffled = items + rnd.sample(items, k=len(items) // 2)
    rnd.shuffle(shuffled)
    a, b = fold(items), fold(shuffled)
    assert snapshot(a) == snapshot(b)
    assert [r.row_id for r in a.visible()] == [r.row_id for r in b.visible()]
    assert a.open_count == len(a.visible()) == sum(a.counts().values())


@settings(max_examples=100, deadline=None)
@given(st.lists(inputs, max_size=25))
def test_the_page_shows_exactly_the_open_and_retrying_rows(items: list[tuple[str, Any]]) -> None:
    q = fold(items)
    shown = {r.row_id for r in q.page(Filter(), 1, 1000).rows}
    expected = {
        k
        for k in ["crm:a", "crm:b", "paystream:chargeback:dp_1"]
        if (row := q.row(k)) is not None and row.status in (OPEN, RETRYING)
    }
    assert shown == expected
    assert q.open_count == len(expected)


@pytest.mark.parametrize("status", [RETRYING, DISMISSED, RESOLVED])
def test_a_decision_whose_dead_letter_expired_shows_no_row(status: str) -> None:
    # sink.dlq expires (PAYSTREAM_DLQ_RETENTION); compacted admin.exceptions keeps the decision.
    q = ExceptionQueue()
    assert q.add_decision(decision(status)) is None
    q.add_result({"outcome": DELIVERED, "idempotency_key": "crm:cus_A:evt_1", "acked_at_ms": 9})
    assert (q.visible(), q.row("crm:cus_A:evt_1"), q.open_count) == ((), None, 0)
    assert q.resolved_unrecorded() == []
    q.add_dead_letter(dead())  # the same dead letter, if it is still there, gets its decision
    row = q.row("crm:cus_A:evt_1")
    assert row is not None and row.decision_status == status
