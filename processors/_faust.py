"""Every Faust internal the worker relies on, in one place, checked by ``check_internals``.

The worker bends Faust in seven spots, each for a reason Faust's public API cannot serve:

- ``faust.streams._current_event`` — Faust's stores and tables find the partition of a
  write from the current event. The agent processes a whole batch outside Faust's stream
  iteration, so ``partition_scope`` sets the event for each table read or write.
- ``Table.send_changelog`` — overridden by ``PublishedTable`` so changelog writes go
  through the worker's one confluent-kafka ``Publisher``; ``Table.on_key_set``/``on_key_del``
  read the partition of the returned value as ``result.message.partition``.
- ``Consumer._handle_attached`` — awaited before every offset commit with the very mapping
  Faust then commits; the commit barrier wraps it (see ``processors.writer``) and lowers
  offsets the agent has not handled (``processors.offsets``).
- ``Consumer._read_offset`` — ``never_skip_fetched`` keeps it empty, so Faust delivers
  every fetched record instead of skipping those below its read offset and counting the
  skipped-over offsets as acked (``processors.offsets`` tells why).
- RocksDB ``Store._dbs`` / ``Store._key_index`` — the dedup purge deletes expired keys
  from each partition's database directly (Faust has no per-partition scan or TTL).
- ``AIOKafkaConsumerThread._create_worker_consumer`` — Faust hard-codes aiokafka's
  ``fetch_max_wait_ms=1500``; ``set_fetch_max_wait`` applies the worker's setting.
- ``Recovery`` reads ``table.persisted_offset(tp)`` and ``consumer.highwaters(...)`` —
  ``PublishedTable.persisted_offset`` resumes kept local tables after their last changelog
  offset, and ``correct_highwaters`` fixes the embedded broker's end offsets (see
  ``processors.localstate``).

``faust-streaming`` is pinned to the tested minor version in ``pyproject.toml``; on an
upgrade, ``tests/unit/processors/test_faust_internals.py`` (and the worker at start) name
the first of these that moved.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from types import SimpleNamespace
from typing import Any

import faust
import faust.stores.rocksdb
import faust.tables.base
import faust.tables.recovery
import faust.tables.table
import faust.transport.consumer
from faust.streams import _current_event

from processors.errors import FaustInternalsMoved
from processors.publisher import Publisher


class PublishedTable(faust.Table[bytes, bytes]):
    """A Faust table whose changelog writes go through the worker's ``Publisher``."""

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

    def partition_for_key(self, key: Any) -> int | None:
        event = _current_event.get(None)
        current = event() if event is not None else None
        if current is None:
            raise TypeError("table written outside of partition_scope()")
        partition: int = current.message.partition
        return partition

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> Any:
        self.publisher.produce(self.changelog_topic.get_topic_name(), key, value, partition)
        # Faust's Table.on_key_set/on_key_del read ``.message.partition`` of the result
        return SimpleNamespace(message=SimpleNamespace(partition=partition))


class _Message:
    __slots__ = ("__weakref__", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


class _Event:
    """What Faust's stores read from the current event: its message's partition."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


class partition_scope:
    """Table reads and writes inside this block belong to ``partition`` (of the input)."""

    def __init__(self, topic: str, partition: int) -> None:
        self._event = _Event(topic, partition)
        self._token: Token[Any] | None = None

    def __enter__(self) -> None:
        self._token = _current_event.set(weakref.ref(self._event))  # type: ignore[arg-type]

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current_event.reset(self._token)


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


class _NoReadOffsets(dict[Any, Any]):
    """A ``Consumer._read_offset`` that knows no read offset and keeps none."""

    def __getitem__(self, key: Any) -> None:
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


def never_skip_fetched(consumer: Any) -> None:
    """Make the Faust consumer deliver every fetched record to the agent (before start).

    With no read offset, ``Consumer._drain_messages`` drops no record as already read and
    adds no gap (offsets it would count as acked unseen). A record delivered twice is
    handled twice, which dedup by event id makes harmless.
    """
    consumer._read_offset = _NoReadOffsets()


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


def _current_event_is_the_context_var() -> bool:
    import faust.streams

    if not isinstance(getattr(faust.streams, "_current_event", None), ContextVar):
        return False
    with partition_scope("t", 3):
        seen = faust.streams.current_event()
        stored = faust.stores.rocksdb.current_event()  # type: ignore[attr-defined]
    return seen is not None and seen is stored and seen.message.partition == 3


def _table_reads_send_changelog_result() -> bool:
    table = faust.tables.table.Table
    sources = _source(table.on_key_set) + _source(table.on_key_del)
    return (
        sources.count("self.send_changelog(") == 2
        and sources.count("self.partition_for_key(key)") == 2
        and sources.count(".message.partition") == 2
    )


def _send_changelog_signature() -> bool:
    params = _params(faust.tables.base.Collection.send_changelog)
    return params == ["self", "partition", "key", "value", "key_serializer", "value_serializer"]


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


def _drain_reads_the_read_offset_mapping() -> bool:
    drain = _source(faust.transport.consumer.Consumer._drain_messages)
    init = _source(faust.transport.consumer.Consumer.__init__)
    return (
        "get_read_offset = self._read_offset.__getitem__" in drain
        and "if r_offset is None or offset >= r_offset:" in drain
        and "if gap > 1 and r_offset:" in drain
        and "self._read_offset = defaultdict(lambda: None)" in init
    )


def _recovery_reads_persisted_offsets_and_highwaters() -> bool:
    recovery = faust.tables.recovery.Recovery
    return "table.persisted_offset(tp)" in _source(
        recovery._add
    ) and "await consumer.highwaters(*tps)" in _source(recovery._build_highwaters)


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
    return (
        "self._dbs = {}" in init
        and "self._key_index = " in init
        and "self._key_index[key] = partition" in _source(store._set)
    )


#: the internals, each named as the symbol an upgrade would move, with its check
INTERNALS: dict[str, Callable[[], bool]] = {
    "faust.streams._current_event": _current_event_is_the_context_var,
    "faust.tables.table.Table.on_key_set/on_key_del (send_changelog(...).message.partition)": (
        _table_reads_send_changelog_result
    ),
    "faust.tables.base.Collection.send_changelog": _send_changelog_signature,
    "faust.transport.consumer.Consumer._handle_attached": _handle_attached_before_commit,
    "faust.transport.consumer.Consumer._commit_tps (one mapping to _handle_attached and commit)": (
        _commit_passes_one_mapping
    ),
    "faust.transport.consumer.Consumer._read_offset (read by _drain_messages)": (
        _drain_reads_the_read_offset_mapping
    ),
    "faust.stores.rocksdb.Store._dbs/_key_index": _rocksdb_layout,
    "faust AIOKafkaConsumerThread._create_worker_consumer / aiokafka _fetch_max_wait_ms": (
        _fetch_wait_settable
    ),
    "faust.tables.recovery.Recovery (table.persisted_offset, consumer.highwaters)": (
        _recovery_reads_persisted_offsets_and_highwaters
    ),
}


def check_internals() -> None:
    """Raise ``FaustInternalsMoved`` naming the first internal that is not as expected."""
    for symbol, holds in INTERNALS.items():
        if not holds():
            raise FaustInternalsMoved(symbol)
