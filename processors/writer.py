"""Table writes one step behind the commands, and a barrier in front of every commit.

For each batch the agent produces the commands and hands the batch's table updates to the
``TableWriter``; it does not wait. The writer, in batch order, waits until everything
produced so far is durable (the batch's commands included), then writes the tables (local
store + changelog). Faust commits offsets only after ``barrier()``: every write scheduled
so far is done and flushed. So, for any committed offset, the commands and then the table
changelogs of every event before it are durable — the same order the simple
flush-per-step loop gives, without the agent idling while librdkafka flushes.

Until the writer has written them, the agent reads a batch's records from the overlay
(``records``; ``erased`` names the customers ``paystream forget`` erased, whose records
read as none until their deletion is written).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from processors._faust import wrap_before_commit
from processors.errors import BatchFailed
from processors.lifecycle import CustomerRecord
from processors.offsets import HandledOffsets, Held, Partition
from processors.pipeline import BatchResult
from processors.publisher import Publisher

Write = Callable[[BatchResult], None]


class TableWriter:
    """Serialises table writes behind command delivery; see the module docstring."""

    def __init__(self, publisher: Publisher, write: Write, max_in_flight: int = 2) -> None:
        self._publisher = publisher
        self._write = write
        self._max_in_flight = max_in_flight
        self._in_flight: deque[asyncio.Future[None]] = deque()
        self._tail: asyncio.Future[None] | None = None
        self.records: dict[str, CustomerRecord] = {}
        self.seen: dict[str, bytes] = {}
        #: customer id → the batch that erased it, until that batch's deletion is written
        self.erased: dict[str, BatchResult] = {}
        self._failed: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        """A batch failed: from now on ``barrier()`` raises, so no offset is committed.

        Faust's ``take_events`` acks a batch when the agent's loop exits, even by an
        exception, and the worker commits what is acked while it stops; without this the
        failed batch's offsets could be committed with none of its effects written.
        """
        if self._failed is None:
            self._failed = exc

    async def submit(self, result: BatchResult) -> None:
        """Schedule the batch's table writes; wait only when too many are in flight."""
        await self._reap(self._max_in_flight - 1)
        for customer in result.erased:
            self.records.pop(customer, None)
            self.erased[customer] = result
        for customer, (_p, record) in result.records.items():
            self.records[customer] = record
        for event_id, (_p, value) in result.seen.items():
            self.seen[event_id] = value
        # chain on the last write scheduled, whoever is reaping the deque meanwhile
        self._tail = asyncio.ensure_future(self._run(self._tail, result))
        self._in_flight.append(self._tail)

    async def _run(self, previous: asyncio.Future[None] | None, result: BatchResult) -> None:
        if previous is not None:
            await previous
        await self._publisher.flush()  # this batch's commands are durable
        self._write(result)
        for customer in result.erased:
            if self.erased.get(customer) is result:
                del self.erased[customer]
        for customer, (_p, record) in result.records.items():
            if self.records.get(customer) is record:
                del self.records[customer]
        for event_id, (_p, value) in result.seen.items():
            if self.seen.get(event_id) is value:
                del self.seen[event_id]

    async def _reap(self, keep: int) -> None:
        """Wait until at most ``keep`` writes are in flight; re-raise a failed one."""
        while True:
            while self._in_flight and self._in_flight[0].done():
                self._in_flight.popleft().result()
            if len(self._in_flight) <= keep:
                return
            await asyncio.wait([self._in_flight[0]])

    async def barrier(self) -> None:
        """Every write scheduled so far is done and every message produced is durable."""
        self._raise_if_failed()
        await self._reap(0)
        await self._publisher.flush()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            raise BatchFailed(f"a batch failed ({type(self._failed).__name__}): no commit")


def install_commit_barrier(
    consumer: Any,
    writer: TableWriter,
    offsets: HandledOffsets,
    resume_positions: Callable[[list[Partition]], dict[Partition, int]],
    on_held: Callable[[list[Held]], None],
) -> None:
    """Before Faust commits any offset: ``writer.barrier()``, then no offset past a record
    the agent has not handled (``processors.offsets``).

    ``resume_positions`` (blocking, run in a thread) tells where the group resumed reading
    a partition; it is asked once per partition and assignment, at its first commit: until
    then only this worker could have moved the committed offset, and it has not.
    """

    async def before_commit(commit: dict[Any, int]) -> None:
        await writer.barrier()
        for _attempt in range(3):  # a rebalance during the lookup makes its answer stale
            unknown = offsets.unknown_starts(commit)
            if not unknown:
                break
            generation = offsets.generation
            offsets.start_at(await asyncio.to_thread(resume_positions, unknown), generation)
        # still unknown: raises ResumePositionUnknown, nothing is committed
        held = offsets.hold_back(commit)
        if held:
            on_held(held)

    wrap_before_commit(consumer, before_commit)
