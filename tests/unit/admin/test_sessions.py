"""The fold of ended admin sessions: tables of cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from admin.security import Sessions
from admin.sessions import (
    EVERYWHERE,
    Ended,
    SessionTable,
    ended_of,
    ended_record,
    fold,
    is_ended,
    prune,
    session_id,
)

A, B = "nonce-a", "nonce-b"


@pytest.mark.parametrize(
    ("records", "nonce", "issued_ms", "ended"),
    [
        ([], A, 1_000, False),
        ([Ended(session_id(A), 2_000)], A, 1_000, True),
        ([Ended(session_id(A), 2_000)], B, 1_000, False),  # only that session
        ([Ended(EVERYWHERE, 2_000)], A, 1_000, True),
        ([Ended(EVERYWHERE, 2_000)], B, 2_000, True),  # issued the same ms: ended
        ([Ended(EVERYWHERE, 2_000)], B, 2_001, False),  # signed in afterwards
        ([Ended(EVERYWHERE, 5_000), Ended(EVERYWHERE, 2_000)], B, 3_000, True),  # latest wins
        ([Ended(session_id(B), 9_000), Ended(EVERYWHERE, 2_000)], A, 3_000, False),
    ],
)
def test_which_sessions_have_ended(
    records: list[Ended], nonce: str, issued_ms: int, ended: bool
) -> None:
    assert is_ended(fold(SessionTable(), records), nonce, issued_ms) is ended


def test_the_id_is_not_the_nonce_and_is_stable() -> None:
    assert session_id(A) == session_id(A) != session_id(B)
    assert A not in session_id(A) and len(session_id(A)) == 32


def test_prune_forgets_what_has_expired_anyway() -> None:
    table = fold(SessionTable(), [Ended(session_id(A), 1_000), Ended(session_id(B), 50_000)])
    pruned = prune(table, now_ms=60_000, max_age_ms=20_000)
    assert set(pruned.ended) == {session_id(B)}
    # what was pruned could not be used anyway: its cookie is older than the longest session
    sessions = Sessions("t" * 32, max_age_s=20)
    assert sessions.read(sessions.issue(0.9, nonce=A), 60.0) is None
    assert prune(pruned, 60_000, 20_000) is pruned  # nothing to forget: the same table


@pytest.mark.parametrize(
    "record",
    [
        {"session": "short", "ended_at_ms": 1},
        {"session": session_id(A)},
        {"ended_at_ms": 1},
        {"session": session_id(A), "ended_at_ms": "soon"},
    ],
)
def test_a_bad_record_is_refused(record: dict[str, object]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        ended_of(record)


_ids = st.sampled_from([session_id(A), session_id(B), session_id("c"), EVERYWHERE])
_records = st.lists(st.builds(Ended, _ids, st.integers(0, 10_000)), max_size=30)


@given(_records, st.randoms(use_true_random=False))
def test_fold_is_commutative_and_idempotent(records: list[Ended], rnd: object) -> None:
    shuffled = list(records) * 2
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    one_by_one = SessionTable()
    for record in shuffled:
        one_by_one = fold(one_by_one, [record])
    assert fold(SessionTable(), records) == fold(SessionTable(), shuffled) == one_by_one


@given(_records)
def test_records_round_trip(records: list[Ended]) -> None:
    assert [ended_of(ended_record(r)) for r in records] == records


@given(_records, st.integers(0, 10_000))
def test_signing_out_everywhere_ends_every_earlier_session(
    records: list[Ended], at_ms: int
) -> None:
    table = fold(SessionTable(), [*records, Ended(EVERYWHERE, at_ms)])
    assert all(is_ended(table, n, issued) for n in (A, B) for issued in (0, at_ms))
