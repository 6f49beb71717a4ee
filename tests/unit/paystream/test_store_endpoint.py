"""The query endpoint's bearer check and the read settings (pure parts)."""

from __future__ import annotations

import pytest

from paystream.bearer import bearer_matches
from paystream.runtime.store import READ_ONLY, as_subquery

TOKEN = "s3cr3t-t0ken"


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {TOKEN}", True),
        (None, False),
        ("", False),
        (TOKEN, False),
        (f"Basic {TOKEN}", False),
        (f"bearer {TOKEN}", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        ("Bearer ", False),
        (f"Bearer  {TOKEN}", False),
    ],
)
def test_only_the_exact_bearer_token_is_accepted(header: str | None, ok: bool) -> None:
    assert bearer_matches(header, TOKEN) is ok


def test_reads_carry_readonly_1() -> None:
    assert READ_ONLY == {"readonly": 1}


@pytest.mark.parametrize(
    ("sql", "wrapped"),
    [
        ("SELECT 1", "SELECT * FROM (\nSELECT 1\n)"),
        ("  SELECT 1;  ", "SELECT * FROM (\nSELECT 1\n)"),
        ("SELECT 1 -- note", "SELECT * FROM (\nSELECT 1 -- note\n)"),
    ],
)
def test_a_read_runs_as_a_subquery(sql: str, wrapped: str) -> None:
    assert as_subquery(sql) == wrapped
