"""What an API's error answer may leave in our logs and dead letters: its status and
category, never its free text (which quotes the request: emails, names)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sinks._http import HttpAnswer, check, error_category
from sinks.errors import PermanentSinkError, RetryableSinkError
from sinks.hubspot import HubSpotClient

QUOTING = (
    'Property values were not valid: [{"isValid":false,"message":"Email address '
    'jane@example.com is invalid","error":"INVALID_EMAIL","name":"email"}]'
)


@pytest.mark.parametrize(
    ("body", "category"),
    [
        (
            {"status": "error", "message": QUOTING, "category": "VALIDATION_ERROR"},
            "VALIDATION_ERROR",
        ),
        (
            {"category": "VALIDATION_ERROR", "subCategory": "INVALID_EMAIL", "message": "x"},
            "VALIDATION_ERROR/INVALID_EMAIL",
        ),
        (
            {"error": "RecordInvalid", "description": "Email jane@example.com taken"},
            "RecordInvalid",
        ),
        ({"error": {"title": "Forbidden", "message": "no"}}, ""),
        ({"category": "jane@example.com"}, ""),
        ({"category": "two words"}, ""),
        ({"category": "A" * 65}, ""),
        ({"message": "only text"}, ""),
        ("a string body", ""),
        (None, ""),
        ([{"category": "VALIDATION_ERROR"}], ""),
    ],
)
def test_error_category_keeps_code_words_only(body: Any, category: str) -> None:
    assert error_category(body) == category


@pytest.mark.parametrize(("status", "kind"), [(400, PermanentSinkError), (503, RetryableSinkError)])
def test_check_names_status_and_category_not_the_message(
    status: int, kind: type[PermanentSinkError | RetryableSinkError]
) -> None:
    body = {"status": "error", "message": QUOTING, "category": "VALIDATION_ERROR"}
    with pytest.raises(kind) as raised:
        check(HttpAnswer(status, {}, body), "HubSpot batch upsert", None)
    assert str(raised.value).endswith(f"HubSpot batch upsert answered {status} (VALIDATION_ERROR)")


def test_a_207_names_the_first_error_category_only() -> None:
    body = {
        "status": "COMPLETE",
        "numErrors": 1,
        "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": QUOTING}],
        "results": [],
    }
    with pytest.raises(PermanentSinkError) as raised:
        HubSpotClient._written(HttpAnswer(207, {}, body), "HubSpot batch upsert")
    assert raised.value.detail == "HubSpot batch upsert answered 207 (VALIDATION_ERROR)"


_texts = st.text(min_size=0, max_size=80)
_emails = st.emails()


@given(
    email=_emails,
    before=_texts,
    keys=st.lists(st.sampled_from(["message", "category", "subCategory", "error", "description"])),
)
def test_no_email_of_any_field_survives(email: str, before: str, keys: list[str]) -> None:
    body = {key: before + email for key in keys}
    with pytest.raises(PermanentSinkError) as raised:
        check(HttpAnswer(400, {}, body), "HubSpot", None)
    assert "@" not in raised.value.detail
    assert email not in raised.value.detail
