"""One confluent-kafka producer for everything the worker writes: commands and changelogs.

Faust's own producer sends one message per request on the embedded broker; librdkafka
batches. The agent produces a whole batch, then awaits ``flush()``; only then does the
stream ack the batch's events, so an offset is never committed before its effects are
durably in Kafka (at-least-once, with idempotent effects).
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import Message, Producer

from paystream.runtime.producing import Deliveries, produce
from processors.errors import RetryableProcessorError


class Publisher:
    """Produce without waiting; ``flush()`` waits for every delivery report."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._producer: Producer | None = None
        self._deliveries = Deliveries(on_ack=self._on_ack)
        #: (topic, partition) → highest offset acknowledged by the broker in this run
        self.acked: dict[tuple[str, int], int] = {}

    def start(self) -> None:
        if self._producer is None:
            self._producer = Producer(self._config)

    def _on_ack(self, msg: Message) -> None:
        tp, offset = (msg.topic(), msg.partition()), msg.offset()
        if offset is not None and offset > self.acked.get(tp, -1):  # type: ignore[arg-type]
            self.acked[tp] = offset  # type: ignore[index]

    def produce(
        self, topic: str, key: bytes, value: bytes | None, partition: int | None = None
    ) -> None:
        producer = self._producer
        if producer is None:
            raise RetryableProcessorError("publisher not started")
        # a full local queue is waited out however long it lasts: librdkafka makes room as
        # it reports each message before this one, delivered or timed out
        produce(
            producer,
            topic,
            key,
            value,
            self._deliveries,
            partition=partition,
            attempts=None,
            wait_s=0.05,
        )

    def flush_sync(self, timeout: float = 30.0) -> None:
        producer = self._producer
        if producer is None:
            return
        remaining, failures = self._deliveries.flush(producer, timeout)
        if remaining or failures:
            reason = failures[0] if failures else f"{remaining} messages not delivered"
            raise RetryableProcessorError(f"publish failed: {reason}")

    async def flush(self, wait_s: float = 30.0) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.flush_sync, wait_s)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush and drop the producer; True when everything produced was acknowledged."""
        producer, self._producer = self._producer, None
        if producer is None:
            return not self._deliveries.failures
        left = producer.flush(timeout)
        return left == 0 and not self._deliveries.failures
