"""Ingest throughput and latency against a bare aiohttp handler, measured in one run.

Starts its own embedded broker, then ``paystream ingest`` (real producer: acks=all,
idempotent) and a bare aiohttp app whose handler returns 200 without work, both as
separate processes on free ports. One in-process aiohttp client fires signed, realistic
Stripe events (cloned from the fixtures) at a fixed concurrency against each in turn.
Prints requests/s and p50/p95/p99 for both; the last line is
``ingest/bare throughput ratio: R, ingest p99: P ms``.

    .venv/bin/python bench/ingest.py [--concurrency 32] [--duration 8] [--warmup 2]
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


async def load(
    url: str, bodies: list[bytes], concurrency: int, warmup: float, duration: float
) -> dict[str, Any]:
    signed = [
        (b, {"Stripe-Signature": sign_header(b, SECRET), "Content-Type": "application/json"})
        for b in bodies
    ]
    latencies: list[float] = []
    errors = 0
    counter = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors, counter
            while True:
                body, headers = signed[counter % len(signed)]
                counter += 1
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
                t1 = time.perf_counter()
                if t0 >= measure_from:
                    latencies.append(t1 - t0)
                    if not ok:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p * n))] * 1000 if n else float("nan")

    return {
        "requests": n,
        "rps": n / duration,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": errors,
    }


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

        results = {}
        for name, port in (("bare", bare_port), ("ingest", ingest_port)):
            url = f"http://127.0.0.1:{port}/webhooks/stripe"
            results[name] = await load(url, bodies, args.concurrency, args.warmup, args.duration)

        size = sum(len(b) for b in bodies) // len(bodies)
        print(
            f"concurrency {args.concurrency}, {args.duration:g} s measured after {args.warmup:g} s "
            f"warm-up, mean body {size} bytes, embedded broker, acks=all + idempotence"
        )
        header = ("target", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "non-200")
        print("{:<8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}".format(*header))
        for name, r in results.items():
            print(
                f"{name:<8} {r['requests']:>9} {r['rps']:>9.0f} {r['p50']:>8.2f} "
                f"{r['p95']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8}"
            )
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
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--profile", metavar="SVG", help="record the ingest process with py-spy")
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        run_bare(args.bare)
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
