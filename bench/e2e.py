"""End-to-end latency: signed Stripe webhooks at a fixed rate → ingest → worker → CRM sink →
HubSpot stand-in; webhook-to-CRM latency measured at the stand-in.

Usage (on a shared machine, serialise benchmarks and say the load):

    flock /tmp/paystream-bench.lock .venv/bin/python bench/e2e.py --rate 500 --duration 60
    flock /tmp/paystream-bench.lock .venv/bin/python bench/e2e.py --rate 1000 --duration 60

Every event is a real ``checkout.session.completed`` body (cloned from
``paystream/stripe_templates``) for a new customer, signed like Stripe and POSTed to
``paystream ingest`` on an open-loop schedule (event *i* leaves at ``t0 + i / rate``; a
non-2xx answer or a connection error is retried like Stripe, later). The expected effect is
one HubSpot contact per customer in ``onboarding_pending``. The stand-in (its own process)
records when each request arrived; a customer's latency is the arrival of the first upsert
that put it in the expected state minus the moment its webhook was first sent.

*lost*: customers whose contact never reached the expected state (after a grace period).
*duplicates*: upsert inputs beyond the first for a customer (the same effect applied again).

The embedded broker, ingest, worker, CRM sink and stand-in are separate processes on this
machine, sharing its cores with the load generator. The last line is exactly
``e2e rate: R/s, p95: P ms, lost: L, duplicates: D``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paystream.runtime.broker import EmbeddedBroker, free_port  # noqa: E402
from paystream.runtime.topics_admin import ensure_topics  # noqa: E402
from paystream.settings import CommonSettings  # noqa: E402
from paystream.signing import sign_header  # noqa: E402
from paystream.storyline import make_event  # noqa: E402

EXPECTED_STATE = "onboarding_pending"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def checkout(customer: str, created: int) -> bytes:
    email = f"{customer.lower()}@example.com"
    event = make_event(
        "checkout.session.completed",
        customer=customer,
        created=created,
        payment_status="paid",
        status="complete",
        customer_email=email,
        customer_details={"email": email},
    )
    return json.dumps(event, separators=(",", ":")).encode()


class Sender:
    """Open-loop sender: the i-th webhook is due at ``t0 + i / rate``; failures are retried."""

    def __init__(self, url: str, secret: str, rate: float, concurrency: int) -> None:
        self.url, self.secret, self.rate, self.concurrency = url, secret, rate, concurrency
        self.sent_at: dict[str, float] = {}
        self.retries = 0
        self.behind_s = 0.0

    async def run(self, bodies: list[tuple[str, bytes]]) -> None:
        queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(maxsize=self.concurrency)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            workers = [
                asyncio.create_task(self._post_loop(session, queue))
                for _ in range(self.concurrency)
            ]
            t0 = time.monotonic()
            for i, item in enumerate(bodies):
                due = t0 + i / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.behind_s = max(self.behind_s, -delay)
                await queue.put(item)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)

    async def _post_loop(
        self, session: aiohttp.ClientSession, queue: asyncio.Queue[tuple[str, bytes] | None]
    ) -> None:
        while (item := await queue.get()) is not None:
            customer, body = item
            while True:
                headers = {
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign_header(body, self.secret),
                }
                self.sent_at.setdefault(customer, time.time())
                try:
                    async with session.post(self.url, data=body, headers=headers) as answer:
                        await answer.read()
                        if 200 <= answer.status < 300:
                            break
                except (TimeoutError, aiohttp.ClientError):
                    pass
                self.retries += 1
                await asyncio.sleep(0.5)


def stage_times(
    settings: CommonSettings, customers: set[str]
) -> dict[str, tuple[float, float, float]]:
    """customer → (ingest received, worker processed, command appended to sink.crm), epoch s."""
    from confluent_kafka import Consumer

    from schemas.codec import default_codec

    codec = default_codec()
    consumer = Consumer(settings.consumer_config(f"e2e-bench-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([settings.topics.sink_crm])
    found: dict[str, tuple[float, float, float]] = {}
    deadline = time.monotonic() + 60
    try:
        while len(found) < len(customers) and time.monotonic() < deadline:
            for message in consumer.consume(5000, 0.5):
                if message.error() is not None:
                    continue
                command = codec.decode(message.value())[1]
                customer = command["customer_id"]
                if customer in customers and customer not in found:
                    found[customer] = (
                        command["received_at_ms"] / 1000,
                        command["processed_at_ms"] / 1000,
                        message.timestamp()[1] / 1000,
                    )
    finally:
        consumer.close()
    return found


def standin_requests(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/__standin/requests", timeout=60) as answer:  # noqa: S310
        found: list[dict[str, Any]] = json.loads(answer.read())
        return found


def reached(requests: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, int]]:
    """First arrival of an upsert putting each customer in the expected state; upserts each."""
    first: dict[str, float] = {}
    count: dict[str, int] = {}
    for request in requests:
        if UPSERT not in request["path"] or not 200 <= request["status"] < 300:
            continue
        for item in request["body"]["inputs"]:
            customer = str(item["id"])
            count[customer] = count.get(customer, 0) + 1
            if item.get("properties", {}).get("billing_state") == EXPECTED_STATE:
                first.setdefault(customer, float(request["at"]))
    return first, count


class Stack:
    """Broker (unless KAFKA_BOOTSTRAP_SERVERS), stand-in, ingest, worker and CRM sink."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.secret = "whsec_" + secrets.token_hex(16)
        self.token = secrets.token_urlsafe(16)
        self.ingest_port, self.standin_port = free_port(), free_port()

    @property
    def standin_url(self) -> str:
        return f"http://127.0.0.1:{self.standin_port}"

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.processes.append((name, process))

    def start(self, bootstrap: str, profile: str) -> None:
        args = self.args
        prefix = f"e2e{uuid.uuid4().hex[:8]}."
        self.settings = CommonSettings(
            kafka_bootstrap_servers=bootstrap,
            paystream_broker_profile=profile,  # type: ignore[arg-type]
            paystream_topic_prefix=prefix,
            paystream_topic_partitions=args.partitions,
        )
        ensure_topics(bootstrap, self.settings.topics.specs())
        python = str(ROOT / ".venv" / "bin" / "python")
        paystream = str(ROOT / ".venv" / "bin" / "paystream")
        self.spawn(
            "hubspot",
            [
                python,
                "-m",
                "paystream.devstack.hubspot",
                "--port",
                str(self.standin_port),
                "--token",
                self.token,
                "--rate-limit",
                str(args.hubspot_rate_limit),
                "--rate-period",
                "10",
            ],
            dict(os.environ),
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            PAYSTREAM_BROKER_PROFILE=profile,
            PAYSTREAM_TOPIC_PREFIX=prefix,
            PAYSTREAM_TOPIC_PARTITIONS=str(args.partitions),
            PAYSTREAM_DATA_DIR=str(self.workdir / "data"),
            PAYSTREAM_LOG_LEVEL="warning",
            STRIPE_MODE="test",
            STRIPE_WEBHOOK_SECRETS=self.secret,
            PAYSTREAM_INGEST_HOST="127.0.0.1",
            PAYSTREAM_INGEST_PORT=str(self.ingest_port),
            PAYSTREAM_WORKER_PORT=str(free_port()),
            PAYSTREAM_SINK_WRITES="enabled",
            HUBSPOT_API_BASE=self.standin_url,
            HUBSPOT_ACCESS_TOKEN=self.token,
            PAYSTREAM_HUBSPOT_RATE_LIMIT=str(args.hubspot_rate_limit),
            PAYSTREAM_HUBSPOT_RATE_PERIOD_S="10",
            PAYSTREAM_SINKS_METRICS_PORT="0",
        )
        for extra in args.env:
            name, _, value = extra.partition("=")
            env[name] = value
        self.spawn("ingest", [paystream, "ingest"], env)
        self.spawn("worker", [paystream, "worker"], env)
        self.spawn("sinks", [paystream, "sinks", "crm"], env)

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} exited ({process.returncode}):\n{tail}")

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _name, process in reversed(self.processes):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(stack: Stack, customers: set[str], timeout: float) -> dict[str, float]:
    """Poll the stand-in until every customer reached the expected state (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        first, _ = reached(standin_requests(stack.standin_url))
        if customers <= first.keys() or time.monotonic() > deadline:
            return first
        time.sleep(0.5)


def warm_up(stack: Stack) -> None:
    """Send a few events until one reaches the CRM: every stage is up and assigned."""
    deadline = time.monotonic() + 180
    while True:
        stack.check_alive()
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{stack.ingest_port}/readyz", timeout=1
            ) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("ingest never became ready")
        time.sleep(0.2)
    for _ in range(30):
        customers = [f"cus_warm{uuid.uuid4().hex[:10]}" for _ in range(20)]
        bodies = [(c, checkout(c, int(time.time()))) for c in customers]
        url = f"http://127.0.0.1:{stack.ingest_port}/webhooks/stripe"
        asyncio.run(Sender(url, stack.secret, 200, 8).run(bodies))
        if wait_for(stack, set(customers), 10).keys() >= set(customers):
            return
    raise SystemExit("the warm-up events never reached the CRM stand-in")


@contextlib.contextmanager
def broker() -> Iterator[tuple[str, str]]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external, "kafka"
        return
    with EmbeddedBroker() as embedded:
        yield embedded.bootstrap_servers, "embedded"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of traffic")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64, help="open HTTP connections")
    parser.add_argument(
        "--hubspot-rate-limit",
        type=int,
        default=1000,
        help="requests per 10 s, stand-in and sink alike (HubSpot's own tiers: 100-250)",
    )
    parser.add_argument("--grace", type=float, default=60, help="seconds to wait for the tail")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    parser.add_argument(
        "--stages", action="store_true", help="also break the latency down by stage (sink.crm)"
    )
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for ingest/worker/sinks"
    )
    args = parser.parse_args()
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    workdir = Path(tempfile.mkdtemp(prefix="paystream-e2e-"))
    total = int(args.rate * args.duration)
    with broker() as (bootstrap, profile):
        stack = Stack(args, workdir)
        try:
            stack.start(bootstrap, profile)
            started = time.monotonic()
            warm_up(stack)
            print(f"stack ready in {time.monotonic() - started:.1f} s (logs: {workdir})")
            run_id = uuid.uuid4().hex[:8]
            now = int(time.time())
            bodies = [
                (c, checkout(c, now + i // 1000))
                for i, c in enumerate(f"cus_e2e{run_id}{i:07d}" for i in range(total))
            ]
            sender = Sender(
                f"http://127.0.0.1:{stack.ingest_port}/webhooks/stripe",
                stack.secret,
                args.rate,
                args.concurrency,
            )
            t0 = time.monotonic()
            asyncio.run(sender.run(bodies))
            took = time.monotonic() - t0
            customers = {c for c, _ in bodies}
            first = wait_for(stack, customers, args.grace)
            _, counts = reached(standin_requests(stack.standin_url))
            stages = stage_times(stack.settings, customers) if args.stages else {}
        finally:
            stack.stop()
    latencies = [(first[c] - sender.sent_at[c]) * 1000 for c in customers if c in first]
    lost = len(customers - first.keys())
    duplicates = sum(counts.get(c, 0) - 1 for c in customers if counts.get(c, 0) > 1)
    achieved = total / took
    print(
        f"sent {total} webhooks in {took:.1f} s ({achieved:.0f}/s, target {args.rate:.0f}/s; "
        f"sender at most {sender.behind_s * 1000:.0f} ms behind schedule; "
        f"{sender.retries} retried)"
    )
    if latencies:
        print(
            "webhook-to-CRM latency: "
            + ", ".join(f"p{q}: {percentile(latencies, q):.0f} ms" for q in (50, 95, 99))
            + f", max: {max(latencies):.0f} ms"
        )
    if stages:
        spans = {
            "webhook sent -> ingest received": [],
            "ingest received -> worker processed": [],
            "worker processed -> command in sink.crm": [],
            "command in sink.crm -> CRM upsert": [],
        }
        for c, (received, processed, appended) in stages.items():
            if c not in first:
                continue
            points = [sender.sent_at[c], received, processed, appended, first[c]]
            for name, a, b in zip(spans, points, points[1:], strict=False):
                spans[name].append((b - a) * 1000)
        print("where the time goes (p50 / p95 ms):")
        for name, values in spans.items():
            if values:
                print(f"  {name}: {percentile(values, 50):.0f} / {percentile(values, 95):.0f}")
    print(f"lost: {lost}, duplicate effects: {duplicates}")
    if args.keep:
        print(f"logs kept in {workdir}")
    p95 = percentile(latencies, 95) if latencies else float("nan")
    print(f"e2e rate: {achieved:.0f}/s, p95: {p95:.0f} ms, lost: {lost}, duplicates: {duplicates}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
