"""Ingest throughput and latency against a bare aiohttp handler, measured in one run.

Starts its own embedded broker, then ``paystream ingest`` (real producer: acks=all,
idempotent) and a bare aiohttp app whose handler returns 200 without work, both as
separate processes on free ports. One in-process aiohttp client fires signed, realistic
Stripe events (cloned from the fixtures) at a fixed concurrency against each,
in alternating windows so that both see the same machine.
Prints requests/s and p50/p95/p99 for both; the last line is
``ingest/bare throughput ratio: R, ingest p99: P ms``.

    .venv/bin/python bench/ingest.py [--concurrency 128] [--duration 12] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paystream.runtime.broker import EmbeddedBroker, free_port  # noqa: E402
from paystream.runtime.topics_admin import ensure_topics  # noqa: E402
from paystream.settings import CommonSettings  # noqa: E402
from paystream.signing import sign_header  # noqa: E402

SECRET = "whsec_bench_0123456789abcdef"
FIXTURE_NAMES = (
    "invoice_paid",
    "charge_succeeded",
    "subscription_updated",
    "checkout_session_completed",
    "customer_updated",
    "charge_refunded",
)


def fixtures_dir() -> Path:
    for candidate in (
        ROOT.parent / "shared" / "stripe-fixtures",
        ROOT / "paystream" / "stripe_templates",
    ):
        if candidate.is_dir():
            return candidate
    raise SystemExit("no Stripe fixtures found")


def make_bodies(count: int) -> list[bytes]:
    folder = fixtures_dir()
    templates = [json.loads((folder / f"{n}.json").read_text()) for n in FIXTURE_NAMES]
    bodies = []
    now = int(time.time())
    for i in range(count):
        event = copy.deepcopy(templates[i % len(templates)])
        event["id"] = f"evt_bench{uuid.uuid4().hex[:20]}"
        event["created"] = now
        event["livemode"] = False
        obj = event["data"]["object"]
        if "customer" in obj:
            obj["customer"] = f"cus_bench{i % 500:05d}"
        bodies.append(json.dumps(event).encode())
    return bodies


# -- the bare handler (run as its own process: ``bench/ingest.py --bare PORT``) ---------------


def run_bare(port: int) -> None:
    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=b'{"received": true}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/webhooks/stripe", handle)
    app.router.add_get("/healthz", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- load -------------------------------------------------------------------------------------


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} never became healthy")


def cpu_seconds(pid: int | None) -> dict[str, float]:
    """CPU seconds (user + system) a process used so far, by kind of thread (Linux /proc):
    ``main`` (the event loop), ``librdkafka`` (rdk:* threads), ``threads`` (other)."""
    found = {"main": 0.0, "librdkafka": 0.0, "threads": 0.0}
    if pid is None:
        return found
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        kind = (
            "main"
            if task.name == str(pid)
            else "librdkafka"
            if comm.startswith("rdk:")
            else "threads"
        )
        found[kind] += (int(fields[11]) + int(fields[12])) / tick
    return found


class Target:
    """One server under load: its URL and what the measured windows saw."""

    def __init__(self, name: str, port: int, pids: dict[str, int | None]) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}/webhooks/stripe"
        self.pids = pids
        self.cpu: dict[str, float] = {}
        self.latencies: list[float] = []
        self.errors = 0
        self.seconds = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        n = len(lat)

        def pct(p: float) -> float:
            return lat[min(n - 1, int(p * n))] * 1000 if n else float("nan")

        return {
            "requests": n,
            "rps": n / self.seconds if self.seconds else 0.0,
            "p50": pct(0.50),
            "p95": pct(0.95),
            "p99": pct(0.99),
            "errors": self.errors,
            "cpu_us": {k: v / n * 1e6 if n else 0.0 for k, v in self.cpu.items()},
        }


Signed = list[tuple[bytes, dict[str, str]]]


async def load(
    target: Target, signed: Signed, concurrency: int, warmup: float, window: float
) -> None:
    """Keep ``concurrency`` requests in flight; record those started inside the window."""
    counter = 0
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + window
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal counter
            while True:
                body, headers = signed[counter % len(signed)]
                counter += 1
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                async with session.post(target.url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    target.latencies.append(t1 - t0)
                    target.errors += not ok

        async def window_cpu() -> None:
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            before = {k: cpu_seconds(pid) for k, pid in target.pids.items()}
            client_before = time.process_time()
            await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
            for k, pid in target.pids.items():
                after = cpu_seconds(pid)
                for kind, seconds in after.items():
                    used = seconds - before[k][kind]
                    if used > 0 or kind == "main":
                        name = k if kind == "main" else f"{k} {kind}"
                        target.cpu[name] = target.cpu.get(name, 0.0) + used
            target.cpu["client"] = target.cpu.get("client", 0.0) + (
                time.process_time() - client_before
            )

        await asyncio.gather(window_cpu(), *(worker() for _ in range(concurrency)))
    target.seconds += window


def start(
    command: list[str], env: dict[str, str] | None, log: Path | None
) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log else None
    try:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    finally:
        if out:
            out.close()


async def bench(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="paystream-bench-"))
    bodies = make_bodies(4000)
    broker = EmbeddedBroker(log_path=tmp / "tansu.log")
    bootstrap = broker.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        prefix = f"bench{uuid.uuid4().hex[:8]}."
        common = CommonSettings(
            kafka_bootstrap_servers=bootstrap,
            paystream_broker_profile="embedded",
            paystream_topic_prefix=prefix,
        )
        ensure_topics(bootstrap, common.topics.specs())
        ingest_port, bare_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            PAYSTREAM_BROKER_PROFILE="embedded",
            PAYSTREAM_TOPIC_PREFIX=prefix,
            STRIPE_WEBHOOK_SECRETS=SECRET,
            PAYSTREAM_INGEST_HOST="127.0.0.1",
            PAYSTREAM_INGEST_PORT=str(ingest_port),
        )
        env.update(item.split("=", 1) for item in args.ingest_env)
        command = [sys.executable, "-m", "ingest"]
        if args.profile:  # where the time goes: py-spy's flame graph of the ingest process
            spy = Path(sys.executable).parent / "py-spy"
            fmt = "raw" if args.profile.endswith(".txt") else "flamegraph"
            command = [
                str(spy),
                "record",
                "-o",
                args.profile,
                "-f",
                fmt,
                "-r",
                "200",
                "--",
                *command,
            ]
        procs.append(start(command, env, tmp / "ingest.log"))
        procs.append(start([sys.executable, __file__, "--bare", str(bare_port)], None, None))
        await wait_healthy(f"http://127.0.0.1:{ingest_port}/healthz", procs[0])
        await wait_healthy(f"http://127.0.0.1:{bare_port}/healthz", procs[1])

        signed = [
            (b, {"Stripe-Signature": sign_header(b, SECRET), "Content-Type": "application/json"})
            for b in bodies
        ]
        targets = [
            Target("bare", bare_port, {"server": procs[1].pid, "broker": broker.pid}),
            Target("ingest", ingest_port, {"server": procs[0].pid, "broker": broker.pid}),
        ]
        # Alternate short windows so both see the same machine (other load comes and goes).
        window = args.duration / args.rounds
        for _ in range(args.rounds):
            for target in targets:
                await load(target, signed, args.concurrency, args.warmup, window)
        results = {t.name: t.summary() for t in targets}

        size = sum(len(b) for b in bodies) // len(bodies)
        print(
            f"concurrency {args.concurrency}, {args.duration:g} s measured per target in "
            f"{args.rounds} alternating windows (each after {args.warmup:g} s warm-up), "
            f"mean body {size} bytes, embedded broker, acks=all + idempotence"
        )
        header = ("target", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "non-200")
        print("{:<8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}".format(*header))
        for name, r in results.items():
            print(
                f"{name:<8} {r['requests']:>9} {r['rps']:>9.0f} {r['p50']:>8.2f} "
                f"{r['p95']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8}"
            )
        print("CPU per request (µs):")
        for name, r in results.items():
            print(f"  {name:<7}" + ", ".join(f"{k} {v:.0f}" for k, v in r["cpu_us"].items()))
        ratio = results["ingest"]["rps"] / results["bare"]["rps"]
        p99 = results["ingest"]["p99"]
        print(f"ingest/bare throughput ratio: {ratio:.2f}, ingest p99: {p99:.1f} ms")
    finally:
        for proc in procs:  # py-spy writes its profile on SIGINT
            proc.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per target")
    parser.add_argument("--rounds", type=int, default=4, help="alternating windows")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window")
    parser.add_argument(
        "--ingest-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the ingest process (to compare configurations)",
    )
    parser.add_argument("--profile", metavar="SVG", help="record the ingest process with py-spy")
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        run_bare(args.bare)
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
