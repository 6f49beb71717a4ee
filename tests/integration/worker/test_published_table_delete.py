"""``PublishedTable.delete`` and ``delete_prefix`` (``paystream forget``'s erase) on real
RocksDB: the key leaves its partition's database for both read paths, and each deletion
sends a changelog tombstone to that partition; a prefix deletes its keys only."""

from __future__ import annotations

from typing import Any

import pytest

from processors._faust import PublishedTable
from tests.integration.worker.test_published_table import (  # noqa: F401 - the fixture
    PARTITIONS,
    processing_a_record_of,
    table,
)

CHANGELOG = "published-table-test-customers-changelog"


@pytest.mark.parametrize("partition", range(PARTITIONS))
def test_a_deleted_key_is_gone_for_both_read_paths_with_a_tombstone(
    table: PublishedTable,  # noqa: F811 - the imported fixture
    partition: int,
) -> None:
    table.write(partition, b"cus_1", b"{}")
    table.write(partition, b"cus_2", b"{}")
    table.delete(partition, b"cus_1")
    assert table.read(partition, b"cus_1") is None
    with processing_a_record_of(partition):
        assert table.get(b"cus_1") is None  # Faust's own read
    assert table.data.get(b"cus_1") is None  # the customer-state API's read
    assert table.read(partition, b"cus_2") == b"{}"
    publisher: Any = table.publisher
    assert publisher.sent[-1] == (CHANGELOG, b"cus_1", None, partition)


@pytest.mark.parametrize(
    ("keys", "prefix", "deleted"),
    [
        (
            [b"app deadline:cus_A:evt_1", b"app deadline:cus_A:evt_2", b"app deadline:cus_AB:x"],
            b"app deadline:cus_A:",
            [b"app deadline:cus_A:evt_1", b"app deadline:cus_A:evt_2"],
        ),
        ([b"evt_1", b"app x", b"app deadline:cus_B:1"], b"app deadline:cus_A:", []),
        (
            [b"app deadline:cus_A:evt_1", b"zzz"],
            b"app deadline:cus_A:",
            [b"app deadline:cus_A:evt_1"],
        ),
    ],
)
def test_delete_prefix_deletes_exactly_the_keys_that_start_with_it(
    table: PublishedTable,  # noqa: F811 - the imported fixture
    keys: list[bytes],
    prefix: bytes,
    deleted: list[bytes],
) -> None:
    for key in keys:
        table.write(1, key, b"1700000000")
    table.write(2, deleted[0] if deleted else b"other", b"1")  # another partition: kept
    publisher: Any = table.publisher
    publisher.sent.clear()
    assert table.delete_prefix(1, prefix) == len(deleted)
    assert [k for k in keys if table.read(1, k) is not None] == [
        k for k in keys if k not in deleted
    ]
    assert publisher.sent == [(CHANGELOG, k, None, 1) for k in deleted]
    assert table.read(2, deleted[0] if deleted else b"other") == b"1"
