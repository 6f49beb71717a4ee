"""The Faust internals the worker relies on (``processors/_faust.py``) are where it expects.

On a ``faust-streaming`` upgrade, the failing case's id names the symbol that moved.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from processors._faust import INTERNALS, check_internals, purge_local
from processors.errors import FaustInternalsMoved


@pytest.mark.parametrize(("symbol", "holds"), INTERNALS.items(), ids=list(INTERNALS))
def test_faust_internal_is_where_the_worker_expects_it(
    symbol: str, holds: Callable[[], bool]
) -> None:
    assert holds(), f"Faust internal moved or changed shape: {symbol}"


def test_check_internals_passes_on_the_pinned_faust() -> None:
    check_internals()


@pytest.mark.parametrize("store", [object(), {}, {"evt_1": b"1"}], ids=["object", "dict", "map"])
def test_dedup_purge_refuses_a_store_it_cannot_purge(store: object) -> None:
    with pytest.raises(FaustInternalsMoved, match=r"faust\.stores\.rocksdb\.Store\._dbs"):
        list(purge_local(store, lambda value: True))


def test_a_store_that_stops_keeping_its_databases_in_dbs_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import faust.stores.rocksdb

    def db_for_partition(self: object, partition: int) -> object:  # opens a new one each time
        return self._open_for_partition(partition)  # type: ignore[attr-defined]

    monkeypatch.setattr(faust.stores.rocksdb.Store, "_db_for_partition", db_for_partition)
    with pytest.raises(FaustInternalsMoved, match=r"Store\._dbs/_key_index/_db_for_partition"):
        check_internals()


def test_a_faust_whose_commit_filter_moved_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import faust.transport.consumer

    def filter_committable_offsets(self: object, tps: object, at: object) -> object:
        return {}

    monkeypatch.setattr(
        faust.transport.consumer.Consumer, "_filter_committable_offsets", filter_committable_offsets
    )
    with pytest.raises(FaustInternalsMoved, match=r"_filter_committable_offsets/_commit"):
        check_internals()
