"""``PublishedTable.read``/``write`` do what Faust's table does inside a stream, on real RocksDB.

Faust reads and writes the database of the partition of the record being processed
(``faust.streams._current_event``); the worker names that partition instead. Each case
checks the worker's path against Faust's own on the same store.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.streams import _current_event

from processors._faust import PublishedTable

PARTITIONS = 4


class RecordingPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int | None]] = []

    def produce(
        self, topic: str, key: bytes, value: bytes | None, partition: int | None = None
    ) -> None:
        self.sent.append((topic, key, value, partition))


class Event:
    """The part of a Faust event its stores read: the record's partition."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(topic="input", partition=partition)


@contextmanager
def processing_a_record_of(partition: int) -> Iterator[None]:
    """What Faust's stream sets while the agent handles a record of ``partition``."""
    event = Event(partition)
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


@pytest.fixture
def table(tmp_path: Path) -> PublishedTable:
    app = faust.App(
        "published-table-test",
        broker="kafka://127.0.0.1:9",  # never contacted
        store="rocksdb://",
        datadir=str(tmp_path),
        autodiscover=False,
    )
    table = PublishedTable(
        app,
        name="customers",
        default=None,
        partitions=PARTITIONS,
        key_type=bytes,
        value_type=bytes,
    )
    table.publisher = RecordingPublisher()  # type: ignore[assignment]
    table.resume_from = {}
    return table


@pytest.mark.parametrize("partition", range(PARTITIONS))
def test_a_write_is_read_back_in_its_partition_only_by_both_paths(
    table: PublishedTable, partition: int
) -> None:
    table.write(partition, b"cus_1", b'{"state":"active"}')
    for p in range(PARTITIONS):
        expected = b'{"state":"active"}' if p == partition else None
        assert table.read(p, b"cus_1") == expected
        with processing_a_record_of(p):
            assert table.get(b"cus_1") == expected  # Faust's own read
    # the changelog record goes to the same partition of the table's changelog topic
    publisher: Any = table.publisher
    assert publisher.sent == [
        ("published-table-test-customers-changelog", b"cus_1", b'{"state":"active"}', partition)
    ]
    # and Faust's reads without a record (the customer-state API's) find it too
    assert table.data.get(b"cus_1") == b'{"state":"active"}'


def test_reads_see_what_faust_wrote_and_faust_sees_what_was_written(
    table: PublishedTable,
) -> None:
    with processing_a_record_of(2):
        table.data[b"evt_1"] = b"1700000000"  # Faust's store write (as recovery does)
    assert table.read(2, b"evt_1") == b"1700000000"
    assert table.read(1, b"evt_1") is None
    table.write(2, b"evt_1", b"1700000060")
    with processing_a_record_of(2):
        assert table.get(b"evt_1") == b"1700000060"
    assert table.read(2, b"evt_2") is None


def test_faust_style_writes_are_refused_so_none_skips_the_publisher(
    table: PublishedTable,
) -> None:
    with pytest.raises(TypeError, match="write"):
        table[b"cus_1"] = b'{"state":"active"}'
    with pytest.raises(TypeError):
        del table[b"cus_1"]
    assert table.read(0, b"cus_1") is None
    publisher: Any = table.publisher
    assert publisher.sent == []
