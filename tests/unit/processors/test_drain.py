"""The worker's drain loop (``processors._faust._drain``), on mode's own ``wait_first``.

The consumer here has exactly what the loop uses of a Faust consumer; its ``getmany``
and ``callback`` behave as Faust's do around a rebalance: ``getmany`` stops yielding once
the flow is suspended, and the callback (Faust's ``on_message``) blocks on flow control
while it is. The real loop runs in the worker's integration tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import mode
import pytest
from faust.types import TP

from processors._faust import _drain, drain_per_fetch

PARTITION = TP("paystream.stripe.events", 0)


@dataclass
class Record:
    offset: int


class ScriptedConsumer(mode.Service):
    """A Faust consumer's drain-loop surface, fetching the scripted offsets in turn."""

    consumer_stopped_errors: tuple[type[BaseException], ...] = ()

    def __init__(
        self,
        fetches: Iterable[list[int]],
        *,
        commit_every: int | None = None,
        suspend_at: int | None = None,
    ) -> None:
        super().__init__()
        self.fetches = list(fetches)
        self.suspend_at = suspend_at
        self.suspend_flow = asyncio.Event()
        self.app = SimpleNamespace(should_stop=False)
        self._commit_every = commit_every
        self._n_acked = 0
        self.delivered: list[int] = []
        self.commits_at: list[int] = []
        self.fetch_calls = 0

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Record]]:  # noqa: ASYNC109 - Faust's signature
        self.fetch_calls += 1
        # Faust's _wait_next_records waits here until the rebalance resumes the flow
        self.suspend_flow.clear()
        if not self.fetches:
            self._stopped.set()
            return
        for offset in self.fetches.pop(0):
            if self.suspend_flow.is_set():  # Faust: ``if not self.flow_active: break``
                break
            yield PARTITION, Record(offset)

    async def callback(self, message: Record) -> None:
        if self.suspend_flow.is_set():  # Faust's on_message: ``await acquire_flow_control()``
            await asyncio.Event().wait()
        self.delivered.append(message.offset)
        self._n_acked += 1
        if message.offset == self.suspend_at:
            self.suspend_flow.set()  # a rebalance starts (Consumer.stop_flow)
            await asyncio.sleep(0)

    async def commit(self) -> None:
        self.commits_at.append(len(self.delivered))


def fetcher() -> Any:
    return SimpleNamespace(_stopped=asyncio.Event())


async def drain(consumer: ScriptedConsumer) -> None:
    await asyncio.wait_for(_drain(consumer, fetcher()), 5)


@pytest.mark.parametrize(
    ("fetches", "delivered"),
    [
        ([[5, 6, 7], [8, 9]], [5, 6, 7, 8, 9]),
        # after a seek back (a rebalance, a restart of the fetch): Faust's read offset
        # would drop 3..7 as already read and count the skipped offsets as acked
        ([[5, 6, 7], [3, 4, 5, 6, 7, 8]], [5, 6, 7, 3, 4, 5, 6, 7, 8]),
        # a stale record fetched before the seek, delivered after it
        ([[866], [6073], [866, 867]], [866, 6073, 866, 867]),
        ([[], [1]], [1]),
    ],
    ids=["in-order", "seek-back", "stale-fetch", "empty-fetch"],
)
async def test_every_fetched_record_reaches_the_agent_in_fetch_order(
    fetches: list[list[int]], delivered: list[int]
) -> None:
    consumer = ScriptedConsumer(fetches)
    await drain(consumer)
    assert consumer.delivered == delivered


async def test_a_rebalance_stops_delivery_within_the_fetch_and_it_comes_again() -> None:
    consumer = ScriptedConsumer([list(range(1, 201)), [3, 4]], suspend_at=2)
    await drain(consumer)
    # the rest of the first fetch was dropped unacked; the fetch after the seek has it
    assert consumer.delivered == [1, 2, 3, 4]
    assert consumer.fetch_calls == 3  # no spinning while the flow was suspended


async def test_offsets_are_committed_every_n_acks_as_faust_does() -> None:
    consumer = ScriptedConsumer([[1, 2, 3], [4, 5, 6, 7]], commit_every=3)
    await drain(consumer)
    assert consumer.delivered == [1, 2, 3, 4, 5, 6, 7]
    assert consumer.commits_at == [3, 6]  # before the record after every third ack


async def test_a_failed_delivery_reaches_the_fetcher() -> None:
    consumer = ScriptedConsumer([[1, 2]])

    async def broken(message: Record) -> None:
        raise ValueError("decode failed")

    consumer.callback = broken  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="decode failed"):
        await drain(consumer)


@pytest.mark.parametrize("app_stopping", [True, False], ids=["app-stops", "rebalance"])
async def test_a_cancelled_loop_ends_quietly_only_when_the_app_stops(app_stopping: bool) -> None:
    consumer = ScriptedConsumer([[1]])

    async def waiting(message: Record) -> None:
        await asyncio.Event().wait()  # the stream's queue is full

    consumer.callback = waiting  # type: ignore[method-assign]
    consumer.app.should_stop = app_stopping
    task = asyncio.ensure_future(_drain(consumer, fetcher()))
    await asyncio.sleep(0.01)
    task.cancel()
    if app_stopping:
        await asyncio.wait_for(task, 5)
        assert not task.cancelled()
    else:  # Faust's Fetcher restarts the loop on a cancel during a rebalance
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


def test_the_consumer_is_given_the_loop() -> None:
    consumer = SimpleNamespace()
    drain_per_fetch(consumer)
    assert consumer._drain_messages.func is _drain and consumer._drain_messages.args == (consumer,)
