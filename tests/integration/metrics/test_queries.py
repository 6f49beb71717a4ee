"""The analysts' queries of docs/queries.md, run on rows that went through Kafka and the sink.

The SQL is read from docs/queries.md itself. Expected figures are computed here in Python
from the messages the test published, with the definitions docs/queries.md gives.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paystream.hashing import customer_hash
from paystream.metrics import PaystreamMetrics
from paystream.runtime.store import QueryResult
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings
from sinks.settings import SinkSettings
from tests.integration.metrics.conftest import (
    Pipeline,
    RunningSink,
    launch_sink,
    lifecycle_change,
    sink_result,
    stripe_envelope,
)

pytestmark = pytest.mark.broker

QUERIES_MD = Path(__file__).resolve().parents[3] / "docs" / "queries.md"


def documented_query(name: str, database: str) -> str:
    text = QUERIES_MD.read_text()
    match = re.search(rf"<!-- query: {name} -->\s*```sql\n(.*?)```", text, re.DOTALL)
    assert match, f"query {name} not found in docs/queries.md"
    return match.group(1).replace("paystream.", f"{database}.")


def nearest_rank(values: list[float], level: float) -> float:
    """ClickHouse quantileExact: the element at index floor(level * n) of the sorted values."""
    ordered = sorted(values)
    return ordered[min(int(level * len(ordered)), len(ordered) - 1)]


def is_first_delivery(result: dict[str, Any]) -> bool:
    """A sync as the latency queries count it (docs/queries.md): delivered, first time."""
    return bool(result["outcome"] == "delivered" and result["delivery"] == "first")


def minute_of(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 60_000 * 60, tz=UTC)


def quarter_of(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 900_000 * 900, tz=UTC)


def as_dt(value: Any) -> datetime:
    """A DateTime column as returned by the store (string) or datetime, in UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


@dataclass
class Dataset:
    envelopes: list[dict[str, Any]]
    results: list[dict[str, Any]]
    run: RunningSink
    database: str
    settings: SinkSettings

    def query(self, name: str) -> QueryResult:
        return self.run.query(documented_query(name, self.database))


def build_results(now_ms: int, rng: random.Random) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    m1 = (now_ms // 60_000 - 90) * 60_000  # a minute 90 minutes ago
    m2 = m1 + 60_000

    def crm(
        event_type: str, acked_ms: int, latency_s: int, outcome: str = "delivered", **kw: Any
    ) -> None:
        key = kw.pop("key", f"crm:cus_q{len(results):05d}:evt_q{len(results):05d}")
        results.append(
            sink_result(
                sink=kw.pop("sink", "crm"),
                key=key,
                outcome=outcome,
                attempts=kw.pop("attempts", 1),
                event_type=event_type,
                created=acked_ms // 1000 - latency_s,
                acked_at_ms=acked_ms,
                **kw,
            )
        )

    latencies = list(range(1, 41))
    rng.shuffle(latencies)
    for i, lat in enumerate(latencies):  # 40 syncs of invoice.paid in minute 1
        crm("invoice.paid", m1 + 1000 + i * 997, lat)
    for i, lat in enumerate([3, 9, 4, 30, 7, 12]):
        crm("invoice.payment_failed", m1 + 2000 + i * 5003, lat)
    for i, lat in enumerate([2, 5, 1]):  # minute 2
        crm("invoice.paid", m2 + 500 + i * 10_000, lat)
    # Recent syncs, inside the 15-minute window of `paystream status`.
    recent = now_ms - 120_000
    for i, lat in enumerate([1, 2, 3, 4, 5, 6, 40]):
        crm("customer.subscription.updated", recent + i * 1000, lat)
    crm("charge.dispute.created", recent, 9, sink="helpdesk")
    # Not syncs: failed attempts (slow on purpose) and the helpdesk.
    crm("invoice.paid", m1 + 3000, 500, outcome="retry", reason_code="http_503")
    crm("invoice.paid", m1 + 4000, 700, outcome="dead_lettered", reason_code="http_400")
    crm("charge.dispute.created", m1 + 5000, 900, sink="helpdesk")
    # Not syncs either: a dry-run call (never sent), a retry pressed a day later in the
    # exception queue and an event reconcile recovered hours late, in both windows.
    for at in (m1 + 6000, recent + 500):
        crm("invoice.paid", at, 800, outcome="dry_run")
        crm("invoice.paid", at, 86_000, delivery="retry")
        crm("invoice.paid", at, 7_200, delivery="reconcile")

    # Failure-rate windows an hour later: 10 crm attempts, 3 retry, 1 dead-lettered; helpdesk 4/1.
    w = (now_ms // 900_000 - 3) * 900_000
    for i, outcome in enumerate(["retry"] * 3 + ["dead_lettered"] + ["delivered"] * 6):
        crm("invoice.paid", w + 1000 + i * 1000, 2, outcome=outcome, attempts=1 + i % 3)
    for i, outcome in enumerate(["retry", "delivered", "delivered", "dry_run"]):
        crm("charge.dispute.created", w + 60_000 + i * 1000, 3, outcome=outcome, sink="helpdesk")

    # Exception-queue stories, ten days ago then two days ago (usually two different weeks).
    ten_days = now_ms - 10 * 86_400_000
    yesterday = now_ms - 2 * 86_400_000 - 3_600_000  # outside the one-day queries
    stories = {
        "crm:cus_retried:evt_1": [
            (ten_days, "retry", 1),
            (ten_days + 5000, "dead_lettered", 6),
            (yesterday - 10_000, "retried", 6),  # a person pressed Retry: intervention
            (yesterday, "delivered", 1),
        ],
        "crm:cus_replayed:evt_5": [
            (ten_days + 30_000, "dead_lettered", 1),
            (yesterday + 5000, "delivered", 1),  # the worker re-emitted it: nobody acted
        ],
        "crm:cus_dismissed:evt_2": [
            (ten_days + 9000, "dead_lettered", 1),
            (yesterday + 1000, "dismissed", 1),  # a person dismissed it: intervention
        ],
        "paystream:chargeback:dp_open": [
            (ten_days + 20_000, "dead_lettered", 6),  # still open
        ],
        "crm:cus_recent:evt_4": [
            (w + 30_000, "dead_lettered", 6),
            (w + 90_000, "dismissed", 6),  # within the last day: not an attempt, an intervention
        ],
        "crm:cus_repaired:evt_6": [
            (yesterday + 3000, "repaired", 0),  # paystream crm-repair --apply: intervention
            (yesterday + 6000, "delivered", 1),
        ],
        "crm:cus_auto:evt_3": [
            (yesterday + 2000, "retry", 1),
            (yesterday + 4000, "delivered", 2),  # automatic retry: no intervention
        ],
    }
    for key, steps in stories.items():
        sink = "helpdesk" if key.startswith("paystream:") else "crm"
        for acked, outcome, attempts in steps:
            crm(
                "invoice.payment_failed",
                acked,
                60,
                outcome=outcome,
                attempts=attempts,
                key=key,
                sink=sink,
                reason_code="http_400" if outcome == "dead_lettered" else None,
            )
    return results


def build_envelopes(fixtures: Path, now_ms: int) -> list[dict[str, Any]]:
    day = 86_400_000
    two_days_ago = (now_ms // day - 2) * day + 3_600_000
    yesterday = two_days_ago + day
    deliveries = [
        # (event, received_at_ms): A once, B three times the same day, C on two days
        ("evt_dupA", two_days_ago),
        ("evt_dupB", two_days_ago + 1000),
        ("evt_dupB", two_days_ago + 61_000),
        ("evt_dupB", two_days_ago + 3_600_000),
        ("evt_dupC", two_days_ago + 2000),
        ("evt_dupC", yesterday + 5000),
        ("evt_dupD", yesterday + 7000),
    ]
    return [
        stripe_envelope(
            fixtures,
            "invoice_paid",
            event_id=event_id + "_" + str(now_ms),
            customer="cus_dup" + event_id[-1],
            created=received // 1000 - 2,
            received_at_ms=received,
        )
        for event_id, received in deliveries
    ]


@pytest.fixture(scope="module")
def dataset(
    kafka_bootstrap: str,
    broker_profile: str,
    store_dir: Path,
    stripe_fixtures_dir: Path,
) -> Iterator[Dataset]:
    prefix = f"q{uuid.uuid4().hex[:10]}."
    common = CommonSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        paystream_broker_profile=broker_profile,
        paystream_topic_prefix=prefix,
        paystream_topic_partitions=2,
    )
    ensure_topics(kafka_bootstrap, common.topics.specs())
    values: dict[str, Any] = common.model_dump()
    database = "q" + uuid.uuid4().hex[:10]
    values.update(
        paystream_data_dir=str(store_dir),
        paystream_metrics_database=database,
        paystream_metrics_batch_size=40,
        paystream_metrics_batch_interval_s=0.5,
        clickhouse_url=None,
    )
    settings = SinkSettings(**values)
    now_ms = int(time.time() * 1000)
    rng = random.Random(6)
    results = build_results(now_ms, rng)
    envelopes = build_envelopes(stripe_fixtures_dir, now_ms)
    pipeline = Pipeline(common)
    pipeline.publish_events(envelopes)
    # Every result is published twice (a producer retry, a sink replay): views count it once.
    doubled = results + results
    rng.shuffle(doubled)
    pipeline.publish_results(doubled)
    pipeline.publish_lifecycle(
        [
            lifecycle_change(
                customer="cus_dupA",
                event_id=envelopes[0]["event_id"],
                event_type="invoice.paid",
                new_state="active",
                created=envelopes[0]["created"],
                at_ms=envelopes[0]["received_at_ms"] + 300,
            )
        ]
    )

    run = launch_sink(settings, name="metrics-sink-queries")
    run.wait_until(lambda: run.sink.rows_stored >= pipeline.sent, timeout=90)
    try:
        yield Dataset(envelopes, results, run, database, settings)
    finally:
        run.shutdown()


def test_p95_crm_sync_latency_per_minute_and_event_type(dataset: Dataset) -> None:
    groups: dict[tuple[datetime, str], list[float]] = defaultdict(list)
    for r in dataset.results:
        if r["sink"] == "crm" and is_first_delivery(r):
            latency = (r["acked_at_ms"] - r["event_created"] * 1000) / 1000
            groups[(minute_of(r["acked_at_ms"]), r["cause_event_type"])].append(latency)
    expected = {
        key: (len(v), nearest_rank(v, 0.5), nearest_rank(v, 0.95), max(v))
        for key, v in groups.items()
        if key[0] >= datetime.now(UTC) - timedelta(days=1)
    }
    rows = dataset.query("sync_latency").dicts()
    got = {
        (as_dt(r["minute"]), r["event_type"]): (r["syncs"], r["p50_s"], r["p95_s"], r["max_s"])
        for r in rows
    }
    assert got == expected
    # The 40-sync minute shows a p95 below its maximum: a real quantile, not max().
    big = max(expected.values(), key=lambda v: v[0])
    assert big[0] == 40 and big[2] < big[3]


def test_failure_rate_per_15_minutes(dataset: Dataset) -> None:
    tally: dict[tuple[datetime, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in dataset.results:
        if r["outcome"] in ("dismissed", "retried", "repaired"):  # a person's, not an attempt
            continue
        t = tally[(quarter_of(r["acked_at_ms"]), r["sink"])]
        t[0] += 1
        t[1] += r["outcome"] in ("retry", "dead_lettered")
        t[2] += r["outcome"] == "dead_lettered"
    since = datetime.now(UTC) - timedelta(days=1)
    expected = {k: (a, f, d, round(f / a, 4)) for k, (a, f, d) in tally.items() if k[0] >= since}
    rows = dataset.query("failure_rate").dicts()
    got = {
        (as_dt(r["window_start"]), r["sink"]): (
            r["attempts"],
            r["failures"],
            r["dead_lettered"],
            r["failure_rate"],
        )
        for r in rows
    }
    assert got == expected
    # the crm window: 3 retries and 2 dead letters in 11 attempts; the dismissal is no attempt
    assert (11, 5, 2, round(5 / 11, 4)) in got.values()


def test_duplicates_per_day(dataset: Dataset) -> None:
    seen: set[str] = set()
    per_day: dict[date, list[Any]] = defaultdict(lambda: [0, set(), 0])
    for e in sorted(dataset.envelopes, key=lambda e: (e["received_at_ms"], e["correlation_id"])):
        day = datetime.fromtimestamp(e["received_at_ms"] / 1000, tz=UTC).date()
        entry = per_day[day]
        entry[0] += 1
        entry[1].add(e["event_id"])
        entry[2] += e["event_id"] in seen
        seen.add(e["event_id"])
    expected = {d: (n, len(ids), dups) for d, (n, ids, dups) in per_day.items()}
    rows = dataset.query("duplicates").dicts()
    got = {
        date.fromisoformat(str(r["day"])): (r["deliveries"], r["distinct_events"], r["duplicates"])
        for r in rows
    }
    assert got == expected
    assert sum(v[2] for v in got.values()) == 3


def test_manual_interventions_per_week(dataset: Dataset) -> None:
    tally: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in dataset.results:
        # what the admin view writes, and paystream crm-repair --apply
        if r["outcome"] in ("retried", "dismissed", "repaired"):
            day = datetime.fromtimestamp(r["acked_at_ms"] / 1000, tz=UTC).date()
            t = tally[(day - timedelta(days=day.weekday()), r["sink"])]
            t[0] += 1
            t[1] += r["outcome"] == "retried"
            t[2] += r["outcome"] == "dismissed"
    expected = {k: tuple(v) for k, v in tally.items()}
    rows = dataset.query("manual_interventions").dicts()
    got = {
        (date.fromisoformat(str(r["week"])), r["sink"]): (
            r["interventions"],
            r["retries"],
            r["dismissals"],
        )
        for r in rows
    }
    assert got == expected
    assert sum(v[0] for v in got.values()) == 4  # a retry, two dismissals, a repair


def test_open_exceptions(dataset: Dataset) -> None:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(dataset.results, key=lambda r: (r["acked_at_ms"], r["attempts"])):
        latest[(r["sink"], r["idempotency_key"])] = r
    expected = sorted(k for k, r in latest.items() if r["outcome"] == "dead_lettered")
    rows = dataset.query("open_exceptions").dicts()
    assert sorted((r["sink"], r["idempotency_key"]) for r in rows) == expected
    assert ("helpdesk", "paystream:chargeback:dp_open") in expected
    assert ("crm", "crm:cus_retried:evt_1") not in expected


def test_one_customers_path_through_the_pipeline(dataset: Dataset) -> None:
    sql = documented_query("customer_path", dataset.database).replace(
        "<customer hash>", customer_hash("cus_dupA")
    )
    rows = dataset.run.query(sql).rows
    first = dataset.envelopes[0]
    assert [(stage, what, ref) for stage, _, what, ref in rows] == [
        ("webhook", "invoice.paid", first["event_id"]),
        ("state", "active", first["event_id"]),
    ]


class IngestMetricsStandIn:
    """Serves a real PaystreamMetrics exposition, as ingest's /metrics would."""

    def __init__(self, ok: int, rejected: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from prometheus_client import generate_latest

        metrics = PaystreamMetrics()
        metrics.webhook_requests.labels(status="200", reason="received").inc(ok)
        metrics.webhook_requests.labels(status="401", reason="invalid_signature").inc(rejected)
        body = generate_latest(metrics.registry)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_status(
    dataset: Dataset, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    paystream = Path(sys.executable).with_name("paystream")
    return subprocess.run(
        [str(paystream), "status", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_reads_the_embedded_store_through_the_sink_and_the_broker(
    dataset: Dataset, broker_env: Callable[..., dict[str, str]]
) -> None:
    from schemas.codec import DEAD_LETTER, default_codec
    from tests.kafka_helpers import produce

    letter = {
        "sink": "helpdesk",
        "idempotency_key": "paystream:chargeback:dp_status",
        "reason_code": "http_400",
        "last_error": "bad request",
        "attempts": 1,
        "failed_at_ms": int(time.time() * 1000),
        "customer_id": "cus_status",
        "cause_event_id": "evt_status",
        "correlation_id": "",
        "source_topic": dataset.settings.topics.sink_helpdesk,
        "command": b"",
    }
    key = letter["idempotency_key"]
    produce(
        dataset.settings,
        dataset.settings.topics.sink_dlq,
        [(key, default_codec().encode(DEAD_LETTER, letter))],
    )
    ingest = IngestMetricsStandIn(ok=97, rejected=3)
    try:
        env = broker_env(
            dataset.settings.topic_prefix,
            PAYSTREAM_DATA_DIR=dataset.settings.paystream_data_dir,
            PAYSTREAM_METRICS_DATABASE=dataset.database,
            PAYSTREAM_STATUS_INGEST_METRICS_URL=ingest.url,
        )
        env.pop("CLICKHOUSE_URL", None)
        result = run_status(dataset, env, "--json")
    finally:
        ingest.close()
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout)

    assert status["webhooks"]["success_rate"] == pytest.approx(0.97)
    assert status["webhooks"]["by_status"] == {"200": 97.0, "401": 3.0}

    since_ms = int(time.time() * 1000) - 15 * 60_000
    expected: dict[str, list[float]] = defaultdict(list)
    for r in dataset.results:
        if is_first_delivery(r) and r["acked_at_ms"] >= since_ms:
            expected[r["sink"]].append((r["acked_at_ms"] - r["event_created"] * 1000) / 1000)
    got = {row["sink"]: row for row in status["latency"]}
    assert set(got) == set(expected) == {"crm", "helpdesk"}
    for sink, values in expected.items():
        assert got[sink]["syncs"] == len(values)
        assert got[sink]["p50_s"] == nearest_rank(values, 0.5)
        assert got[sink]["p95_s"] == nearest_rank(values, 0.95)

    # Open exceptions come from Kafka (sink.dlq folded as the admin view does), not the store.
    assert status["exceptions"] == {"helpdesk": 1}
    assert status["exceptions_by_reason"] == [
        {"sink": "helpdesk", "reason_code": "http_400", "open": 1}
    ]

    # The metrics sink's group has committed; exact lag values are not asserted (the
    # embedded broker reports end offsets wrongly, and the output says so).
    assert dataset.settings.metrics_consumer_group in status["lag"]
    assert set(status["lag"][dataset.settings.metrics_consumer_group]) <= {
        dataset.settings.topics.stripe_events,
        dataset.settings.topics.customer_lifecycle,
        dataset.settings.topics.sink_results,
    }


def test_status_screen_for_an_operator(
    dataset: Dataset, broker_env: Callable[..., dict[str, str]]
) -> None:
    env = broker_env(
        dataset.settings.topic_prefix,
        PAYSTREAM_DATA_DIR=dataset.settings.paystream_data_dir,
        PAYSTREAM_METRICS_DATABASE=dataset.database,
        PAYSTREAM_STATUS_INGEST_METRICS_URL="http://127.0.0.1:9/metrics",  # nothing there
    )
    env.pop("CLICKHOUSE_URL", None)
    result = run_status(dataset, env)
    assert result.returncode == 1, result.stdout + result.stderr  # one source unavailable
    screen = result.stdout
    assert "webhooks        unavailable" in screen
    assert re.search(r"sync latency    crm +p50 [0-9.]+ s  p95 [0-9.]+ s  \(7 syncs", screen)
    assert re.search(r"exceptions      \d+ open", screen)
    assert "metrics: " in screen
    assert "Traceback" not in result.stderr


def test_status_without_a_running_sink_says_how_to_fix_it(
    tmp_path: Path, broker_env: Callable[..., dict[str, str]]
) -> None:
    env = broker_env("nothing.", PAYSTREAM_DATA_DIR=str(tmp_path))
    env.pop("CLICKHOUSE_URL", None)
    paystream = Path(sys.executable).with_name("paystream")
    result = subprocess.run(
        [str(paystream), "status"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "start `paystream sinks metrics` or set CLICKHOUSE_URL" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_status_with_unreachable_store_and_broker_names_no_secret(
    tmp_path: Path, broker_env: Callable[..., dict[str, str]]
) -> None:
    from paystream.runtime.broker import free_port

    url = f"http://paystream:s3cret-pw@127.0.0.1:{free_port()}/paystream"
    env = broker_env(
        "nothing.",
        PAYSTREAM_DATA_DIR=str(tmp_path),
        CLICKHOUSE_URL=url,
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",  # no broker there either
    )
    paystream = Path(sys.executable).with_name("paystream")
    result = subprocess.run(
        [str(paystream), "status"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "metrics store: CLICKHOUSE_URL not reachable" in result.stdout
    assert "consumer lag    unavailable (broker not reachable)" in result.stdout
    assert result.stderr == ""  # the clients' own connection noise is kept off the screen
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
