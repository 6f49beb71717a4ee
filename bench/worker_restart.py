"""Worker restart-to-ready with a large dedup table: cold (full changelog replay) vs warm.

Usage: flock /tmp/paystream-bench.lock .venv/bin/python bench/worker_restart.py [--entries 1000000]

Writes ``--entries`` dedup entries (event id → created, as the worker writes them) straight
into the dedup table's changelog, then:

1. starts ``paystream worker`` on an empty data directory: it replays every changelog
   record — what every restart did before the local tables were kept (the *cold* figure);
2. stops it with SIGTERM (a clean shutdown notes where its tables end);
3. starts it again on the same data directory: it keeps its RocksDB files and replays
   nothing (the *warm* figure, what a deploy or restart costs now).

Each time is from process start to its ``worker ready`` line (partitions assigned, tables
recovered). Uses KAFKA_BOOTSTRAP_SERVERS when set, else the embedded broker. The last line
is ``worker restart: W s (full replay: C s)``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paystream.runtime.broker import EmbeddedBroker, free_port  # noqa: E402
from paystream.runtime.topics_admin import ensure_topics  # noqa: E402
from paystream.settings import CommonSettings  # noqa: E402
from processors.dedup import seen_value  # noqa: E402


def preload(settings: CommonSettings, entries: int) -> None:
    """``entries`` dedup changelog records, spread over the partitions."""
    producer = Producer(settings.producer_config(**{"linger.ms": 50, "batch.size": 1_000_000}))
    topic = settings.topics.changelog("dedup")
    partitions = settings.paystream_topic_partitions
    created = seen_value(int(time.time()))
    for i in range(entries):
        while True:
            try:
                producer.produce(
                    topic,
                    key=f"evt_restart{i:09d}".encode(),
                    value=created,
                    partition=i % partitions,
                )
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(300)
    if left:
        raise SystemExit(f"pre-load failed: {left} entries not delivered")


def start_to_ready(
    env: dict[str, str], log: Path, timeout: float
) -> tuple[float, subprocess.Popen[bytes]]:
    started = time.monotonic()
    worker = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "paystream"), "worker"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    ready = threading.Event()

    def watch() -> None:
        assert worker.stderr is not None
        with open(log, "ab") as out:
            for line in worker.stderr:
                out.write(line)
                if b'"worker ready"' in line:
                    ready.set()

    threading.Thread(target=watch, daemon=True).start()
    while not ready.wait(0.5):
        if worker.poll() is not None or time.monotonic() - started > timeout:
            worker.kill()
            raise SystemExit(f"worker not ready (see {log})")
    return time.monotonic() - started, worker


def stop(worker: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    code = worker.wait(120)
    if code != 0:
        raise SystemExit(f"worker exited with {code} on SIGTERM")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--log", help="append the worker's stderr to this file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for ready")
    args = parser.parse_args()
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    with contextlib.ExitStack() as stack:
        if external:
            bootstrap, profile = external, "kafka"
        else:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap_servers
            profile = "embedded"
        settings = CommonSettings(
            kafka_bootstrap_servers=bootstrap,
            paystream_broker_profile=profile,  # type: ignore[arg-type]
            paystream_topic_prefix=f"restart{uuid.uuid4().hex[:8]}.",
            paystream_topic_partitions=args.partitions,
        )
        ensure_topics(bootstrap, settings.topics.specs())
        t = time.monotonic()
        preload(settings, args.entries)
        print(f"wrote {args.entries:,} dedup entries in {time.monotonic() - t:.1f} s", flush=True)
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = dict(
            os.environ,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            PAYSTREAM_BROKER_PROFILE=profile,
            PAYSTREAM_TOPIC_PREFIX=settings.topic_prefix,
            PAYSTREAM_TOPIC_PARTITIONS=str(args.partitions),
            PAYSTREAM_DATA_DIR=str(data),
            PAYSTREAM_WORKER_PORT=str(free_port()),
        )
        log = Path(args.log) if args.log else data / "worker.log"
        cold, worker = start_to_ready(env, log, args.timeout)
        print(f"cold start (empty data directory, full replay): {cold:.1f} s to ready", flush=True)
        took = stop(worker)
        print(f"SIGTERM → exit: {took:.1f} s", flush=True)
        warm, worker = start_to_ready(env, log, args.timeout)
        print(f"restart (local tables kept): {warm:.1f} s to ready", flush=True)
        stop(worker)
    print(f"restart / full replay: {warm / cold:.2f} (target: restart under 30 s)")
    print(f"worker restart: {warm:.1f} s (full replay: {cold:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
