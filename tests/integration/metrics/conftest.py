"""Fixtures of the metrics tests: realistic messages, a running metrics sink, the store.

chdb allows one store directory per process at a time, so the module shares one
directory and every test gets its own database (and its own topic prefix): sinks run one
after another in that directory, each closing the store when it stops.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from paystream.metrics import PaystreamMetrics
from paystream.runtime.store import MetricsStore, QueryResult, open_store
from paystream.settings import CommonSettings
from schemas.codec import LIFECYCLE_CHANGE, SINK_RESULT, STRIPE_EVENT, default_codec
from sinks.metrics_sink import MetricsSink, StoreFactory
from sinks.settings import SinkSettings
from tests.kafka_helpers import produce


def stripe_envelope(
    fixtures: Path,
    fixture: str,
    *,
    event_id: str,
    customer: str,
    created: int,
    received_at_ms: int,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """A stripe.events envelope cloned from a real Stripe event body."""
    body = json.loads((fixtures / f"{fixture}.json").read_text())
    body["id"] = event_id
    body["created"] = created
    body["data"]["object"]["customer"] = customer
    return {
        "event_id": event_id,
        "type": body["type"],
        "created": created,
        "livemode": bool(body["livemode"]),
        "api_version": body.get("api_version"),
        "customer_id": customer,
        "received_at_ms": received_at_ms,
        "correlation_id": correlation_id or uuid.uuid4().hex,
        "source": "webhook",
        "raw": json.dumps(body),
    }


def lifecycle_change(
    *, customer: str, event_id: str, event_type: str, new_state: str, created: int, at_ms: int
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "user_id": None,
        "email": None,
        "previous_state": "onboarding_pending",
        "new_state": new_state,
        "cause_event_id": event_id,
        "cause_event_type": event_type,
        "event_created": created,
        "changed_at_ms": at_ms,
        "received_at_ms": at_ms - 40,
        "processed_at_ms": at_ms,
        "livemode": False,
        "correlation_id": uuid.uuid4().hex,
    }


def sink_result(
    *,
    sink: str,
    key: str,
    outcome: str,
    attempts: int,
    event_type: str,
    created: int,
    acked_at_ms: int,
    customer: str = "cus_Metrics0001",
    reason_code: str | None = None,
    delivery: str = "first",
) -> dict[str, Any]:
    return {
        "sink": sink,
        "idempotency_key": key,
        "outcome": outcome,
        "attempts": attempts,
        "reason_code": reason_code,
        "latency_ms": 120.5,
        "customer_id": customer,
        "cause_event_id": "evt_" + key.rsplit(":", 1)[-1],
        "cause_event_type": event_type,
        "event_created": created,
        "received_at_ms": created * 1000 + 150,
        "processed_at_ms": created * 1000 + 300,
        "acked_at_ms": acked_at_ms,
        "correlation_id": uuid.uuid4().hex,
        "delivery": delivery,
    }


@dataclass
class Pipeline:
    """Topics of one test plus the helpers to publish onto them like the real services."""

    settings: CommonSettings
    sent: int = 0

    def publish_events(self, envelopes: list[dict[str, Any]]) -> None:
        codec = default_codec()
        topic = self.settings.topics.stripe_events
        items = [
            (e["customer_id"] or e["event_id"], codec.encode(STRIPE_EVENT, e)) for e in envelopes
        ]
        produce(self.settings, topic, items)
        self.sent += len(items)

    def publish_lifecycle(self, changes: list[dict[str, Any]]) -> None:
        codec = default_codec()
        topic = self.settings.topics.customer_lifecycle
        items = [(c["customer_id"], codec.encode(LIFECYCLE_CHANGE, c)) for c in changes]
        produce(self.settings, topic, items)
        self.sent += len(items)

    def publish_results(self, results: list[dict[str, Any]]) -> None:
        codec = default_codec()
        topic = self.settings.topics.sink_results
        items = [(r["idempotency_key"], codec.encode(SINK_RESULT, r)) for r in results]
        produce(self.settings, topic, items)
        self.sent += len(items)


@dataclass
class RunningSink:
    sink: MetricsSink
    stop: threading.Event
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)

    def query(self, sql: str) -> QueryResult:
        assert self.sink.store is not None
        return self.sink.store.query(sql)

    def wait_for(
        self, sql: str, done: Callable[[QueryResult], bool], timeout: float = 60.0
    ) -> QueryResult:
        deadline = time.monotonic() + timeout
        while True:
            assert not self.errors, self.errors
            result = self.query(sql)
            if done(result):
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"condition not met in {timeout}s: {sql} -> {result.rows[:5]}")
            time.sleep(0.3)

    def wait_until(self, done: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert not self.errors, self.errors
            if time.monotonic() > deadline:
                pytest.fail(f"condition not met in {timeout}s")
            time.sleep(0.1)

    def shutdown(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "metrics sink did not stop"
        assert not self.errors, self.errors


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("metrics-data")


@pytest.fixture
def pipeline(pipeline_settings: CommonSettings) -> Pipeline:
    return Pipeline(pipeline_settings)


@pytest.fixture
def metrics_settings(pipeline_settings: CommonSettings, store_dir: Path) -> SinkSettings:
    values: dict[str, Any] = pipeline_settings.model_dump()
    values.update(
        paystream_data_dir=str(store_dir),
        paystream_metrics_database="m" + uuid.uuid4().hex[:10],
        paystream_metrics_batch_size=50,
        paystream_metrics_batch_interval_s=0.5,
        paystream_metrics_retry_base_s=0.2,
        paystream_metrics_retry_max_s=0.5,
        clickhouse_url=None,
    )
    return SinkSettings(**values)


def launch_sink(
    settings: SinkSettings, store_factory: StoreFactory = open_store, name: str = "metrics-sink"
) -> RunningSink:
    """Run a metrics sink in a thread until it is ready (it owns its store)."""
    sink = MetricsSink(settings, PaystreamMetrics(), store_factory)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            sink.run(stop)
        except BaseException as exc:
            errors.append(exc)
            sink.ready.set()

    thread = threading.Thread(target=target, name=name, daemon=True)
    handle = RunningSink(sink, stop, thread, errors)
    thread.start()
    assert sink.ready.wait(60), "metrics sink did not become ready"
    assert not errors, errors
    return handle


@pytest.fixture
def start_sink() -> Iterator[Callable[..., RunningSink]]:
    """Start a metrics sink in a thread; every sink still running is stopped at the end."""
    running: list[RunningSink] = []

    def start(settings: SinkSettings, store_factory: StoreFactory = open_store) -> RunningSink:
        handle = launch_sink(settings, store_factory)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if handle.thread.is_alive():
            handle.stop.set()
            handle.thread.join(timeout=60)


class FlakyStore(MetricsStore):
    """The real store, with inserts made to fail on demand (the store 'briefly unavailable').

    ``fail_before``: inserts refused before reaching the store; ``fail_after``: inserts
    that reach the store and are stored, but whose acknowledgement is lost.
    """

    def __init__(self, inner: MetricsStore, fail_before: int = 0, fail_after: int = 0) -> None:
        super().__init__(inner._client, inner.database)
        self.fail_before = fail_before
        self.fail_after = fail_after
        self.refused = 0
        self.acks_lost = 0

    def insert(self, table: str, rows: Any, token: str | None = None) -> None:
        from paystream.runtime.store import MetricsStoreUnavailable

        if self.fail_before > 0:
            self.fail_before -= 1
            self.refused += 1
            raise MetricsStoreUnavailable("store unavailable (injected)")
        super().insert(table, rows, token)
        if self.fail_after > 0:
            self.fail_after -= 1
            self.acks_lost += 1
            raise MetricsStoreUnavailable("acknowledgement lost (injected)")
