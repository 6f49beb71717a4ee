"""No committed offset passes an input record the agent has not handled.

faust-streaming 0.15.3 can ask to commit past records its agent never saw. After a
rebalance it seeks each partition back to the committed offset, yet records fetched before
the seek may still be delivered: the first one moves Faust's read offset ahead, Faust
counts the offsets in between as acked (``Consumer._add_gap``), drops the re-read records
as already read, and ``Consumer._new_offset``'s check ``min(acked) - committed > 1`` lets a
commit pass one unacked offset (both are next-to-read positions). A worker killed after
such a commit loses those events for good (docs/worker.md, "Offsets").

Two measures close it:

- Faust's drain loop is replaced by one that keeps no read offset
  (``processors._faust.drain_per_fetch``): every fetched record reaches the agent, a stale
  or repeated one is harmless (dedup by event id), and no gap is counted as acked.
- ``HandledOffsets`` (this module) is the worker's own ledger: per input partition, where
  the group resumed reading (its committed offset, read from Kafka once per assignment)
  and which offsets the agent handled. ``hold_back`` lowers each offset Faust asks to
  commit to the partition's *frontier* — the first offset not handled — and reports the
  partitions where Faust asked for more. Input topics are neither compacted nor
  transactional, so their offsets are contiguous and the frontier is exact.

The ledger is plain data; ``resume_positions`` is the one call to Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from processors.errors import ResumePositionUnknown

#: (topic, partition); Faust's ``TP`` is a named tuple of the same two and compares equal
Partition = tuple[str, int]


@dataclass
class _Ledger:
    #: first offset not handled (None: where the group resumed is not known yet)
    frontier: int | None = None
    #: handled offsets above the frontier (out of order, or before the start is known)
    ahead: set[int] = field(default_factory=set)

    def handled(self, offset: int) -> None:
        if self.frontier is None or offset > self.frontier:
            self.ahead.add(offset)
        elif offset == self.frontier:
            self.frontier += 1
            self._advance()

    def start_at(self, offset: int) -> None:
        self.frontier = offset
        self.ahead = {o for o in self.ahead if o >= offset}
        self._advance()

    def _advance(self) -> None:
        assert self.frontier is not None
        while self.frontier in self.ahead:
            self.ahead.remove(self.frontier)
            self.frontier += 1


@dataclass(frozen=True)
class Held:
    """Faust asked to commit ``asked`` on ``partition``; ``frontier`` is all it may commit."""

    partition: Partition
    asked: int
    frontier: int


class HandledOffsets:
    """Which input offsets the agent handled, per partition, since its assignment.

    Only the partitions of ``topics`` (the agent's input) are guarded; offsets of any other
    topic Faust commits pass unchanged.
    """

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)
        self._ledgers: dict[Partition, _Ledger] = {}
        #: bumped by every ``forget``: a start looked up before it belongs to another assignment
        self.generation = 0

    def handled(self, topic: str, partition: int, offset: int) -> None:
        """The agent's effects for this record are scheduled (the commit barrier waits)."""
        ledger = self._ledgers.get((topic, partition))
        if ledger is None:
            ledger = self._ledgers[(topic, partition)] = _Ledger()
        ledger.handled(offset)

    def forget(self, partitions: Iterable[Any]) -> None:
        """A rebalance revoked these partitions; their next assignment starts over."""
        self.generation += 1
        for tp in partitions:
            self._ledgers.pop((tp[0], tp[1]), None)

    def unknown_starts(self, partitions: Iterable[Any]) -> list[Partition]:
        """The guarded partitions among these whose resume position is not known yet."""
        found = []
        for tp in partitions:
            if tp[0] not in self.topics:
                continue
            ledger = self._ledgers.get((tp[0], tp[1]))
            if ledger is None or ledger.frontier is None:
                found.append((tp[0], tp[1]))
        return found

    def start_at(self, positions: Mapping[Partition, int], generation: int) -> None:
        """Where the group resumed reading each partition (its committed offset).

        Ignored when a rebalance came between the lookup (at ``generation``) and now.
        """
        if generation != self.generation:
            return
        for key, offset in positions.items():
            ledger = self._ledgers.get(key)
            if ledger is None:
                ledger = self._ledgers[key] = _Ledger()
            if ledger.frontier is None:
                ledger.start_at(offset)

    def frontier(self, topic: str, partition: int) -> int | None:
        ledger = self._ledgers.get((topic, partition))
        return ledger.frontier if ledger is not None else None

    def hold_back(self, commit: MutableMapping[Any, int]) -> list[Held]:
        """Lower, in place, each offset to commit to its partition's frontier.

        ``commit`` is Faust's own mapping: Faust records the lowered offsets as committed,
        and re-acks the records above them as they are delivered again. Every partition in
        it must have a known start (``unknown_starts``); one without is refused outright.
        """
        held = []
        for tp, asked in commit.items():
            if tp[0] not in self.topics:
                continue
            frontier = self.frontier(tp[0], tp[1])
            if frontier is None:
                raise ResumePositionUnknown(f"{tp[0]}[{tp[1]}]")
            if asked > frontier:
                commit[tp] = frontier
                held.append(Held((tp[0], tp[1]), asked, frontier))
        return held


def resume_positions(config: dict[str, Any], partitions: list[Partition]) -> dict[Partition, int]:
    """Where the worker's group resumes reading each partition (blocking: run in a thread).

    The committed offset, or the partition's first offset when nothing is committed or the
    committed record is gone (``auto.offset.reset=earliest`` then reads from there).
    ``config`` carries the worker's ``group.id``; the consumer never subscribes, so it
    never joins the group. A Kafka error raises ``ResumePositionUnknown``.
    """
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(config)
    try:
        committed = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=10)
        positions = {}
        for tp in committed:
            if tp.error is not None:
                raise ResumePositionUnknown(f"{tp.topic}[{tp.partition}]: {tp.error}")
            low, _high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=10
            )
            positions[(tp.topic, tp.partition)] = max(tp.offset, low)
        return positions
    except KafkaException as exc:
        raise ResumePositionUnknown(f"{partitions}: {exc.args[0]}") from None
    finally:
        consumer.close()
