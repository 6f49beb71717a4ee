"""The metrics sink on the real broker and the real embedded store (chdb)."""

# ruff: noqa: S608 - SQL built from the test's own database names

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from paystream.hashing import customer_hash
from paystream.runtime.store import MetricsStore, QueryRejected, open_store
from paystream.runtime.store_endpoint import HttpStoreReader, read_endpoint_file
from sinks.settings import SinkSettings
from tests.integration.metrics.conftest import (
    FlakyStore,
    Pipeline,
    RunningSink,
    lifecycle_change,
    sink_result,
    stripe_envelope,
)

pytestmark = pytest.mark.broker

NOW = int(time.time())


def _traffic(fixtures: Path, n: int, tag: str) -> tuple[list[Any], list[Any], list[Any]]:
    events, changes, results = [], [], []
    for i in range(n):
        customer = f"cus_{tag}{i:04d}"
        event_id = f"evt_{tag}{i:04d}"
        created = NOW - 600 + i
        events.append(
            stripe_envelope(
                fixtures,
                "invoice_paid",
                event_id=event_id,
                customer=customer,
                created=created,
                received_at_ms=created * 1000 + 200,
            )
        )
        changes.append(
            lifecycle_change(
                customer=customer,
                event_id=event_id,
                event_type="invoice.paid",
                new_state="active",
                created=created,
                at_ms=created * 1000 + 400,
            )
        )
        results.append(
            sink_result(
                sink="crm",
                key=f"crm:{customer}:{event_id}",
                outcome="delivered",
                attempts=1,
                event_type="invoice.paid",
                created=created,
                acked_at_ms=created * 1000 + 900,
                customer=customer,
            )
        )
    return events, changes, results


def _counts(run: RunningSink, db: str, final: bool = True) -> dict[str, int]:
    suffix = " FINAL" if final else ""
    return {
        table: int(run.query(f"SELECT count() FROM {db}.{table}{suffix}").rows[0][0])
        for table in ("webhook_events", "lifecycle_changes", "sink_attempts")
    }


def _committed(settings: SinkSettings) -> int:
    """Sum of the group's committed offsets over the three topics (committed, not end offsets)."""
    consumer = Consumer(settings.consumer_config(settings.metrics_consumer_group))
    try:
        t = settings.topics
        parts = [
            TopicPartition(topic, p)
            for topic in (t.stripe_events, t.customer_lifecycle, t.sink_results)
            for p in range(settings.paystream_topic_partitions)
        ]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def test_rows_land_in_every_table_hashed_and_offsets_commit_after_the_store(
    pipeline: Pipeline,
    metrics_settings: SinkSettings,
    start_sink: Callable[..., RunningSink],
    stripe_fixtures_dir: Path,
) -> None:
    events, changes, results = _traffic(stripe_fixtures_dir, 30, "land")
    pipeline.publish_events(events)
    pipeline.publish_lifecycle(changes)
    pipeline.publish_results(results)
    run = start_sink(metrics_settings)
    db = metrics_settings.store_database
    run.wait_for(
        f"SELECT count() FROM {db}.sink_attempts FINAL",
        lambda r: r.rows[0][0] >= 30,
    )
    run.wait_for(
        f"SELECT (SELECT count() FROM {db}.webhook_events) + "
        f"(SELECT count() FROM {db}.lifecycle_changes)",
        lambda r: r.rows[0][0] >= 60,
    )
    assert _counts(run, db) == {"webhook_events": 30, "lifecycle_changes": 30, "sink_attempts": 30}

    # Customer ids leave only hashed; the hash is the documented one.
    stored = run.query(f"SELECT customer_hash, event_id FROM {db}.webhook_events ORDER BY event_id")
    assert stored.rows[0] == [customer_hash("cus_land0000"), "evt_land0000"]
    everything = run.query(
        f"SELECT * FROM {db}.webhook_events UNION ALL SELECT * FROM {db}.webhook_events"
    )
    assert "cus_land" not in repr(everything.rows)
    run.shutdown()
    assert _committed(metrics_settings) == pipeline.sent


def test_store_briefly_unavailable_loses_and_doubles_nothing(
    pipeline: Pipeline,
    metrics_settings: SinkSettings,
    start_sink: Callable[..., RunningSink],
    stripe_fixtures_dir: Path,
) -> None:
    flaky: list[FlakyStore] = []

    def factory(settings: SinkSettings) -> MetricsStore:
        store = FlakyStore(open_store(settings), fail_before=3, fail_after=2)
        flaky.append(store)
        return store

    events, changes, results = _traffic(stripe_fixtures_dir, 40, "flaky")
    pipeline.publish_events(events)
    pipeline.publish_lifecycle(changes)
    pipeline.publish_results(results)
    run = start_sink(metrics_settings, factory)
    db = metrics_settings.store_database
    run.wait_for(
        f"SELECT (SELECT count() FROM {db}.webhook_events FINAL) + "
        f"(SELECT count() FROM {db}.lifecycle_changes FINAL) + "
        f"(SELECT count() FROM {db}.sink_attempts FINAL)",
        lambda r: r.rows[0][0] >= 120,
    )
    assert flaky[0].refused == 3
    assert flaky[0].acks_lost == 2
    registry = run.sink.metrics.registry
    assert registry.get_sample_value("paystream_metrics_store_errors_total") == 5
    assert _counts(run, db) == {"webhook_events": 40, "lifecycle_changes": 40, "sink_attempts": 40}
    run.shutdown()
    assert _committed(metrics_settings) == pipeline.sent
    stored = sum(
        registry.get_sample_value("paystream_metrics_rows_stored_total", {"table": t}) or 0
        for t in ("webhook_events", "lifecycle_changes", "sink_attempts")
    )
    assert stored >= 120


def test_crash_between_insert_and_commit_doubles_nothing(
    pipeline: Pipeline,
    metrics_settings: SinkSettings,
    start_sink: Callable[..., RunningSink],
    stripe_fixtures_dir: Path,
) -> None:
    """The first sink stores a batch and 'dies' before committing; the next one re-reads it."""

    class DiesAfterInsert(FlakyStore):
        """Stores the first insert, then never answers again: the process is as good as dead.

        (The first insert, whatever its table: which topics the first batch holds depends
        on the consumer, and the batch must not be committed either way.)
        """

        def insert(self, table: str, rows: Any, token: str | None = None) -> None:
            from paystream.runtime.store import MetricsStoreUnavailable

            if self.acks_lost:
                raise MetricsStoreUnavailable("process gone (injected)")
            MetricsStore.insert(self, table, rows, token)
            self.acks_lost += 1
            raise MetricsStoreUnavailable("process gone (injected)")

    stores: list[DiesAfterInsert] = []

    def factory(settings: SinkSettings) -> MetricsStore:
        stores.append(DiesAfterInsert(open_store(settings)))
        return stores[0]

    events, changes, results = _traffic(stripe_fixtures_dir, 25, "crash")
    pipeline.publish_events(events)
    pipeline.publish_lifecycle(changes)
    pipeline.publish_results(results)
    first = start_sink(metrics_settings, factory)
    deadline = time.monotonic() + 60
    while not stores[0].acks_lost and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stores[0].acks_lost == 1
    first.shutdown()
    assert _committed(metrics_settings) == 0

    second = start_sink(metrics_settings)
    db = metrics_settings.store_database
    second.wait_until(lambda: second.sink.rows_stored >= pipeline.sent)
    second.wait_for(f"SELECT count() FROM {db}.sink_attempts FINAL", lambda r: r.rows[0][0] >= 25)
    second.wait_for(
        f"SELECT count() FROM {db}.lifecycle_changes FINAL", lambda r: r.rows[0][0] >= 25
    )
    assert _counts(second, db) == {
        "webhook_events": 25,
        "lifecycle_changes": 25,
        "sink_attempts": 25,
    }
    second.shutdown()
    assert _committed(metrics_settings) == pipeline.sent


def test_undecodable_message_is_skipped_and_the_rest_stored(
    pipeline: Pipeline,
    metrics_settings: SinkSettings,
    start_sink: Callable[..., RunningSink],
    stripe_fixtures_dir: Path,
) -> None:
    from tests.kafka_helpers import produce

    produce(pipeline.settings, pipeline.settings.topics.sink_results, [("k", b"not avro at all")])
    _, _, results = _traffic(stripe_fixtures_dir, 5, "skip")
    pipeline.publish_results(results)
    run = start_sink(metrics_settings)
    db = metrics_settings.store_database
    run.wait_for(f"SELECT count() FROM {db}.sink_attempts FINAL", lambda r: r.rows[0][0] >= 5)
    run.shutdown()
    assert _committed(metrics_settings) == pipeline.sent + 1


def test_query_endpoint_serves_read_only_queries_to_the_token_holder(
    metrics_settings: SinkSettings, start_sink: Callable[..., RunningSink]
) -> None:
    run = start_sink(metrics_settings)
    url, token = read_endpoint_file(metrics_settings.query_endpoint_file)
    assert url == run.sink.query_url
    assert url.startswith("http://127.0.0.1:")
    db = metrics_settings.store_database
    reader = HttpStoreReader(url, token)
    result = reader.query(f"SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name")
    names = [r[0] for r in result.rows]
    assert {"webhook_events", "lifecycle_changes", "sink_attempts"} <= set(names)
    assert "sync_latency_per_minute" in names
    # refused by ClickHouse itself (its DB::Exception comes back), not by the endpoint
    with pytest.raises(QueryRejected, match="DB::Exception"):
        reader.query(f"INSERT INTO {db}.sink_attempts (sink) VALUES ('x')")
    with pytest.raises(QueryRejected, match="DB::Exception"):
        reader.query(f"SELECT 1; DROP TABLE {db}.sink_attempts")
    with pytest.raises(QueryRejected, match="READONLY"):
        reader.query("SELECT * FROM file('/etc/hostname', 'LineAsString')")
    assert reader.query(f"SELECT count() FROM {db}.sink_attempts WHERE sink = 'x'").rows == [[0]]
    with pytest.raises(QueryRejected, match="401"):
        HttpStoreReader(url, "wrong-" + uuid.uuid4().hex).query("SELECT 1")
    with pytest.raises(QueryRejected, match="404"):
        HttpStoreReader(url.replace("/query", "/other"), token).query("SELECT 1")
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    for length in ("abc", "-5", str(10**9)):
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        conn.putrequest("POST", "/query")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Length", length)
        conn.endheaders()
        assert conn.getresponse().status == 413
        conn.close()
    assert reader.query("SELECT 41 + 1").rows == [[42]]  # still serving
    run.shutdown()
    assert not metrics_settings.query_endpoint_file.exists()


def _wait_for_count(url_file: Path, sql: str, minimum: int, proc: Any, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            url, token = read_endpoint_file(url_file)
            count = int(HttpStoreReader(url, token, timeout=5).query(sql).rows[0][0])
        except Exception:  # the sink is still starting
            count = -1
        if count >= minimum:
            return count
        time.sleep(0.3)
    pytest.fail(f"{sql}: {count} < {minimum} after {timeout}s")


def test_kill_9_of_the_sinks_process_loses_and_doubles_nothing(
    pipeline: Pipeline,
    metrics_settings: SinkSettings,
    broker_env: Callable[..., dict[str, str]],
    stripe_fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    """`paystream sinks metrics` killed with SIGKILL mid-stream, then restarted."""
    import signal
    import subprocess
    import sys

    env = broker_env(
        metrics_settings.topic_prefix,
        PAYSTREAM_DATA_DIR=str(tmp_path),
        PAYSTREAM_SINKS_METRICS_PORT="0",
        PAYSTREAM_METRICS_BATCH_SIZE="20",
        PAYSTREAM_METRICS_BATCH_INTERVAL_S="0.3",
    )
    env.pop("CLICKHOUSE_URL", None)
    command = [str(Path(sys.executable).with_name("paystream")), "sinks", "metrics"]
    endpoint = tmp_path / "metrics-query.json"
    db = "paystream"
    total = f"SELECT count() FROM {db}.sink_attempts FINAL"

    first_half: list[dict[str, Any]] = []
    second_half: list[dict[str, Any]] = []
    for i in range(3):
        _, _, results = _traffic(stripe_fixtures_dir, 40, f"kill{i}")
        (first_half if i < 2 else second_half).extend(results)
    pipeline.publish_results(first_half)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_count(endpoint, total, 1, proc)
        pipeline.publish_results(second_half)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)

    again = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_count(endpoint, total, 120, again)
        time.sleep(2)  # let anything re-read settle; the count must stay exact
        url, token = read_endpoint_file(endpoint)
        reader = HttpStoreReader(url, token)
        assert int(reader.query(total).rows[0][0]) == 120
        keys = reader.query(
            f"SELECT uniqExact(idempotency_key), count() FROM {db}.sink_attempts FINAL"
        ).rows[0]
        assert keys == [120, 120]
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=60)
    finally:
        if again.poll() is None:
            again.kill()
        _, err = again.communicate(timeout=30)
    assert again.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err


def test_store_deduplicates_by_token_at_insert_and_by_key_on_read(
    metrics_settings: SinkSettings, stripe_fixtures_dir: Path
) -> None:
    """What the sink relies on, checked on chdb itself: insert tokens and FINAL."""
    from paystream.runtime.store import batch_token, load_ddl
    from schemas.codec import SINK_RESULT
    from sinks.metrics_rows import to_row

    store = open_store(metrics_settings)
    try:
        db = store.database
        store.apply_ddl(load_ddl(db, 30))
        store.apply_ddl(load_ddl(db, 30))  # idempotent
        _, _, results = _traffic(stripe_fixtures_dir, 10, "token")
        rows = [to_row(SINK_RESULT, r) for r in results]
        values = [r.values for r in rows]
        token = batch_token("sink_attempts", [r.key for r in rows])
        store.insert("sink_attempts", values, token)
        store.insert("sink_attempts", values, token)  # a retried batch: dropped at insert
        raw = f"SELECT count() FROM {db}.sink_attempts"
        assert store.query(raw).rows == [[10]]
        store.insert("sink_attempts", values[:5], "another-token")  # re-consumed, new batch
        assert store.query(raw).rows == [[15]]
        assert store.query(raw + " FINAL").rows == [[10]]
    finally:
        store.close()


def test_a_sink_attempts_table_of_the_first_release_gets_the_delivery_column(
    metrics_settings: SinkSettings, stripe_fixtures_dir: Path
) -> None:
    """The start-up DDL migrates a table made before ``delivery`` existed: its rows read
    ``first``, new rows keep theirs, and the latency view counts first deliveries only."""
    from paystream.runtime.store import DDL_DIR, load_ddl, render_ddl
    from schemas.codec import SINK_RESULT
    from sinks.metrics_rows import to_row

    store = open_store(metrics_settings)
    try:
        db = store.database
        first_release = [
            re.sub(r",\n\s+delivery .*\n\)", "\n)", s)
            for s in render_ddl((DDL_DIR / "001_tables.sql").read_text(), db, 30)
            if not s.startswith("ALTER")
        ]
        store.apply_ddl(first_release)
        columns = (
            f"SELECT name FROM system.columns WHERE database = '{db}' AND table = 'sink_attempts'"
        )
        assert ["delivery"] not in store.query(columns).rows
        assert ["correlation_id"] in store.query(columns).rows
        store.apply_ddl(
            [
                f"INSERT INTO {db}.sink_attempts (acked_at, event_created, received_at,"
                " processed_at, sink, idempotency_key, outcome, attempts, reason_code,"
                " call_latency_ms, customer_hash, cause_event_id, cause_event_type,"
                " correlation_id) VALUES (now64(3), now() - 5, now64(3), now64(3), 'crm',"
                " 'crm:h:evt_old', 'delivered', 1, '', 1.5, 'h', 'evt_old', 'invoice.paid', 'c')"
            ]
        )
        store.apply_ddl(load_ddl(db, 30))  # what the sink runs at start-up
        _, _, results = _traffic(stripe_fixtures_dir, 1, "migrate")
        late = to_row(SINK_RESULT, results[0] | {"delivery": "reconcile"})
        store.insert("sink_attempts", [late.values])
        by_delivery = f"SELECT delivery, count() FROM {db}.sink_attempts GROUP BY 1 ORDER BY 1"
        assert store.query(by_delivery).rows == [["first", 1], ["reconcile", 1]]
        syncs = f"SELECT sum(syncs) FROM {db}.sync_latency_per_minute"
        assert store.query(syncs).rows == [[1]]
    finally:
        store.close()


def test_store_unavailable_at_start_up_is_waited_for(
    pipeline: Pipeline,
    metrics_settings: SinkSettings,
    start_sink: Callable[..., RunningSink],
    stripe_fixtures_dir: Path,
) -> None:
    attempts: list[int] = []

    def factory(settings: SinkSettings) -> MetricsStore:
        attempts.append(1)
        if len(attempts) <= 2:
            raise ConnectionRefusedError("store starting (injected)")
        return open_store(settings)

    _, _, results = _traffic(stripe_fixtures_dir, 8, "late")
    pipeline.publish_results(results)
    run = start_sink(metrics_settings, factory)
    db = metrics_settings.store_database
    run.wait_for(f"SELECT count() FROM {db}.sink_attempts FINAL", lambda r: r.rows[0][0] >= 8)
    assert len(attempts) == 3
    errors = run.sink.metrics.registry.get_sample_value("paystream_metrics_store_errors_total")
    assert errors == 2
    run.shutdown()
    assert _committed(metrics_settings) == pipeline.sent


def test_open_exceptions_view_follows_the_dead_lettered_commands(
    pipeline: Pipeline,
    metrics_settings: SinkSettings,
    start_sink: Callable[..., RunningSink],
    stripe_fixtures_dir: Path,
) -> None:
    """The store's ``open_exceptions`` view: commands whose last outcome is dead-lettered.

    ``paystream_exceptions_open`` is the admin's (the rows its page shows), never this sink's.
    """
    _, _, results = _traffic(stripe_fixtures_dir, 6, "dlq")
    dead = [dict(r, outcome="dead_lettered", reason_code="server_error") for r in results[:3]]
    # the first dead-lettered command was retried from the exception queue and delivered
    retried = dict(results[0], attempts=2, acked_at_ms=results[0]["acked_at_ms"] + 60_000)
    pipeline.publish_results([*results[3:], *dead, retried])
    run = start_sink(metrics_settings)
    db = metrics_settings.store_database
    registry = run.sink.metrics.registry
    run.wait_until(lambda: run.sink.rows_stored >= len(results) + 1)
    open_keys = run.query(f"SELECT idempotency_key FROM {db}.open_exceptions ORDER BY 1")
    assert [row[0] for row in open_keys.rows] == sorted(
        r["idempotency_key"].replace(r["customer_id"], customer_hash(r["customer_id"]))
        for r in dead[1:]
    )
    assert registry.get_sample_value("paystream_exceptions_open") == 0.0  # not this sink's
