"""The demo's storylines end in the states the SPEC's derivation gives (folded through the
worker's pure lifecycle, as the pipeline folds them)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from paystream.storyline import storyline, two_subscriptions
from paystream.vocabulary import ACTIVE, CANCELED
from processors.events import from_stripe_envelope
from processors.lifecycle import CustomerRecord, apply

C = "cus_demo1"


def fold(events: list[dict[str, Any]]) -> CustomerRecord:
    record = CustomerRecord(C)
    for body in events:
        envelope = {
            "event_id": body["id"],
            "type": body["type"],
            "created": body["created"],
            "livemode": body["livemode"],
            "customer_id": C,
            "raw": json.dumps(body),
        }
        record = apply(record, from_stripe_envelope(envelope)).record
    return record


@pytest.mark.parametrize("seed", range(3))
def test_the_add_on_customer_stays_active_in_any_order(seed: int) -> None:
    events = two_subscriptions(C, 1_700_000_000)
    random.Random(seed).shuffle(events)
    record = fold(events)
    assert record.state == ACTIVE
    assert sorted(s.status for s in record.subscriptions) == ["ended", "paid"]


def test_the_demo_storyline_ends_canceled() -> None:
    record = fold(storyline(C, 1_700_000_000))
    assert record.state == CANCELED
    assert len(record.tickets) == 2  # the failed renewal, the chargeback
