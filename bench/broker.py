"""The embedded broker alone: produce→consume latency as its in-memory log grows.

Usage (serialise benchmarks on a shared machine and say the load):

    flock /tmp/paystream-bench.lock .venv/bin/python bench/broker.py --rate 500 --duration 120

One producer (the pipeline's producer settings, 2 ms linger) sends ``--size``-byte records at
a fixed rate into ``stripe.events``; one consumer group (the pipeline's consumer settings)
reads them and commits as the sinks do. Per 10 s of the schedule it prints the p50/p95 of
send→receive latency; the first window is the baseline the last is compared with, so the
ratio says how much slower the broker got as its log grew. Also the broker's CPU (cores).
This is the floor under every hop of ``bench/e2e.py`` on the embedded broker (docs/e2e.md).
The last line is ``broker rate: R/s, p95 first 10 s: A ms, last 10 s: B ms (xN), cpu: C``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, Producer  # noqa: E402

from bench._measure import cpu_seconds, percentile  # noqa: E402
from paystream.runtime.broker import EmbeddedBroker  # noqa: E402
from paystream.runtime.topics_admin import ensure_topics  # noqa: E402
from paystream.settings import CommonSettings  # noqa: E402

WINDOW_S = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500, help="records per second")
    parser.add_argument("--duration", type=int, default=120, help="seconds of traffic")
    parser.add_argument("--size", type=int, default=6000, help="record size in bytes")
    parser.add_argument(
        "--linger-ms",
        type=float,
        default=2,
        help="the producer's linger: more records per batch, fewer objects in the broker's log",
    )
    args = parser.parse_args()
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")

    broker = EmbeddedBroker()
    bootstrap = broker.start()
    try:
        settings = CommonSettings(
            paystream_env="development",
            kafka_bootstrap_servers=bootstrap,
            paystream_broker_profile="embedded",  # type: ignore[arg-type]
            paystream_topic_prefix="bench.",
        )
        ensure_topics(bootstrap, settings.topics.specs())
        topic = settings.topics.stripe_events
        sent_at: list[float] = []
        latencies: list[tuple[int, float]] = []  # (record index, seconds)
        stop = threading.Event()

        def consume() -> None:
            consumer = Consumer(settings.consumer_config("bench-broker"))
            consumer.subscribe([topic])
            try:
                while not stop.is_set():
                    # wait for the first record only, then take what is there (as the sinks'
                    # batches open at their first command): consume(n, t) would wait for n
                    first = consumer.poll(0.1)
                    batch = [first, *consumer.consume(499, 0)] if first is not None else []
                    now = time.monotonic()
                    for m in batch:
                        if m.error() is None:
                            i = int(m.key())
                            latencies.append((i, now - sent_at[i]))
                    if batch:
                        consumer.commit(asynchronous=True)
            finally:
                consumer.close()

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        time.sleep(3)  # the group join
        producer = Producer(settings.producer_config(**{"linger.ms": args.linger_ms}))
        body = b"x" * args.size
        total = int(args.rate * args.duration)
        cpu0, t0 = cpu_seconds(broker.pid or 0), time.monotonic()
        for i in range(total):
            delay = t0 + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent_at.append(time.monotonic())
            producer.produce(topic, key=str(i).encode(), value=body)
            producer.poll(0)
        producer.flush(30)
        cpu = (cpu_seconds(broker.pid or 0) - cpu0) / (time.monotonic() - t0)
        deadline = time.monotonic() + 30
        while len(latencies) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        reader.join(10)
    finally:
        broker.stop()

    per_window = int(args.rate * WINDOW_S)
    p95s = []
    for start in range(0, total, per_window):
        window = [s for i, s in latencies if start <= i < start + per_window]
        if not window:
            continue
        p50, p95 = percentile(window, 50), percentile(window, 95)
        p95s.append(p95)
        first = start // per_window * WINDOW_S
        print(f"{first:>4}-{first + WINDOW_S:<4} s: p50 {p50 * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms")
    print(
        f"received {len(latencies)} of {total}; broker CPU while sending: {cpu:.2f} cores; "
        f"producer linger {args.linger_ms:g} ms"
    )
    print(
        f"broker rate: {args.rate:g}/s, p95 first {WINDOW_S} s: {p95s[0] * 1000:.0f} ms, "
        f"last {WINDOW_S} s: {p95s[-1] * 1000:.0f} ms (x{p95s[-1] / p95s[0]:.1f}), cpu: {cpu:.2f}"
    )
    return 0 if len(latencies) == total else 1


if __name__ == "__main__":
    sys.exit(main())
