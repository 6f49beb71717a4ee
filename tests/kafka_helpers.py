"""Test helpers that read topics the way a test needs: until a condition holds or idle.

Never wait on high-watermarks or lag: the embedded broker reports end offsets wrong.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Message, Producer

from paystream.settings import CommonSettings
from schemas.codec import default_codec


def consume(
    settings: CommonSettings,
    topic: str,
    *,
    until: Callable[[list[Message]], bool] | None = None,
    timeout: float = 30.0,
    idle: float = 3.0,
) -> list[Message]:
    """Read ``topic`` from the start with a fresh group, until ``until`` holds or it is idle.

    Without ``until``, read until nothing arrived for ``idle`` seconds after the first
    message (or ``timeout``).
    """
    consumer = Consumer(settings.consumer_config(f"test-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    last = None
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error() is None:
                    found.append(msg)
                    last = time.monotonic()
            if until is not None:
                if until(found):
                    break
            elif last is not None and time.monotonic() - last > idle:
                break
    finally:
        consumer.close()
    return found


def decode_all(messages: list[Message]) -> list[dict[str, Any]]:
    codec = default_codec()
    return [codec.decode(m.value())[1] for m in messages]


def produce(settings: CommonSettings, topic: str, items: list[tuple[str, bytes]]) -> None:
    """Produce ``(key, value)`` pairs durably and wait for every delivery report."""
    producer = Producer(settings.producer_config())
    errors: list[Any] = []
    for key, value in items:
        producer.produce(topic, key=key, value=value, on_delivery=lambda e, _m: errors.append(e))
    producer.flush(30)
    failed = [e for e in errors if e is not None]
    assert not failed, failed
    assert len(errors) == len(items)
