"""TableWriter: table writes only after the commands are durable, in batch order."""

from __future__ import annotations

import asyncio

import pytest

from processors.errors import BatchFailed
from processors.lifecycle import CustomerRecord
from processors.pipeline import BatchResult
from processors.writer import TableWriter


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
