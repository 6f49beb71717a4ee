"""TableWriter: table writes only after the commands are durable, in batch order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from faust.types import TP

from processors.errors import BatchFailed, ResumePositionUnknown
from processors.lifecycle import CustomerRecord
from processors.offsets import HandledOffsets, Held, Partition
from processors.pipeline import BatchResult
from processors.writer import TableWriter, install_commit_barrier


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
    """What the barrier wraps: Faust's ``_handle_attached``, which gets the mapping to commit."""

    def __init__(self) -> None:
        self.committed: list[dict[Any, int]] = []

    async def _handle_attached(self, commit_offsets: dict[Any, int]) -> None:
        self.committed.append(dict(commit_offsets))


def barrier_on(
    offsets: HandledOffsets, lookup: Callable[[list[Partition]], dict[Partition, int]]
) -> tuple[FakeConsumer, list[Held]]:
    consumer, held = FakeConsumer(), list[Held]()
    writer = TableWriter(RecordingPublisher([]), lambda r: None)  # type: ignore[arg-type]
    install_commit_barrier(consumer, writer, offsets, lookup, held.extend)
    return consumer, held


async def test_the_commit_barrier_asks_where_reading_resumed_once_and_holds_back() -> None:
    asked: list[list[Partition]] = []

    def lookup(partitions: list[Partition]) -> dict[Partition, int]:
        asked.append(partitions)
        return dict.fromkeys(partitions, 10)

    offsets = HandledOffsets(["in"])
    consumer, held = barrier_on(offsets, lookup)
    for offset in (10, 11, 13):
        offsets.handled("in", 0, offset)
    await consumer._handle_attached({TP("in", 0): 14})
    await consumer._handle_attached({TP("in", 0): 12})
    assert asked == [[("in", 0)]]
    assert consumer.committed == [{TP("in", 0): 12}, {TP("in", 0): 12}]
    assert held == [Held(("in", 0), 14, 12)]


async def test_a_rebalance_during_the_lookup_makes_the_barrier_ask_again() -> None:
    offsets = HandledOffsets(["in"])
    answers = iter([5, 7])

    def lookup(partitions: list[Partition]) -> dict[Partition, int]:
        answer = next(answers)
        if answer == 5:
            offsets.forget(partitions)  # as the rebalance signal does meanwhile
        return dict.fromkeys(partitions, answer)

    consumer, _held = barrier_on(offsets, lookup)
    await consumer._handle_attached({TP("in", 0): 9})
    assert consumer.committed == [{TP("in", 0): 7}]


async def test_no_commit_when_where_reading_resumed_cannot_be_read() -> None:
    def lookup(partitions: list[Partition]) -> dict[Partition, int]:
        raise ResumePositionUnknown("broker down")

    consumer, _held = barrier_on(HandledOffsets(["in"]), lookup)
    with pytest.raises(ResumePositionUnknown):
        await consumer._handle_attached({TP("in", 0): 9})
    assert consumer.committed == []
