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
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from processors._faust import assigned, include_in_commits, on_confirmed, wrap_before_commit
from processors.errors import BatchFailed, ResumePositionUnknown
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


#: what ``include_in_commits`` puts for an input partition Faust left out: the barrier
#: sets the partition's frontier before Faust commits
NOT_ASKED = -1


def commit_plan(
    asked: Mapping[Any, int],
    frontiers: Mapping[Partition, int | None],
    committed: Mapping[Partition, int | None],
) -> tuple[dict[Any, int], list[Held]]:
    """What to commit, from what Faust ``asked`` (``NOT_ASKED``: a partition it left out).

    Each input partition (a key of ``frontiers``) is committed at its frontier, the first
    offset the agent has not handled, when that passes what the broker confirmed
    ``committed`` (nothing confirmed: when it passes 0); a partition whose start is
    unknown (frontier None) raises
    ``ResumePositionUnknown``, so nothing is committed. Any other partition goes as asked.
    ``Held`` names each partition where Faust asked past the frontier.

    Faust's own ask does not set the offset of an input partition: Faust asks only while
    its acked offsets run on from the committed one (``Consumer._new_offset``), so a head it
    lost (acks taken by a commit that did not finish, an ask lowered by this barrier)
    would keep the partition's commit where it is for the life of the process; and it
    notes an offset committed even when the broker refused the commit.
    """
    out: dict[Any, int] = {}
    held: list[Held] = []
    for tp, ask in asked.items():
        key = (tp[0], tp[1])
        if key not in frontiers:
            out[tp] = ask
            continue
        frontier = frontiers[key]
        if frontier is None:
            raise ResumePositionUnknown(f"{key[0]}[{key[1]}]")
        if ask > frontier:
            held.append(Held(key, ask, frontier))
        if frontier > (committed.get(key) or 0):
            out[tp] = frontier
    return out, held


def install_commit_barrier(
    consumer: Any,
    writer: TableWriter,
    offsets: HandledOffsets,
    resume_positions: Callable[[list[Partition]], dict[Partition, int]],
    on_held: Callable[[list[Held]], None],
) -> None:
    """Before Faust commits any offset: ``writer.barrier()``, then each assigned input
    partition at its frontier, the first offset the agent has not handled
    (``processors.offsets``, ``commit_plan``): never past it, and on to it even where
    Faust did not ask.

    ``resume_positions`` (blocking, run in a thread) tells where the group resumed reading
    a partition; it is asked once per partition and assignment, at its first commit: until
    then only this worker could have moved the committed offset, and it has not.
    """
    log = structlog.get_logger()
    #: input partition → the last offset the broker confirmed committed by this process
    confirmed: dict[Partition, int] = {}

    def note_confirmed(committed: Mapping[Any, int]) -> None:
        confirmed.update({(tp[0], tp[1]): o for tp, o in committed.items()})

    def include_assigned(commit: dict[Any, int]) -> None:
        for tp in assigned(consumer):
            if tp[0] in offsets.topics:
                commit.setdefault(tp, NOT_ASKED)

    async def before_commit(commit: dict[Any, int]) -> None:
        for _attempt in range(3):  # a rebalance during the lookup makes its answer stale
            unknown = offsets.unknown_starts(commit)
            if not unknown:
                break
            generation = offsets.generation
            offsets.start_at(await asyncio.to_thread(resume_positions, unknown), generation)
        inputs = [(tp[0], tp[1]) for tp in commit if tp[0] in offsets.topics]
        # the frontiers before the barrier: every record below them is durable after it
        frontiers = {p: offsets.frontier(*p) for p in inputs}
        await writer.barrier()
        plan, held = commit_plan(commit, frontiers, confirmed)
        if held:
            on_held(held)
        for tp, offset in plan.items():
            if (tp[0], tp[1]) in frontiers:
                ask = commit[tp] if commit[tp] != NOT_ASKED else None
                log.debug("offset commit", topic=tp[0], partition=tp[1], offset=offset, asked=ask)
        commit.clear()
        commit.update(plan)

    include_in_commits(consumer, include_assigned)
    on_confirmed(consumer, note_confirmed)
    wrap_before_commit(consumer, before_commit)
