"""Every Faust internal the worker relies on, in one place, checked by ``check_internals``.

The worker bends Faust in eight spots, each for a reason Faust's public API cannot serve:

- ``Consumer._drain_messages`` — replaced by ``drain_per_fetch``, for two reasons. Faust's
  loop skips a fetched record below its read offset and counts the offsets it skipped
  over as acked, which can commit records the agent never handled (``processors.offsets``
  tells how); ours delivers every fetched record. And Faust awaits
  ``wait_first(callback(message), suspend_flow.wait())`` for each record — four tasks
  per record, the largest single cost of the worker bench; ours waits once per fetch.
- RocksDB ``Store._db_for_partition`` / ``_key_index`` — ``PublishedTable.read`` and
  ``write`` do what Faust's ``table.get(key)`` and ``table[key] = value`` do inside a
  stream (the input record's partition names the database), in one call instead of
  Faust's six layers and two lookups per read; writes' changelog records go through the
  worker's one confluent-kafka ``Publisher``.
- RocksDB ``Store._dbs`` / ``Store._key_index`` — the dedup purge deletes expired keys
  from each partition's database directly (Faust has no per-partition scan or TTL).
- ``Consumer._handle_attached`` — awaited before every offset commit with the very mapping
  Faust then commits; the commit barrier wraps it (see ``processors.writer``) and sets each
  input partition's offset to the first one the agent has not handled
  (``processors.offsets``).
- ``Consumer._filter_committable_offsets`` / ``Consumer._commit`` — Faust commits a
  partition only when its acked offsets run on from the committed one, and notes an offset
  committed even when the broker refused it; the commit barrier adds every assigned input
  partition to that mapping (``include_in_commits``) and notes what the broker confirmed
  (``on_confirmed``), so a partition whose acks lost their head, or whose commit failed, is
  still committed from the worker's own ledger.
- ``AIOKafkaConsumerThread._create_worker_consumer`` — Faust hard-codes aiokafka's
  ``fetch_max_wait_ms=1500``; ``set_fetch_max_wait`` applies the worker's setting.
- ``Recovery`` reads ``table.persisted_offset(tp)`` and ``consumer.highwaters(...)`` —
  ``PublishedTable.persisted_offset`` resumes kept local tables after their last changelog
  offset, and ``correct_highwaters`` fixes the embedded broker's end offsets (see
  ``processors.localstate``).
- ``FlowControlEvent.resume`` (mode) — empties every stream's queue each time it is called,
  and ``Recovery`` calls it a second time once the input partitions are resumed and
  sought, while the consumer's flow already runs: records fetched after the seek and not
  yet taken by the agent were dropped for good, their partition stalled behind them
  (nothing fetches them again, and the commit frontier waits for them).
  ``clear_only_after_suspend`` lets ``resume`` empty the queues only when the flow was
  suspended (a rebalance): what was queued since is kept (a record fetched before the seek
  and again after it is a repeat, which dedup absorbs).

``faust-streaming`` is pinned to the tested minor version in ``pyproject.toml``; on an
upgrade, ``tests/unit/processors/test_faust_internals.py`` (and the worker at start) name
the first of these that moved.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from itertools import takewhile
from typing import Any

import faust
import faust.exceptions
import faust.stores.rocksdb
import faust.tables.base
import faust.tables.recovery
import faust.tables.table
import faust.transport.consumer
from faust.transport.consumer import CONSUMER_FETCHING

from processors.errors import FaustInternalsMoved
from processors.publisher import Publisher


class PublishedTable(faust.Table[bytes, bytes]):
    """A Faust table read and written per input partition, its changelog through the
    worker's ``Publisher``: use ``read`` and ``write``, not ``table[key]``."""

    publisher: Publisher
    #: partition → last changelog offset the kept local files hold (``processors.localstate``)
    resume_from: dict[int, int]

    def persisted_offset(self, tp: Any) -> int | None:
        """Faust's recovery replays the changelog after this offset."""
        hint = self.resume_from.pop(tp.partition, None)
        stored: int | None = super().persisted_offset(tp)
        if hint is not None and (stored is None or hint > stored):
            self.data.set_persisted_offset(tp, hint)
            return hint
        return stored

    def read(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key`` kept for input ``partition``: Faust's ``table.get(key)``
        while a record of that partition is being processed."""
        store: Any = self.data  # a faust.stores.rocksdb.Store (checked by _rocksdb_layout)
        value: bytes | None = store._db_for_partition(partition).get(key)
        if value is not None:
            store._key_index[key] = partition
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise TypeError("use PublishedTable.write: table[key] = value skips the Publisher")

    def __delitem__(self, key: bytes) -> None:
        raise TypeError("keys leave a PublishedTable through delete or purge_local")

    def write(self, partition: int, key: bytes, value: bytes) -> None:
        """Faust's ``table[key] = value`` for input ``partition``: the changelog record
        (durable at the writer's next flush), then the local store."""
        self.publisher.produce(self.changelog_topic.get_topic_name(), key, value, partition)
        store: Any = self.data  # a faust.stores.rocksdb.Store (checked by _rocksdb_layout)
        store._key_index[key] = partition
        store._db_for_partition(partition).put(key, value)

    def delete(self, partition: int, key: bytes) -> None:
        """Faust's ``del table[key]`` for input ``partition``: the changelog tombstone
        (durable at the writer's next flush), then the local store."""
        self.publisher.produce(self.changelog_topic.get_topic_name(), key, None, partition)
        store: Any = self.data  # a faust.stores.rocksdb.Store (checked by _rocksdb_layout)
        store._key_index.pop(key, None)
        store._db_for_partition(partition).delete(key)

    def delete_prefix(self, partition: int, prefix: bytes) -> int:
        """``delete`` every key of input ``partition`` that starts with ``prefix`` (keys are
        kept in byte order, so the scan starts at the prefix and stops past it)."""
        store: Any = self.data  # a faust.stores.rocksdb.Store (checked by _rocksdb_layout)
        db = store._db_for_partition(partition)
        keys = list(takewhile(lambda k: bytes(k).startswith(prefix), db.keys(from_key=prefix)))
        for key in keys:
            self.delete(partition, bytes(key))
        return len(keys)


def wrap_before_commit(consumer: Any, before: Callable[[dict[Any, int]], Any]) -> None:
    """Make the Faust consumer await ``before(offsets)`` ahead of every offset commit.

    ``offsets`` is the mapping Faust goes on to commit and record as committed: ``before``
    may lower its values in place (and raise to commit nothing).
    """
    original = consumer._handle_attached

    async def handle_attached(commit_offsets: dict[Any, int]) -> None:
        await before(commit_offsets)
        await original(commit_offsets)

    consumer._handle_attached = handle_attached


def include_in_commits(consumer: Any, include: Callable[[dict[Any, int]], None]) -> None:
    """Let ``include(offsets)`` add partitions to every mapping Faust goes on to commit.

    Faust's ``_filter_committable_offsets`` returns, per partition, the end of the acked
    offsets that run on from the committed one, and leaves out a partition whose acks do
    not (``Consumer._new_offset``); ``include`` may add such a partition (with any offset:
    the commit barrier sets the real one before Faust commits).
    """
    original = consumer._filter_committable_offsets

    def filter_committable_offsets(tps: Any) -> dict[Any, int]:
        offsets: dict[Any, int] = original(tps)
        include(offsets)
        return offsets

    consumer._filter_committable_offsets = filter_committable_offsets


def assigned(consumer: Any) -> set[Any]:
    """The consumer's assignment; none while its thread is not started (or stopped)."""
    try:
        partitions: set[Any] = consumer.assignment()
    except faust.exceptions.ConsumerNotStarted:
        return set()
    return partitions


def on_confirmed(consumer: Any, confirmed: Callable[[Mapping[Any, int]], None]) -> None:
    """Call ``confirmed(offsets)`` with each mapping the broker answered committed.

    Faust records the offsets it sent as committed whether or not the commit succeeded
    (``Consumer._commit_offsets``); ``Consumer._commit`` returns whether it did.
    """
    original = consumer._commit

    async def commit(offsets: Mapping[Any, int]) -> bool:
        did_commit: bool = await original(offsets)
        if did_commit:
            confirmed(offsets)
        return did_commit

    consumer._commit = commit


async def _drain(consumer: Any, fetcher: Any) -> None:
    """Faust's ``Consumer._drain_messages`` loop, delivering every record of each fetch.

    As Faust's: fetch, hand each record to the consumer's callback (it decodes the record
    and queues it for the agent), commit every ``broker_commit_every`` acks, stop with the
    consumer or the fetcher. Unlike it: no read offset, so no fetched record is skipped
    and no offset counted as acked unseen (a repeat is harmless: dedup by event id); and
    one ``wait_first`` per fetch instead of per record, so a rebalance (``suspend_flow``)
    still stops delivery at once — the rest of that fetch is dropped, unacked, and read
    again after the seek to the committed offset, as Faust drops the record it interrupts.
    """
    callback = consumer.callback
    consumer_stopped, fetcher_stopped = consumer._stopped.is_set, fetcher._stopped.is_set
    commit_every = consumer._commit_every

    async def hand_over(message: Any) -> None:
        if commit_every is not None and consumer._n_acked >= commit_every:
            consumer._n_acked = 0
            await consumer.commit()
        await callback(message)

    async def deliver(first: Any, fetch: Any) -> None:
        await hand_over(first[1])
        delivered = 1
        async for _tp, message in fetch:
            if delivered % 100 == 0:  # as Faust: let other tasks in during a long fetch
                await asyncio.sleep(0)
            await hand_over(message)
            delivered += 1

    try:
        while not (consumer_stopped() or fetcher_stopped()):
            consumer.diag.set_flag(CONSUMER_FETCHING)
            await consumer.sleep(0)  # as Faust: never loop without yielding to the event loop
            fetch = consumer.getmany(timeout=1.0)
            # The wait for records, outside wait_first as in Faust: while a rebalance
            # suspends the flow it waits there for the flow to resume, instead of spinning.
            first = await anext(fetch, None)
            if first is not None and not consumer.should_stop:
                await consumer.wait_first(deliver(first, fetch), consumer.suspend_flow.wait())
            consumer.diag.unset_flag(CONSUMER_FETCHING)
    except (*consumer.consumer_stopped_errors, asyncio.CancelledError):
        if not consumer.app.should_stop:
            raise
    finally:
        consumer.diag.unset_flag(CONSUMER_FETCHING)


def drain_per_fetch(consumer: Any) -> None:
    """Give the Faust consumer ``_drain`` as its ``_drain_messages`` (before start)."""
    consumer._drain_messages = partial(_drain, consumer)


def clear_only_after_suspend(app: Any) -> None:
    """Let ``app.flow_control.resume()`` empty the stream queues only after a suspend.

    A rebalance suspends the flow control; its first resume then drops what was queued
    from the revoked assignment, as Faust intends. Any further resume (``Recovery`` calls it
    again after seeking the input partitions to their committed offsets) keeps the queues:
    the records in them were fetched under the current assignment, and dropping them would
    lose them, since the consumer's position is already past them.
    """
    flow_control = app.flow_control
    resume = flow_control.resume

    def resume_after_suspend() -> None:
        if not flow_control.is_active():
            resume()

    flow_control.resume = resume_after_suspend


def correct_highwaters(
    consumer: Any, correct: Callable[[dict[tuple[str, int], int]], dict[tuple[str, int], int]]
) -> None:
    """Pass the end offsets Faust's table recovery reads through ``correct`` (in a thread)."""
    original = consumer.highwaters

    async def highwaters(*partitions: Any) -> Any:
        reported = await original(*partitions)
        pairs = {(tp.topic, tp.partition): v for tp, v in reported.items() if v is not None}
        ends = await asyncio.to_thread(correct, pairs)
        return {tp: ends.get((tp.topic, tp.partition), v) for tp, v in reported.items()}

    consumer.highwaters = highwaters


def set_fetch_max_wait(consumer: Any, wait_ms: int) -> None:
    """Give the aiokafka consumer Faust creates ``fetch_max_wait_ms=wait_ms``.

    Faust hard-codes 1500 ms. A broker that answers a fetch only when that wait is over
    (the embedded one does, when nothing was there yet) makes it the latency floor of
    every event; a short wait costs one small idle fetch per interval.
    """
    thread = consumer._thread
    original = thread._create_worker_consumer

    def create(transport: Any) -> Any:
        created = original(transport)
        created._fetch_max_wait_ms = wait_ms
        return created

    thread._create_worker_consumer = create


def purge_local(store: Any, expired: Callable[[bytes], bool]) -> Iterator[tuple[int, bytes]]:
    """Delete the keys whose value is ``expired`` from a RocksDB table store, per partition.

    Yields ``(partition, key)`` for each deleted key, so the caller can tombstone it in the
    changelog. Raises ``FaustInternalsMoved`` when the store is not laid out as expected:
    a purge that silently finds nothing would let the table grow without bound.
    """
    dbs = getattr(store, "_dbs", None)
    key_index = getattr(store, "_key_index", None)
    if not isinstance(store, faust.stores.rocksdb.Store) or dbs is None or key_index is None:
        raise FaustInternalsMoved(
            f"faust.stores.rocksdb.Store._dbs/_key_index (table store is {type(store).__name__})"
        )
    for partition, db in list(dbs.items()):
        keys = [k for k, v in db.items() if v is not None and expired(v)]
        for key in keys:
            db.delete(key)
            key_index.pop(key, None)
            yield partition, key


# --------------------------------------------------------------------------- the guard


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _params(func: Any) -> list[str]:
    return list(inspect.signature(func).parameters)


def _handle_attached_before_commit() -> bool:
    consumer = faust.transport.consumer.Consumer
    handle = getattr(consumer, "_handle_attached", None)
    return (
        handle is not None
        and inspect.iscoroutinefunction(handle)
        and _params(handle) == ["self", "commit_offsets"]
        and "await self._handle_attached(commit_offsets)" in _source(consumer._commit_tps)
    )


def _commit_passes_one_mapping() -> bool:
    commit_tps = "".join(_source(faust.transport.consumer.Consumer._commit_tps).split())
    return (
        "commit_offsets=self._filter_committable_offsets(tps)" in commit_tps
        and "awaitself._handle_attached(commit_offsets)" in commit_tps
        and "self._commit_offsets(commit_offsets," in commit_tps
    )


def _commit_filter_and_result() -> bool:
    consumer = faust.transport.consumer.Consumer
    filter_ = getattr(consumer, "_filter_committable_offsets", None)
    commit_offsets = "".join(_source(consumer._commit_offsets).split())
    return (
        filter_ is not None
        and _params(filter_) == ["self", "tps"]
        and _params(consumer._commit) == ["self", "offsets"]
        and "did_commit=awaitself._commit(committable_offsets)" in commit_offsets
    )


def _drain_loop_is_the_one_replaced() -> bool:
    """``_drain`` re-implements this loop: notice when Faust changes it or what it calls."""
    consumer = faust.transport.consumer.Consumer
    drain = "".join(_source(consumer._drain_messages).split())
    # a mode ServiceTask: the coroutine function is its ``fun``
    fetcher = _source(getattr(faust.transport.consumer.Fetcher._fetcher, "fun", None))
    return (
        "await consumer._drain_messages(self)" in fetcher
        and _params(consumer._drain_messages) == ["self", "fetcher"]
        and "getmany(timeout=1.0)" in drain
        and "awaitself.wait_first(callback(message),self.suspend_flow.wait())" in drain
        and "ifself._n_acked>=commit_every:self._n_acked=0awaitself.commit()" in drain
        and "exceptself.consumer_stopped_errors:" in drain
        and inspect.isasyncgenfunction(consumer.getmany)
        and _params(consumer.getmany) == ["self", "timeout"]
        and "await self.wait(self.can_resume_flow)" in _source(consumer._wait_next_records)
        and "self._commit_every = " in _source(consumer.__init__)
    )


def _recovery_reads_persisted_offsets_and_highwaters() -> bool:
    recovery = faust.tables.recovery.Recovery
    return "table.persisted_offset(tp)" in _source(
        recovery._add
    ) and "await consumer.highwaters(*tps)" in _source(recovery._build_highwaters)


def _flow_control_resume_clears_queues() -> bool:
    """``clear_only_after_suspend`` guards ``resume``: notice if its clearing or callers move."""
    from mode.utils.queues import FlowControlEvent

    resume = "".join(_source(FlowControlEvent.resume).split())
    resume_streams = "".join(_source(faust.tables.recovery.Recovery._resume_streams).split())
    return (
        resume.endswith("self._suspend.clear()self._resume.set()self.clear()")
        and "returnnotself._suspend.is_set()"
        in "".join(_source(FlowControlEvent.is_active).split())
        and resume_streams.index("consumer.perform_seek()")
        < resume_streams.index("app.flow_control.resume()")
    )


def _fetch_wait_settable() -> bool:
    import aiokafka  # type: ignore[import-untyped]
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    return "fetch_max_wait_ms=self._fetch_max_wait_ms" in _source(
        aiokafka.AIOKafkaConsumer.start
    ) and "self._create_worker_consumer(transport)" in _source(
        AIOKafkaConsumerThread._create_consumer
    )


def _rocksdb_layout() -> bool:
    store = faust.stores.rocksdb.Store
    init = _source(store.__init__)
    get, set_ = _source(store._get), _source(store._set)
    db_for = "".join(_source(store._db_for_partition).split())
    return (
        "self._dbs = {}" in init
        and "self._key_index = " in init
        and _params(store._db_for_partition) == ["self", "partition"]
        # one database per partition, kept in _dbs (what purge_local walks), opened once
        and "returnself._dbs[partition]" in db_for
        and "self._dbs[partition]=self._open_for_partition(partition)" in db_for
        # what PublishedTable.read/write do: the current record's partition names the DB
        and "partition = event.message.partition" in get
        and "db = self._db_for_partition(partition)" in get
        and "value = db.get(key)" in get
        and "self._key_index[key] = partition" in set_
        and "db.put(key, value)" in set_
    )


#: the internals, each named as the symbol an upgrade would move, with its check
INTERNALS: dict[str, Callable[[], bool]] = {
    "faust.transport.consumer.Consumer._drain_messages (replaced by _drain)": (
        _drain_loop_is_the_one_replaced
    ),
    "faust.transport.consumer.Consumer._handle_attached": _handle_attached_before_commit,
    "faust.transport.consumer.Consumer._commit_tps (one mapping to _handle_attached and commit)": (
        _commit_passes_one_mapping
    ),
    "faust.transport.consumer.Consumer._filter_committable_offsets/_commit": (
        _commit_filter_and_result
    ),
    "faust.stores.rocksdb.Store._dbs/_key_index/_db_for_partition": _rocksdb_layout,
    "faust AIOKafkaConsumerThread._create_worker_consumer / aiokafka _fetch_max_wait_ms": (
        _fetch_wait_settable
    ),
    "faust.tables.recovery.Recovery (table.persisted_offset, consumer.highwaters)": (
        _recovery_reads_persisted_offsets_and_highwaters
    ),
    "mode FlowControlEvent.resume (clears the queues; Recovery._resume_streams calls it)": (
        _flow_control_resume_clears_queues
    ),
}


def check_internals() -> None:
    """Raise ``FaustInternalsMoved`` naming the first internal that is not as expected."""
    for symbol, holds in INTERNALS.items():
        if not holds():
            raise FaustInternalsMoved(symbol)
