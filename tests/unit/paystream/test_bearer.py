"""The one bearer check that every token-protected API of paystream uses."""

from __future__ import annotations

import pytest

from paystream.bearer import bearer_matches as authorized


@pytest.mark.parametrize(
    ("header", "token", "expected"),
    [
        ("Bearer t0k", "t0k", True),
        ("Bearer wrong", "t0k", False),
        ("t0k", "t0k", False),
        (None, "t0k", False),
        ("Bearer ", None, False),
        ("Basic t0k", "t0k", False),
    ],
)
def test_bearer(header: str | None, token: str | None, expected: bool) -> None:
    assert authorized(header, token) is expected
