"""The publisher's deadline: every publish that gets no delivery report is answered
``PublishTimeout`` at its own deadline (one timer serves them all, in deadline order).

The producer is real; its broker address has nobody listening, so no report ever comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ingest.errors import PublishTimeout
from ingest.publisher import Publisher
from paystream.runtime.broker import free_port

TIMEOUT_S = 1.0
#: A loaded 2-core machine may run a timer late, never early.
LATE_S = 0.5


@pytest.fixture
async def publisher() -> AsyncIterator[Publisher]:
    config = {"bootstrap.servers": f"127.0.0.1:{free_port()}", "log_level": 0}
    publisher = Publisher(config, TIMEOUT_S)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.close(0.0)


async def _timed_publish(publisher: Publisher, loop: asyncio.AbstractEventLoop) -> float:
    """Seconds from the publish to its ``PublishTimeout``."""
    started = loop.time()
    with pytest.raises(PublishTimeout):  # a publish that hangs fails with TimeoutError
        publish = publisher.publish("nowhere", b"key", b"value", [])
        await asyncio.wait_for(publish, TIMEOUT_S + LATE_S + 1)
    return loop.time() - started


async def test_each_publish_times_out_at_its_own_deadline(publisher: Publisher) -> None:
    loop = asyncio.get_running_loop()
    waits = []
    for _ in range(3):  # started 0.3 s apart: one deadline passes while the others wait
        waits.append(asyncio.create_task(_timed_publish(publisher, loop)))
        await asyncio.sleep(0.3)
    for elapsed in await asyncio.gather(*waits):
        assert TIMEOUT_S <= elapsed < TIMEOUT_S + LATE_S


async def test_the_deadline_holds_after_a_cancelled_publish_and_an_idle_spell(
    publisher: Publisher,
) -> None:
    loop = asyncio.get_running_loop()
    cancelled = asyncio.create_task(publisher.publish("nowhere", b"key", b"value", []))
    await asyncio.sleep(0.2)
    later = asyncio.create_task(_timed_publish(publisher, loop))
    await asyncio.sleep(0)
    cancelled.cancel()  # its client went away: it must not hold the others up
    assert TIMEOUT_S <= await later < TIMEOUT_S + LATE_S
    await asyncio.sleep(TIMEOUT_S)  # nothing in flight: the timer rests
    assert TIMEOUT_S <= await _timed_publish(publisher, loop) < TIMEOUT_S + LATE_S


async def test_closing_answers_the_publishes_still_waiting(publisher: Publisher) -> None:
    loop = asyncio.get_running_loop()
    waiting = asyncio.create_task(_timed_publish(publisher, loop))
    await asyncio.sleep(0.1)
    assert await publisher.close(0.1) == 1  # the message was never sent
    assert await waiting < TIMEOUT_S  # answered by the close, not by its deadline
