"""Handing messages to a confluent-kafka producer: the one place every process does it.

``Producer.produce()`` only enqueues, and raises ``BufferError`` while librdkafka's local
queue is full (the broker is slow or away): the message was not taken, and only serving
the delivery reports of those before it makes room. So a producer must be polled, a full
queue waited out (a bounded number of times, or the caller would hang with the broker
away), and flushed before its process says a message was written
(confluent-kafka's ``examples/producer.py`` does the same three).

Two shapes, for the two kinds of caller:

* a thread that owns its producer (``produce``, ``Deliveries``): on a full queue it polls
  the producer itself, which serves the reports that free the room;
* an asyncio loop that polls the producer on its own timer (``produce_on_loop``,
  ``delivery_future``, ``drain_on_loop``): on a full queue it sleeps, so the loop's timer
  serves the reports; a report resolves a future on the loop's own thread.

A ``KafkaException`` from ``produce`` (unknown topic, a message over the size limit) is
the caller's to answer: it says the message can never be taken, not that room is short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

#: What librdkafka calls with each message's delivery report (error None: acknowledged).
DeliveryCallback = Callable[[KafkaError | None, Message], None]
Headers = Sequence[tuple[str, str | bytes | None]]

#: How long one wait for room lasts, and how many waits before giving up (at most 10 s in all).
FULL_WAIT_S = 0.1
FULL_ATTEMPTS = 100


def _arguments(
    on_delivery: DeliveryCallback, headers: Headers | None, partition: int | None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"on_delivery": on_delivery}
    if headers:
        kwargs["headers"] = list(headers)
    if partition is not None:
        kwargs["partition"] = partition
    return kwargs


def produce(
    producer: Producer,
    topic: str,
    key: bytes | str,
    value: bytes | None,
    on_delivery: DeliveryCallback,
    *,
    headers: Headers | None = None,
    partition: int | None = None,
    attempts: int | None = FULL_ATTEMPTS,
    wait_s: float = FULL_WAIT_S,
) -> bool:
    """Enqueue one message; while the local queue is full, serve delivery reports for
    ``wait_s`` (``poll``) and try again, ``attempts`` times (None: until it fits).

    True once enqueued, False when the queue stayed full (the message was not taken).
    """
    kwargs = _arguments(on_delivery, headers, partition)
    tried = 0
    while True:
        try:
            producer.produce(topic, value=value, key=key, **kwargs)
            return True
        except BufferError:
            producer.poll(wait_s)
            tried += 1
            if attempts is not None and tried >= attempts:
                return False


async def produce_on_loop(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes,
    on_delivery: DeliveryCallback,
    *,
    headers: list[tuple[str, str | bytes | None]],
    give_up_at: float,
    wait_s: float,
) -> bool:
    """``produce`` for a producer the running loop polls on its own timer: while the local
    queue is full, sleep ``wait_s`` (the loop's polls free the room) and try again, until
    ``give_up_at`` (loop time). True once enqueued, False when the deadline came first."""
    while True:
        try:  # on the loop for every request: no argument dict, no loop lookup on this path
            producer.produce(topic, value, key, on_delivery=on_delivery, headers=headers)
            return True
        except BufferError:
            if asyncio.get_running_loop().time() + wait_s >= give_up_at:
                return False
            await asyncio.sleep(wait_s)


def delivery_future(
    loop: asyncio.AbstractEventLoop,
) -> tuple[asyncio.Future[KafkaError | None], DeliveryCallback]:
    """A future for one message's delivery report, and the callback that answers it with
    the report's error (None: acknowledged). The producer must be polled on ``loop``'s own
    thread (``produce_on_loop``'s callers), as the callback sets the result directly."""
    future: asyncio.Future[KafkaError | None] = loop.create_future()

    def on_delivery(error: KafkaError | None, _: Message) -> None:
        if not future.done():  # answered already: its deadline passed
            future.set_result(error)

    return future, on_delivery


async def drain_on_loop(producer: Producer, give_up_at: float, wait_s: float) -> int:
    """Wait until every message enqueued was reported or ``give_up_at`` (loop time) came,
    while the loop's own timer polls the producer; the number still unreported."""
    loop = asyncio.get_running_loop()
    # no event tells when librdkafka's queue is empty: look again every wait_s
    while len(producer) and loop.time() < give_up_at:  # noqa: ASYNC110
        await asyncio.sleep(wait_s)
    return len(producer)


@dataclass
class Deliveries:
    """The delivery reports of what one thread produced since its last ``flush``: each
    failed report's error is kept; ``on_ack`` (optional) sees each acknowledged message."""

    on_ack: Callable[[Message], None] | None = None
    #: how a failed report is written down (``KafkaError.name`` or ``str``)
    describe: Callable[[KafkaError], str] = KafkaError.name
    failures: list[str] = field(default_factory=list)

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failures.append(self.describe(error))
        elif self.on_ack is not None:
            self.on_ack(message)

    def flush(self, producer: Producer, timeout_s: float) -> tuple[int, list[str]]:
        """Wait up to ``timeout_s`` for every report: (how many never came, the failures
        reported since the last flush); the failures start again empty."""
        left = producer.flush(timeout_s)
        failures, self.failures = self.failures, []
        return left, failures
