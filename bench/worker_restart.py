"""Worker restart-to-ready with a large dedup table: kept local tables vs full replay.

Usage: flock /tmp/paystream-bench.lock .venv/bin/python bench/worker_restart.py [--entries 1000000]

1. writes ``--entries`` dedup entries (event id → created, as the worker writes them) to the
   dedup table's changelog, and the same entries into the worker's local RocksDB files
   with Faust's own store options, plus the clean-shutdown note — exactly what a worker
   that processed those events leaves behind after SIGTERM (building it by processing
   1,000,000 events or replaying them would take a quarter of an hour here);
2. starts ``paystream worker`` on that data directory: it keeps its files and replays
   nothing (the *restart* figure);
3. stops it (SIGTERM), deletes the note and starts it again: it wipes the files and replays
   every changelog record, which is what every restart did before (the *full replay*
   figure, bounded by ``--replay-timeout`` and reported as "> N s" beyond it).

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
from paystream.vocabulary import APPLIED  # noqa: E402
from processors.dedup import seen_value  # noqa: E402
from processors.localstate import (  # noqa: E402
    MARKER,
    CleanShutdown,
    broker_identity,
    write_marker,
)
from schemas.topics import WORKER_TABLES  # noqa: E402


def preload(settings: CommonSettings, entries: int) -> dict[int, int]:
    """``entries`` dedup changelog records over the partitions; partition → last offset."""
    producer = Producer(settings.producer_config(**{"linger.ms": 50, "batch.size": 1_000_000}))
    topic = settings.topics.changelog("dedup")
    partitions = settings.paystream_topic_partitions
    last: dict[int, int] = {}

    def delivered(err: object, msg: object) -> None:
        if err is None:
            p, o = msg.partition(), msg.offset()  # type: ignore[attr-defined]
            last[p] = max(last.get(p, -1), o)

    for i in range(entries):
        while True:
            try:
                producer.produce(
                    topic,
                    key=entry_key(i),
                    value=CREATED,
                    partition=i % partitions,
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(300)
    if left:
        raise SystemExit(f"pre-load failed: {left} entries not delivered")
    return last


def entry_key(i: int) -> bytes:
    return f"evt_restart{i:09d}".encode()


CREATED = seen_value(int(time.time()), APPLIED)


def write_local_tables(
    settings: CommonSettings, worker_dir: Path, entries: int, last: dict[int, int]
) -> None:
    """The local files and note a clean shutdown leaves after writing those entries."""
    from faust.stores.rocksdb import RocksDBOptions

    tables = worker_dir / "v1" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    partitions = settings.paystream_topic_partitions
    for p in range(partitions):
        db = RocksDBOptions().open(tables / f"dedup-{p}.db")
        for i in range(p, entries, partitions):
            db[entry_key(i)] = CREATED
        db.close()
    changelogs = [settings.topics.changelog(t) for t in WORKER_TABLES]
    identity = broker_identity({"bootstrap.servers": settings.bootstrap_servers}, changelogs)
    if identity is None:
        raise SystemExit("the broker does not report topic ids")
    offsets = {(settings.topics.changelog("dedup"), p): o for p, o in last.items()}
    write_marker(worker_dir, CleanShutdown(identity, offsets))


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
                out.flush()
                if b'"worker ready"' in line:
                    ready.set()

    threading.Thread(target=watch, daemon=True).start()
    while not ready.wait(0.5):
        if worker.poll() is not None:
            raise SystemExit(f"worker exited before ready (see {log})")
        if time.monotonic() - started > timeout:
            return None, worker
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
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for ready")
    parser.add_argument(
        "--replay-timeout", type=float, default=600, help="longest wait for the full replay"
    )
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
        last = preload(settings, args.entries)
        print(f"wrote {args.entries:,} dedup changelog entries in {time.monotonic() - t:.1f} s")
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        port = free_port()
        t = time.monotonic()
        write_local_tables(settings, data / f"worker-{port}", args.entries, last)
        print(f"wrote them to the local RocksDB files in {time.monotonic() - t:.1f} s", flush=True)
        env = dict(
            os.environ,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            PAYSTREAM_BROKER_PROFILE=profile,
            PAYSTREAM_TOPIC_PREFIX=settings.topic_prefix,
            PAYSTREAM_TOPIC_PARTITIONS=str(args.partitions),
            PAYSTREAM_DATA_DIR=str(data),
            PAYSTREAM_WORKER_PORT=str(port),
        )
        log = Path(args.log) if args.log else data / "worker.log"
        warm, worker = start_to_ready(env, log, args.timeout)
        if warm is None:
            raise SystemExit(f"restart not ready within {args.timeout:.0f} s (see {log})")
        with open(log, errors="replace") as out:
            kept = [line for line in out if '"local tables"' in line][-1]
        if '"kept": true' not in kept:
            raise SystemExit(f"the worker did not keep its tables: {kept.strip()}")
        print(f"restart (local tables kept): {warm:.1f} s to ready", flush=True)
        stop(worker)
        (data / f"worker-{port}" / MARKER).unlink()
        cold, worker = start_to_ready(env, log, args.replay_timeout)
        worker.kill()
        worker.wait()
    if cold is None:
        cold_text = f"> {args.replay_timeout:.0f}"
        print(f"full replay (tables wiped, every changelog record replayed): {cold_text} s")
    else:
        cold_text = f"{cold:.1f}"
        print(f"full replay (tables wiped, every changelog record replayed): {cold_text} s")
        print(f"restart / full replay: {warm / cold:.3f}")
    print("target: restart under 30 s with 1,000,000 dedup entries")
    print(f"worker restart: {warm:.1f} s (full replay: {cold_text} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
