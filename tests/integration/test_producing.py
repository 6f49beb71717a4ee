"""``paystream.runtime.producing`` with real librdkafka producers: one against the session's
broker, whose local queue holds a single message (so every produce after the first meets
``BufferError`` until a delivery report makes room), and one whose broker address has
nobody listening (so no room is ever made and no report ever comes in time)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Message, Producer

from paystream.runtime.broker import free_port
from paystream.runtime.producing import (
    Deliveries,
    delivery_future,
    drain_on_loop,
    produce,
    produce_on_loop,
)
from paystream.settings import CommonSettings
from tests.kafka_helpers import consume

#: one message in librdkafka's local queue at a time
ONE_AT_A_TIME = {"queue.buffering.max.messages": 1, "linger.ms": 50}


def _producer(config: dict[str, Any]) -> Iterator[Producer]:
    producer = Producer(config)
    try:
        yield producer
    finally:
        producer.purge()
        producer.flush(0)


@pytest.fixture
def one_slot(pipeline_settings: CommonSettings) -> Iterator[Producer]:
    yield from _producer(pipeline_settings.producer_config(**ONE_AT_A_TIME))


@pytest.fixture
def nowhere() -> Iterator[Producer]:
    config = {
        "bootstrap.servers": f"127.0.0.1:{free_port()}",
        "log_level": 0,
        "message.timeout.ms": 300,
        **ONE_AT_A_TIME,
    }
    yield from _producer(config)


def test_a_full_queue_is_waited_out_and_every_message_arrives(
    one_slot: Producer, pipeline_settings: CommonSettings
) -> None:
    topic = pipeline_settings.topics.sink_results
    acked: list[Message] = []
    deliveries = Deliveries(on_ack=acked.append)
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        assert produce(one_slot, topic, key, key.encode(), deliveries, wait_s=0.05)
    assert deliveries.flush(one_slot, 30) == (0, [])
    assert [m.key() for m in acked] == [k.encode() for k in keys]
    found = consume(pipeline_settings, topic, until=lambda ms: len(ms) >= len(keys))
    assert sorted(m.value() for m in found) == sorted(k.encode() for k in keys)


def test_a_queue_that_stays_full_gives_up_after_its_attempts(nowhere: Producer) -> None:
    deliveries = Deliveries()
    assert produce(nowhere, "nowhere", "first", b"1", deliveries)
    assert not produce(nowhere, "nowhere", "second", b"2", deliveries, attempts=3, wait_s=0.02)
    # the first times out; the second was never taken, so no report of it ever comes
    assert deliveries.flush(nowhere, 10) == (0, ["_MSG_TIMED_OUT"])


def test_a_report_that_failed_is_kept_until_the_flush(nowhere: Producer) -> None:
    deliveries = Deliveries()
    assert produce(nowhere, "nowhere", "key", b"value", deliveries)
    left, failures = deliveries.flush(nowhere, 10)
    assert (left, failures) == (0, ["_MSG_TIMED_OUT"])
    assert deliveries.failures == []  # a flush starts the count again


async def _polled(producer: Producer, stop: asyncio.Event) -> None:
    """What the ingest loop's own timer does: serve the reports every millisecond."""
    while not stop.is_set():
        producer.poll(0)
        await asyncio.sleep(0.001)


async def test_on_a_loop_the_future_holds_the_report_and_the_drain_waits_for_it(
    one_slot: Producer, pipeline_settings: CommonSettings
) -> None:
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    poller = asyncio.create_task(_polled(one_slot, stop))
    futures = []
    try:
        for i in range(3):  # the second and third wait for the first one's report
            future, on_delivery = delivery_future(loop)
            taken = await produce_on_loop(
                one_slot,
                pipeline_settings.topics.sink_results,
                b"key",
                str(i).encode(),
                on_delivery,
                headers=[("h", b"v")],
                give_up_at=loop.time() + 30,
                wait_s=0.01,
            )
            assert taken
            futures.append(future)
        assert await drain_on_loop(one_slot, loop.time() + 30, 0.01) == 0
        assert [f.result() for f in futures] == [None, None, None]
    finally:
        stop.set()
        await poller


async def test_on_a_loop_a_full_queue_gives_up_at_its_deadline(nowhere: Producer) -> None:
    loop = asyncio.get_running_loop()
    first, on_first = delivery_future(loop)
    assert await produce_on_loop(
        nowhere,
        "nowhere",
        b"k",
        b"1",
        on_first,
        headers=[],
        give_up_at=loop.time() + 5,
        wait_s=0.01,
    )
    give_up_at = loop.time() + 0.1
    _, on_second = delivery_future(loop)
    taken = await produce_on_loop(
        nowhere, "nowhere", b"k", b"2", on_second, headers=[], give_up_at=give_up_at, wait_s=0.01
    )
    assert not taken
    assert loop.time() >= give_up_at - 0.01
    # nobody polls: the drain gives up at its deadline with the first message unreported
    assert await drain_on_loop(nowhere, loop.time() + 0.1, 0.01) > 0
    assert not first.done()
