"""Reads are read-only because ClickHouse refuses the rest (``readonly=1``), not a pattern.

Real embedded engine (chdb) in a temporary directory; the same cases run through the
loopback query endpoint in ``test_metrics_sink.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paystream.runtime.store import (
    READ_ONLY,
    MetricsStore,
    QueryRejected,
    load_ddl,
    open_metrics_store,
)

DB = "ro_test"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetricsStore]:
    store = MetricsStore(open_metrics_store(None, tmp_path_factory.mktemp("chdb")), DB)
    store.apply_ddl(load_ddl(DB, 7))
    now = datetime.now(UTC).replace(microsecond=0)  # inside the tables' TTL
    store.insert(
        "webhook_events", [[now, now, "evt_1", "invoice.paid", False, "", "h", "c1", "webhook"]]
    )
    yield store
    store.close()


def _count(store: MetricsStore) -> int:
    return int(store.query("SELECT count() FROM ro_test.webhook_events").rows[0][0])


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 41 + 1 AS answer", [[42]]),
        ("  select count() FROM ro_test.webhook_events FINAL;", [[1]]),
        ("WITH 2 AS x SELECT x * 3 AS y", [[6]]),
        ("SELECT 1 AS a UNION ALL SELECT 2 AS a", [[1], [2]]),
        ("SELECT event_id FROM ro_test.webhook_events -- a trailing comment", [["evt_1"]]),
        # a read may not lift its own restriction
        ("SELECT getSetting('readonly') AS r SETTINGS readonly = 0", [[1]]),
    ],
)
def test_reads_are_answered(store: MetricsStore, sql: str, expected: list[list[object]]) -> None:
    assert sorted(store.query(sql).rows) == expected


WRITES = [
    "INSERT INTO ro_test.webhook_events (event_id) VALUES ('evt_x')",
    "DROP TABLE ro_test.webhook_events",
    "TRUNCATE TABLE ro_test.webhook_events",
    "ALTER TABLE ro_test.webhook_events DELETE WHERE 1",
    "CREATE TABLE ro_test.other (x UInt8) ENGINE = Memory",
    "OPTIMIZE TABLE ro_test.webhook_events FINAL",
    "SET max_threads = 1",
]


@pytest.mark.parametrize("sql", WRITES)
def test_clickhouse_refuses_writes_under_the_read_settings(store: MetricsStore, sql: str) -> None:
    """The settings every read carries make ClickHouse itself refuse a write (code 164)."""
    with pytest.raises(Exception, match="READONLY"):
        store._client.query(sql, settings=READ_ONLY)
    assert _count(store) == 1


@pytest.mark.parametrize(
    "sql",
    [
        *WRITES,
        "SELECT 1; INSERT INTO ro_test.webhook_events (event_id) VALUES ('evt_y')",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
        "",
    ],
)
def test_anything_but_one_read_is_rejected(store: MetricsStore, sql: str) -> None:
    with pytest.raises(QueryRejected, match="DB::Exception"):
        store.query(sql)
    assert _count(store) == 1


@pytest.mark.parametrize(
    "tail", ["", " --", " /*", " SETTINGS max_threads = (1", " COMPRESSION 'gzip' LEVEL (1"]
)
def test_no_local_file_export(store: MetricsStore, tmp_path: Path, tail: str) -> None:
    """INTO OUTFILE (a client-side export chdb would run) cannot get past the parser."""
    target = tmp_path / "out.txt"
    close = ")" if tail else ""
    with pytest.raises(QueryRejected):
        store.query(f"SELECT 1{close} INTO OUTFILE '{target}'{tail}")
    assert not target.exists()
