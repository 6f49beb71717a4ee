"""App events' ``created`` is bounded by their signature's ``t`` (SPEC §3): 400 outside
[t - 7 days, t + 5 minutes], so an app event cannot pin a state into the future."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.envelope import (
    APP_CREATED_AFTER_S,
    APP_CREATED_BEFORE_S,
    app_created_in_window,
    parse_app_event,
)
from ingest.errors import MalformedEvent

T = 1_765_000_000
DAY = 86_400


def body(created: int) -> str:
    return json.dumps(
        {
            "id": "app_w1",
            "type": "onboarding.started",
            "created": created,
            "stripe_customer_id": "cus_W",
        }
    )


@pytest.mark.parametrize(
    ("created", "accepted"),
    [
        (T, True),
        (T + 300, True),  # five minutes after t: a clock a little ahead
        (T + 301, False),
        (T + 365 * DAY, False),  # a year ahead (answered 200 before)
        (2**63 - 1, False),
        (T - 7 * DAY, True),
        (T - 7 * DAY - 1, False),
        (0, False),
    ],
)
def test_created_around_the_signature_time(created: int, accepted: bool) -> None:
    assert app_created_in_window(created, T) is accepted
    if accepted:
        out = parse_app_event(body(created), received_at_ms=1, correlation_id="c", signed_at=T)
        assert out.record["created"] == created
    else:
        with pytest.raises(MalformedEvent):
            parse_app_event(body(created), received_at_ms=1, correlation_id="c", signed_at=T)


@given(signed_at=st.integers(0, 2**40), offset=st.integers(-(2**40), 2**40))
def test_accepted_exactly_inside_the_window(signed_at: int, offset: int) -> None:
    created = signed_at + offset
    inside = -APP_CREATED_BEFORE_S <= offset <= APP_CREATED_AFTER_S
    if created < 0:  # not a unix time at all
        inside = False
    try:
        out = parse_app_event(
            body(created), received_at_ms=1, correlation_id="c", signed_at=signed_at
        )
    except MalformedEvent:
        assert not inside
    else:
        assert inside
        assert out.record["created"] <= signed_at + APP_CREATED_AFTER_S
