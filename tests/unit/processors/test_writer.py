"""TableWriter: table writes only after the commands are durable, in batch order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import faust.transport.consumer
import pytest
from faust.types import TP
from intervaltree import IntervalTree  # type: ignore[import-untyped]

from processors.errors import BatchFailed, ResumePositionUnknown
from processors.lifecycle import CustomerRecord
from processors.offsets import HandledOffsets, Held, Partition
from processors.pipeline import BatchResult
from processors.writer import NOT_ASKED, TableWriter, commit_plan, install_commit_barrier


class RecordingPublisher:
    """Stands in for the Kafka producer: records when flushes happen."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def flush(self) -> None:
        await asyncio.sleep(0)
        self.log.append("flush")


def batch(n: int) -> BatchResult:
    result = BatchResult()
    result.records[f"cus_{n}"] = (0, CustomerRecord(f"cus_{n}", state="active"))
    result.seen[f"evt_{n}"] = (0, b"1")
    return result


async def test_writes_follow_a_flush_in_order_and_the_barrier_waits() -> None:
    log: list[str] = []
    writer = TableWriter(
        RecordingPublisher(log), lambda r: log.append(f"write {next(iter(r.records))}")
    )  # type: ignore[arg-type]
    await writer.submit(batch(1))
    await writer.submit(batch(2))
    assert writer.records.keys() <= {"cus_1", "cus_2"}  # the overlay serves reads until written
    await writer.barrier()
    assert log == ["flush", "write cus_1", "flush", "write cus_2", "flush"]
    assert writer.records == {} and writer.seen == {}


async def test_a_failed_flush_stops_the_next_batch() -> None:
    class FailingPublisher:
        async def flush(self) -> None:
            raise RuntimeError("broker down")

    writes: list[BatchResult] = []
    writer = TableWriter(FailingPublisher(), writes.append, max_in_flight=1)  # type: ignore[arg-type]
    await writer.submit(batch(1))
    try:
        await writer.submit(batch(2))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the failed write was not reported")
    assert writes == []


async def test_a_commit_barrier_meanwhile_does_not_reorder_the_writes() -> None:
    log: list[str] = []
    gate = asyncio.Event()

    class SlowFirstFlush:
        def __init__(self) -> None:
            self.calls = 0

        async def flush(self) -> None:
            self.calls += 1
            if self.calls == 1:
                await gate.wait()  # batch 1's commands take long to be acknowledged
            log.append("flush")

    writer = TableWriter(
        SlowFirstFlush(),  # type: ignore[arg-type]
        lambda r: log.append(f"write {next(iter(r.records))}"),
        max_in_flight=3,
    )
    await writer.submit(batch(1))
    barrier = asyncio.ensure_future(writer.barrier())  # Faust commits meanwhile
    await asyncio.sleep(0)
    await writer.submit(batch(2))
    await asyncio.sleep(0)
    gate.set()
    await barrier
    await writer.barrier()
    writes = [entry for entry in log if entry.startswith("write")]
    assert writes == ["write cus_1", "write cus_2"]
    assert writer.records == {}


async def test_after_a_failed_batch_no_commit_passes_the_barrier() -> None:
    log: list[str] = []
    writer = TableWriter(RecordingPublisher(log), lambda r: log.append("write"))  # type: ignore[arg-type]
    await writer.submit(batch(1))
    await writer.barrier()  # a commit before the failure passes
    writer.fail(RuntimeError("publish failed"))
    with pytest.raises(BatchFailed):
        await writer.barrier()
    writer.fail(ValueError("later"))  # the first failure is the one reported
    with pytest.raises(BatchFailed, match="RuntimeError"):
        await writer.barrier()


class FakeConsumer:
    """Faust's commit path as the barrier sees it: ``_filter_committable_offsets`` says
    what Faust asks (its acked offsets that run on from the committed one),
    ``_handle_attached`` is awaited with that very mapping, then ``_commit`` sends it to
    the broker, which confirms it unless ``refuse`` is set."""

    def __init__(self, assigned: tuple[Any, ...] = ()) -> None:
        self.assigned = set(assigned)
        self.asks: dict[Any, int] = {}
        self.refuse = False
        self.committed: list[dict[Any, int]] = []  # what the broker confirmed

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    def _filter_committable_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: self.asks[tp] for tp in tps if tp in self.asks}

    async def _handle_attached(self, commit_offsets: dict[Any, int]) -> None:
        pass

    async def _commit(self, offsets: dict[Any, int]) -> bool:
        if self.refuse:
            return False
        self.committed.append(dict(offsets))
        return True

    async def commit(self, asks: dict[Any, int]) -> None:  # Consumer._commit_tps
        self.asks = asks
        offsets = self._filter_committable_offsets(list(asks))
        if offsets:
            await self._handle_attached(offsets)
            if offsets:
                await self._commit(offsets)


def barrier_on(
    offsets: HandledOffsets,
    lookup: Callable[[list[Partition]], dict[Partition, int]],
    assigned: tuple[Any, ...] = (),
    publisher: Any = None,
) -> tuple[FakeConsumer, list[Held]]:
    consumer, held = FakeConsumer(assigned), list[Held]()
    writer = TableWriter(publisher or RecordingPublisher([]), lambda r: None)
    install_commit_barrier(consumer, writer, offsets, lookup, held.extend)
    return consumer, held


def resumed_at(offset: int) -> Callable[[list[Partition]], dict[Partition, int]]:
    return lambda partitions: dict.fromkeys(partitions, offset)


async def test_the_commit_barrier_asks_where_reading_resumed_once_and_holds_back() -> None:
    asked: list[list[Partition]] = []

    def lookup(partitions: list[Partition]) -> dict[Partition, int]:
        asked.append(partitions)
        return dict.fromkeys(partitions, 10)

    offsets = HandledOffsets(["in"])
    consumer, held = barrier_on(offsets, lookup)
    for offset in (10, 11, 13):
        offsets.handled("in", 0, offset)
    await consumer.commit({TP("in", 0): 14})
    await consumer.commit({TP("in", 0): 12})  # nothing past what is committed: no commit
    assert asked == [[("in", 0)]]
    assert consumer.committed == [{TP("in", 0): 12}]
    assert held == [Held(("in", 0), 14, 12)]


async def test_an_assigned_partition_faust_does_not_ask_for_is_committed_at_its_frontier() -> None:
    # Faust's acks lost their head (as after a held-back ask): it asks nothing, ever
    offsets = HandledOffsets(["in"])
    consumer, held = barrier_on(offsets, resumed_at(10), assigned=(TP("in", 0), TP("other", 0)))
    for offset in range(10, 20):
        offsets.handled("in", 0, offset)
    await consumer.commit({})
    await consumer.commit({})  # no further progress: nothing to commit
    offsets.handled("in", 0, 20)
    await consumer.commit({})
    assert consumer.committed == [{TP("in", 0): 20}, {TP("in", 0): 21}]
    assert held == []


async def test_a_commit_the_broker_refused_is_made_again() -> None:
    # Faust notes the offsets it sent as committed even when the broker refused them
    offsets = HandledOffsets(["in"])
    consumer, _held = barrier_on(offsets, resumed_at(10), assigned=(TP("in", 0),))
    for offset in range(10, 15):
        offsets.handled("in", 0, offset)
    consumer.refuse = True
    await consumer.commit({TP("in", 0): 15})
    consumer.refuse = False
    await consumer.commit({})  # Faust asks nothing more: it thinks 15 is committed
    await consumer.commit({})
    assert consumer.committed == [{TP("in", 0): 15}]


async def test_records_handled_during_the_barrier_wait_for_the_next_commit() -> None:
    offsets = HandledOffsets(["in"])

    class HandlesMoreWhileFlushing:
        async def flush(self) -> None:
            await asyncio.sleep(0)
            offsets.handled("in", 0, 12)  # the agent goes on meanwhile; not durable yet

    consumer, _held = barrier_on(
        offsets, resumed_at(10), assigned=(TP("in", 0),), publisher=HandlesMoreWhileFlushing()
    )
    offsets.handled("in", 0, 10)
    offsets.handled("in", 0, 11)
    await consumer.commit({TP("in", 0): 12})
    assert consumer.committed == [{TP("in", 0): 12}]
    assert offsets.frontier("in", 0) == 13


async def test_a_rebalance_during_the_lookup_makes_the_barrier_ask_again() -> None:
    offsets = HandledOffsets(["in"])
    answers = iter([5, 7])

    def lookup(partitions: list[Partition]) -> dict[Partition, int]:
        answer = next(answers)
        if answer == 5:
            offsets.forget(partitions)  # as the rebalance signal does meanwhile
        return dict.fromkeys(partitions, answer)

    consumer, _held = barrier_on(offsets, lookup)
    await consumer.commit({TP("in", 0): 9})
    assert consumer.committed == [{TP("in", 0): 7}]


async def test_no_commit_when_where_reading_resumed_cannot_be_read() -> None:
    def lookup(partitions: list[Partition]) -> dict[Partition, int]:
        raise ResumePositionUnknown("broker down")

    consumer, _held = barrier_on(HandledOffsets(["in"]), lookup, assigned=(TP("in", 0),))
    with pytest.raises(ResumePositionUnknown):
        await consumer.commit({})
    assert consumer.committed == []


IN0, IN1, OUT = ("in", 0), ("in", 1), ("changelog", 0)


@pytest.mark.parametrize(
    ("asked", "frontiers", "committed", "plan", "held"),
    [
        # Faust asks what the agent handled: committed as asked
        ({IN0: 12}, {IN0: 12}, {IN0: 10}, {IN0: 12}, []),
        # Faust asks past the frontier: held back to it
        ({IN0: 14}, {IN0: 12}, {IN0: 10}, {IN0: 12}, [Held(IN0, 14, 12)]),
        # Faust asks less (its acks stop at a gap the agent has filled since)
        ({IN0: 11}, {IN0: 15}, {IN0: 10}, {IN0: 15}, []),
        # Faust does not ask (acks that lost their head): the frontier all the same
        ({IN0: NOT_ASKED}, {IN0: 15}, {IN0: 10}, {IN0: 15}, []),
        # nothing handled past what is committed: no commit of the partition
        ({IN0: NOT_ASKED}, {IN0: 10}, {IN0: 10}, {}, []),
        # Faust sought past the ledger's start (another member committed): never back
        ({IN0: NOT_ASKED}, {IN0: 8}, {IN0: 10}, {}, []),
        # Faust knows nothing committed (just revoked, not sought yet): the frontier
        ({IN0: NOT_ASKED}, {IN0: 10}, {IN0: None}, {IN0: 10}, []),
        # an empty partition (Faust notes a committed 0 as None): nothing to commit
        ({IN0: NOT_ASKED}, {IN0: 0}, {IN0: None}, {}, []),
        # other topics (changelogs) pass as asked; partitions each on their own
        (
            {IN0: NOT_ASKED, IN1: 30, OUT: 7},
            {IN0: 15, IN1: 25},
            {IN0: 10, IN1: 20, OUT: 3},
            {IN0: 15, IN1: 25, OUT: 7},
            [Held(IN1, 30, 25)],
        ),
    ],
    ids=[
        "as-asked",
        "held-back",
        "ask-behind-frontier",
        "not-asked",
        "no-progress",
        "never-backwards",
        "nothing-known-committed",
        "empty-partition",
        "per-partition",
    ],
)
def test_commit_plan(
    asked: dict[Partition, int],
    frontiers: dict[Partition, int | None],
    committed: dict[Partition, int | None],
    plan: dict[Partition, int],
    held: list[Held],
) -> None:
    assert commit_plan(asked, frontiers, committed) == (plan, held)


def test_commit_plan_refuses_a_partition_with_no_known_start() -> None:
    with pytest.raises(ResumePositionUnknown, match=r"in\[0\]"):
        commit_plan({IN0: 5, IN1: 5}, {IN0: None, IN1: 5}, {})


# ---------------------------------------- Faust's own arithmetic, once its acks lost their head


class FaustAcks:
    """faust-streaming 0.15.3's ack bookkeeping of one partition, with its own
    ``Consumer._new_offset`` (what Faust asks to commit)."""

    def __init__(self, tp: TP, committed: int) -> None:
        self.tp = tp
        self._acked: dict[TP, list[int]] = {tp: []}
        self._acked_index: dict[TP, set[int]] = {tp: set()}
        self._gap: dict[TP, IntervalTree] = {tp: IntervalTree()}
        self._committed_offset: dict[TP, int | None] = {tp: committed}

    def ack(self, offset: int) -> None:  # Consumer.ack, for a record not acked before
        committed = self._committed_offset[self.tp]
        if (committed is None or offset >= committed) and offset not in self._acked_index[self.tp]:
            self._acked_index[self.tp].add(offset)
            self._acked[self.tp].append(offset)

    def ask(self) -> int | None:
        return faust.transport.consumer.Consumer._new_offset(self, self.tp)  # type: ignore[arg-type]


@pytest.mark.parametrize("lost_by", ["interrupted-commit", "held-back-ask"])
def test_faust_never_asks_again_once_its_acks_lost_their_head(lost_by: str) -> None:
    tp, key = TP("in", 0), ("in", 0)
    faust_acks, offsets = FaustAcks(tp, committed=10), HandledOffsets(["in"])
    offsets.start_at({key: 10}, offsets.generation)

    def handle(*handled: int) -> None:  # the agent handles, then take_events acks
        for offset in handled:
            offsets.handled("in", 0, offset)
        for offset in handled:
            faust_acks.ack(offset)

    if lost_by == "interrupted-commit":
        # Faust takes the acks it asks for out of its list, then the commit does not
        # finish (cancelled, or it raised): nothing is recorded committed
        handle(*range(10, 20))
        assert faust_acks.ask() == 20
    else:
        # 10 is late; Faust asks past it (its slack of one), the barrier holds the ask
        # back to 10, and Faust records 10 as committed with 11..19 gone from its list
        handle(*range(11, 20))
        asked = faust_acks.ask()
        assert asked == 20
        plan, held = commit_plan({tp: asked}, {key: offsets.frontier("in", 0)}, {key: 10})
        assert plan == {} and held == [Held(key, 20, 10)]
        handle(10)
        assert faust_acks.ask() == 11
        faust_acks._committed_offset[tp] = 11
    for start in (20, 30, 40):  # the agent goes on; Faust asks nothing, ever
        handle(*range(start, start + 10))
        assert faust_acks.ask() is None
    committed = faust_acks._committed_offset[tp]
    plan, held = commit_plan({tp: NOT_ASKED}, {key: offsets.frontier("in", 0)}, {key: committed})
    assert plan == {tp: 50} and held == []
