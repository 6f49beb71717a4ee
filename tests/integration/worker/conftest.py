"""Fixtures for the worker's integration tests: real broker, real ``paystream worker``."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from paystream.runtime.broker import free_port
from paystream.settings import CommonSettings
from processors.lifecycle import CustomerRecord

PAYSTREAM = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "paystream"
READY_TIMEOUT = 90.0


class WorkerProcess:
    """One ``paystream worker`` subprocess; its stderr is collected on a thread."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(PAYSTREAM), "worker"], env=env, stdout=self._log, stderr=subprocess.PIPE
        )
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._log.write(line)
            self._log.flush()
            if b'"worker ready"' in line:
                self.ready.set()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.wait(0.5):
                return
            if self.process.poll() is not None:
                break
        raise AssertionError(f"worker not ready; log:\n{self.log_path.read_text()[-4000:]}")

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"{}")
            except ValueError:
                return exc.code, {"raw": body.decode(errors="replace")}

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/metrics", timeout=10
        ) as response:
            text: str = response.read().decode()
            return text

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(5)
        self._log.close()


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(
    pipeline_settings: CommonSettings,
    broker_env: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> Iterator[StartWorker]:
    """Start ``paystream worker`` processes on the test's topics; all stopped at the end."""
    started: list[WorkerProcess] = []

    def start(name: str = "w1", port: int | None = None, **extra: str) -> WorkerProcess:
        port = port or free_port()
        env = broker_env(
            pipeline_settings.topic_prefix,
            PAYSTREAM_TOPIC_PARTITIONS=str(pipeline_settings.paystream_topic_partitions),
            PAYSTREAM_DATA_DIR=str(tmp_path / name),
            PAYSTREAM_WORKER_PORT=str(port),
            PAYSTREAM_WORKER_BATCH_WITHIN="0.05",
            # The references have no timer, and the storylines' onboarding is years
            # overdue: a scan (every 60 s by default) in a slow run opens onboarding-stuck
            # tickets they lack. The timer's own test sets its interval.
            # PAYSTREAM_LOG_LEVEL=debug in the test's environment reaches the worker (its
            # per-partition offset commits are logged at debug).
            **{
                "PAYSTREAM_ONBOARDING_SCAN_INTERVAL": "24h",
                "PAYSTREAM_LOG_LEVEL": os.environ.get("PAYSTREAM_LOG_LEVEL", "info"),
                **extra,
            },
        )
        worker = WorkerProcess(env, port, tmp_path / f"{name}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


# -- storylines and the reference (an uninterrupted, in-process run of the same code) ----

Pair = tuple[str, bytes]


def storyline(
    customers: int, seed: int = 7, duplicates: bool = True, app: bool = True
) -> list[tuple[str, Pair]]:
    """``(topic kind, (key, value))`` for ``customers`` customers, shuffled, with repeats."""
    from tests.unit.processors.stripe_events import encoded_app, encoded_stripe

    rng = random.Random(seed)
    out: list[tuple[str, Pair]] = []
    for c in range(customers):
        cus, t = f"cus_s{seed}x{c:05d}", 1_700_000_000 + c
        events: list[tuple[str, Pair]] = [
            ("stripe", encoded_stripe("checkout.session.completed", f"evt_{cus}_1", t, cus)),
            ("stripe", encoded_stripe("invoice.paid", f"evt_{cus}_2", t + 10, cus)),
            ("app", encoded_app("customer.linked", f"app_{cus}_1", t + 20, cus, f"user_{c}")),
            (
                "stripe",
                encoded_stripe(
                    "invoice.payment_failed",
                    f"evt_{cus}_3",
                    t + 100,
                    cus,
                    billing_reason="subscription_cycle",
                    attempt_count=2,
                    id=f"in_{cus}",
                ),
            ),
            ("stripe", encoded_stripe("product.created", f"evt_{cus}_4", t + 110, None)),
        ]
        if c % 2 == 0:
            events.append(
                ("app", encoded_app("onboarding.completed", f"app_{cus}_2", t + 150, cus))
            )
            events.append(("stripe", encoded_stripe("invoice.paid", f"evt_{cus}_5", t + 200, cus)))
        if c % 3 == 0:
            events.append(
                (
                    "stripe",
                    encoded_stripe(
                        "charge.dispute.created", f"evt_{cus}_6", t + 300, None, id=f"dp_{cus}"
                    ),
                )
            )
        if c % 5 == 0:
            events.append(
                (
                    "stripe",
                    encoded_stripe(
                        "charge.refunded",
                        f"evt_{cus}_7",
                        t + 400,
                        cus,
                        amount=900,
                        amount_refunded=900,
                    ),
                )
            )
        if not app:
            events = [e for e in events if e[0] == "stripe"]
        if duplicates:
            events += rng.sample(events, k=len(events) // 2)
        rng.shuffle(events)
        out += events
    return out


def publish(settings: CommonSettings, items: list[tuple[str, Pair]]) -> None:
    from tests.kafka_helpers import produce

    topics = settings.topics
    produce(settings, topics.stripe_events, [p for kind, p in items if kind == "stripe"])
    produce(settings, topics.app_events, [p for kind, p in items if kind == "app"])


@dataclass
class Reference:
    records: dict[str, CustomerRecord]
    commands: dict[str, set[str]]  # topic → idempotency keys


def reference(settings: CommonSettings, items: list[tuple[str, Pair]]) -> Reference:
    """What an uninterrupted worker must produce: the same pure code, per key, in order."""
    from processors.pipeline import BatchProcessor, InMessage
    from schemas.codec import default_codec

    topics = settings.topics
    processor = BatchProcessor(topics, default_codec(), 24 * 3600 * 1000)
    records: dict[str, CustomerRecord] = {}
    seen: set[str] = set()
    keys: dict[str, set[str]] = {topics.sink_crm: set(), topics.sink_helpdesk: set()}
    # per key, stripe.events and app.events are two partitions' streams; the worker may
    # interleave them either way, and the state does not depend on it (property-tested)
    for kind in ("stripe", "app"):
        topic = topics.stripe_events if kind == "stripe" else topics.app_events
        for key, value in [p for k, p in items if k == kind]:
            result = processor.process(
                [InMessage(topic, 0, key.encode(), value)],
                lambda c, _p: records.get(c),
                lambda e, _p: b"1" if e in seen else None,
                0,
            )
            seen.update(result.seen)
            records.update({c: r for c, (_p, r) in result.records.items()})
            for out in result.outputs:
                if out.topic in keys:
                    keys[out.topic].add(default_codec().decode(out.value)[1]["idempotency_key"])
    return Reference(records, keys)


def command_keys(
    settings: CommonSettings, topic: str, want: set[str], timeout: float = 120
) -> list[str]:
    """Idempotency keys on ``topic``, read until every key of ``want`` arrived (or timeout)."""
    from tests.kafka_helpers import consume, decode_all

    messages = consume(
        settings,
        topic,
        until=lambda ms: want <= {r["idempotency_key"] for r in decode_all(ms)},
        timeout=timeout,
    )
    return [r["idempotency_key"] for r in decode_all(messages)]
