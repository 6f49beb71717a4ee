"""Worker throughput: pre-load N realistic Stripe events, run one `paystream worker`, count.

Usage: flock /tmp/paystream-bench.lock .venv/bin/python bench/worker.py \
           [--events 50000] [--customers 5000] [--partitions 4]

Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the embedded broker. Every event is a
real Stripe body (cloned from the shared fixtures) alternating ``invoice.paid`` and
``invoice.payment_failed`` per customer in ``created`` order, so each one changes the
customer's state and yields exactly one command on ``sink.crm``; the clock runs from the
worker's ``worker ready`` line to the N-th CRM command read back. The last line is
``worker throughput: N events/s (target 5000, plain Faust baseline B events/s in this run)``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Producer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.envelope import parse_stripe_event  # noqa: E402
from paystream.runtime.broker import EmbeddedBroker, free_port  # noqa: E402
from paystream.runtime.topics_admin import ensure_topics  # noqa: E402
from paystream.settings import CommonSettings  # noqa: E402
from schemas.codec import default_codec  # noqa: E402
from schemas.topics import TopicSpec  # noqa: E402

#: the shared fixtures beside the clone, else the copy the product ships (a clone elsewhere)
INVOICES = (
    ROOT.parent / "shared" / "stripe-fixtures" / "invoice_paid.json",
    ROOT / "paystream" / "stripe_templates" / "invoice_paid.json",
)


def invoice_template() -> dict[str, object]:
    for invoice in INVOICES:
        if invoice.is_file():
            body: dict[str, object] = json.loads(invoice.read_text())
            return body
    raise SystemExit("no Stripe invoice.paid fixture found")


def encoded_stripe(
    template: dict[str, object], kind: str, event_id: str, created: int, customer: str
) -> tuple[str, bytes]:
    """``(key, value)`` exactly as ingest publishes a real invoice event of this customer."""
    body = copy.deepcopy(template)
    body.update(id=event_id, type=kind, created=created, livemode=False)
    body["data"]["object"]["customer"] = customer  # type: ignore[index]
    out = parse_stripe_event(
        json.dumps(body), live=False, received_at_ms=created * 1000, correlation_id=event_id
    )
    return out.key, default_codec().encode(out.schema, out.record)


def preload(settings: CommonSettings, events: int, customers: int) -> None:
    producer = Producer(settings.producer_config(**{"linger.ms": 20}))
    topic = settings.topics.stripe_events
    base = 1_700_000_000
    template = invoice_template()
    for i in range(events):
        customer, step = f"cus_bench{i % customers:06d}", i // customers
        kind = "invoice.paid" if step % 2 == 0 else "invoice.payment_failed"
        key, value = encoded_stripe(template, kind, f"evt_bench{i:08d}", base + step * 60, customer)
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(120)
    if left:
        raise SystemExit(f"pre-load failed: {left} events not delivered")


def count_crm(
    settings: CommonSettings, want: int, timeout: float, alive: Callable[[], bool]
) -> float:
    """Read sink.crm until ``want`` commands arrived; return the monotonic time then."""
    consumer = Consumer(settings.consumer_config(f"bench-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([settings.topics.sink_crm])
    seen, deadline = 0, time.monotonic() + timeout
    report = time.monotonic() + 10
    try:
        while seen < want:
            if time.monotonic() > deadline or not alive():
                raise SystemExit(f"stopped at {seen}/{want} CRM commands (worker alive: {alive()})")
            seen += sum(1 for m in consumer.consume(1000, 0.2) if m.error() is None)
            if time.monotonic() > report:
                print(f"  ... {seen}/{want} CRM commands", file=sys.stderr, flush=True)
                report = time.monotonic() + 10
        return time.monotonic()
    finally:
        consumer.close()


def run(bootstrap: str, profile: str, args: argparse.Namespace, plain: bool = False) -> float:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = CommonSettings(
        kafka_bootstrap_servers=bootstrap,
        paystream_broker_profile=profile,  # type: ignore[arg-type]
        paystream_topic_prefix=prefix,
        paystream_topic_partitions=args.partitions,
    )
    specs = settings.topics.specs()
    if plain:
        specs.append(TopicSpec(f"{prefix}plain-customers-changelog", args.partitions))
    ensure_topics(bootstrap, specs)
    started = time.monotonic()
    preload(settings, args.events, args.customers)
    print(f"pre-loaded {args.events} events in {time.monotonic() - started:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as data:
        env = dict(
            os.environ,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            PAYSTREAM_BROKER_PROFILE=profile,
            PAYSTREAM_TOPIC_PREFIX=prefix,
            PAYSTREAM_TOPIC_PARTITIONS=str(args.partitions),
            PAYSTREAM_DATA_DIR=data,
            PAYSTREAM_WORKER_PORT=str(free_port()),
        )
        command = [str(ROOT / ".venv" / "bin" / "paystream"), "worker"]
        if plain:
            command = [sys.executable, str(ROOT / "bench" / "_plain_faust.py")]
        if args.profile:
            command = [
                str(ROOT / ".venv" / "bin" / "py-spy"),
                "record",
                "--format",
                "raw",
                "--rate",
                "200",
                "-o",
                args.profile,
                "--",
                *command,
            ]
        worker = subprocess.Popen(
            command,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        ready = threading.Event()
        log = open(args.log, "ab") if args.log else None  # noqa: SIM115

        def watch() -> None:
            assert worker.stderr is not None
            for line in worker.stderr:
                if log is not None:
                    log.write(line)
                if b'"worker ready"' in line:
                    ready.set()

        threading.Thread(target=watch, daemon=True).start()
        try:
            if not ready.wait(120):
                if args.profile is None:  # say where it is stuck
                    subprocess.run(
                        [str(ROOT / ".venv" / "bin" / "py-spy"), "dump", "--pid", str(worker.pid)],
                        check=False,
                    )
                raise SystemExit("worker did not become ready")
            t0 = time.monotonic()
            t1 = count_crm(settings, args.events, 600, lambda: worker.poll() is None)
        finally:
            worker.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
            worker.wait(60)
    return args.events / (t1 - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain Faust run")
    parser.add_argument("--log", help="append the worker's stderr to this file")
    parser.add_argument("--profile", help="record a py-spy profile (raw folded stacks) here")
    args = parser.parse_args()
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    with contextlib.ExitStack() as stack:
        if external:
            bootstrap, profile = external, "kafka"
        else:
            bootstrap, profile = stack.enter_context(EmbeddedBroker()).bootstrap_servers, "embedded"
        baseline = None
        if not args.no_baseline:
            baseline = run(bootstrap, profile, args, plain=True)
            print(f"baseline (plain Faust agent, one event at a time): {baseline:.0f} events/s")
        rate = run(bootstrap, profile, args)
    if baseline:
        print(f"paystream worker / plain Faust agent: {rate / baseline:.2f}x")
    print(f"target: 5000 events/s per worker process ({rate / 5000:.2f}x)")
    same_run = f", plain Faust baseline {baseline:.0f} events/s in this run" if baseline else ""
    print(f"worker throughput: {rate:.0f} events/s (target 5000{same_run})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
