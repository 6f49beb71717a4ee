"""The producer helper's bookkeeping without a producer: what ``Deliveries`` keeps of the
reports librdkafka hands it, and the delivery future's one answer. (Producing itself, the
full-queue back-off and the flush: tests/integration/test_producing.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from paystream.runtime.producing import Deliveries, delivery_future

TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT)
TOO_LARGE = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)


@pytest.mark.parametrize(
    ("reports", "describe", "failures", "acked"),
    [
        ([None, None], KafkaError.name, [], 2),
        ([TIMED_OUT, None], KafkaError.name, ["_MSG_TIMED_OUT"], 1),
        ([TOO_LARGE, TIMED_OUT], KafkaError.name, ["MSG_SIZE_TOO_LARGE", "_MSG_TIMED_OUT"], 0),
        ([TIMED_OUT], str, [str(TIMED_OUT)], 0),
    ],
    ids=["all-acked", "one-failed", "both-failed-in-order", "described-by-str"],
)
def test_deliveries_keep_each_failure_and_show_each_ack(
    reports: list[KafkaError | None],
    describe: Callable[[KafkaError], str],
    failures: list[str],
    acked: int,
) -> None:
    seen: list[Any] = []
    deliveries = Deliveries(on_ack=seen.append, describe=describe)
    for i, error in enumerate(reports):
        deliveries(error, f"message {i}")  # type: ignore[arg-type]
    assert deliveries.failures == failures
    assert len(seen) == acked


async def test_the_delivery_future_holds_the_first_answer() -> None:
    future, on_delivery = delivery_future(asyncio.get_running_loop())
    assert not future.done()
    on_delivery(TIMED_OUT, None)  # type: ignore[arg-type]
    on_delivery(None, None)  # type: ignore[arg-type]  # a late report changes nothing
    assert future.result() is TIMED_OUT
