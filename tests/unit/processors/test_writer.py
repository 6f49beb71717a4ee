"""TableWriter: table writes only after the commands are durable, in batch order."""

from __future__ import annotations

import asyncio

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
