"""Throughput of the metrics sink into the embedded store: batched vs one row per insert.

Run: .venv/bin/python -m tests.integration.metrics.bench_metrics_sink [N]
Starts its own embedded broker, publishes N sink results, and times how long the real
metrics sink takes to store them all with the default batching and, as the baseline
measured in the same run, with one row per insert. Prints figures and their ratio.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from paystream.metrics import PaystreamMetrics
from paystream.runtime.broker import EmbeddedBroker
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings
from schemas.codec import SINK_RESULT, default_codec
from sinks.metrics_sink import MetricsSink
from sinks.settings import SinkSettings
from tests.integration.metrics.conftest import sink_result
from tests.kafka_helpers import produce


def run_once(bootstrap: str, n: int, batch_size: int, data_dir: Path) -> float:
    """Rows per second stored, after the first batch."""
    prefix = f"b{uuid.uuid4().hex[:8]}."
    common = CommonSettings(
        kafka_bootstrap_servers=bootstrap,
        paystream_broker_profile="embedded",
        paystream_topic_prefix=prefix,
        paystream_topic_partitions=2,
    )
    ensure_topics(bootstrap, common.topics.specs())
    codec = default_codec()
    now = int(time.time())
    items = []
    for i in range(n):
        record = sink_result(
            sink="crm",
            key=f"crm:cus_b{i:07d}:evt_b{i:07d}",
            outcome="delivered",
            attempts=1,
            event_type="invoice.paid",
            created=now - 5,
            acked_at_ms=now * 1000 + i,
        )
        items.append((record["idempotency_key"], codec.encode(SINK_RESULT, record)))
    produce(common, common.topics.sink_results, items)
    values = common.model_dump()
    values.update(
        paystream_data_dir=str(data_dir),
        paystream_metrics_database="bench" + uuid.uuid4().hex[:6],
        paystream_metrics_batch_size=batch_size,
        paystream_metrics_batch_interval_s=0.5,
        clickhouse_url=None,
    )
    sink = MetricsSink(SinkSettings(**values), PaystreamMetrics())
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    sink.ready.wait(60)
    # Time from the first stored batch on: the consumer-group join is not the sink's speed.
    deadline = time.monotonic() + 600
    while sink.rows_stored == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started, first = time.monotonic(), sink.rows_stored
    while sink.rows_stored < n:
        time.sleep(0.01)
        if time.monotonic() > deadline:
            raise SystemExit(f"only {sink.rows_stored} of {n} rows stored in time")
    elapsed = time.monotonic() - started
    stop.set()
    thread.join(60)
    return (n - first) / elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    baseline_n = max(200, n // 50)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=Path(tmp) / "b.log") as b:
        batched = run_once(b.bootstrap_servers, n, 1000, Path(tmp) / "store")
        single = run_once(b.bootstrap_servers, baseline_n, 1, Path(tmp) / "store")
    print(f"batched (1000 rows/insert): {n} rows, {batched:,.0f} rows/s")
    print(f"baseline (1 row/insert): {baseline_n} rows, {single:,.0f} rows/s")
    print(f"metrics sink batched/single-row throughput ratio: {batched / single:.1f}")


if __name__ == "__main__":
    main()
