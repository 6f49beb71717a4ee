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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._kafka_requests import counted_since, read_counts  # noqa: E402
from bench._loadgen import LoadGenerator, Outcome, http_post  # noqa: E402
from bench._measure import cpu_seconds, percentile  # noqa: E402
from paystream.runtime.broker import EmbeddedBroker, free_port  # noqa: E402
from paystream.runtime.topics_admin import ensure_topics  # noqa: E402
from paystream.settings import CommonSettings  # noqa: E402
from paystream.signing import sign_header  # noqa: E402
from paystream.storyline import make_event  # noqa: E402

EXPECTED_STATE = "onboarding_pending"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
WEBHOOK_PATH = "/webhooks/stripe"


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


def prepared_requests(port: int, secret: str, customers: list[str], created: int) -> list[bytes]:
    """Signed ``checkout.session.completed`` POSTs, one per customer, built before the run."""
    signed_at = int(time.time())
    return [
        http_post(
            "127.0.0.1",
            port,
            WEBHOOK_PATH,
            {
                "Content-Type": "application/json",
                "Stripe-Signature": sign_header(body, secret, signed_at),
            },
            body,
        )
        for body in (checkout(c, created + i // 1000) for i, c in enumerate(customers))
    ]


def send(port: int, requests: list[bytes], rate: float, connections: int) -> Outcome:
    return asyncio.run(LoadGenerator("127.0.0.1", port, requests, rate, connections).run())


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


class CrmWatch:
    """Reads the stand-in's request log incrementally (``?since=N``): each poll costs the
    stand-in only what arrived since the last one, not the whole run again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen = 0
        #: customer → arrival of the first upsert putting it in the expected state
        self.first: dict[str, float] = {}
        #: customer → upsert inputs naming it
        self.count: dict[str, int] = {}

    def poll(self) -> None:
        address = f"{self.url}/__standin/requests?since={self.seen}"
        with urllib.request.urlopen(address, timeout=60) as answer:  # noqa: S310
            requests: list[dict[str, Any]] = json.loads(answer.read())
        for n, request in enumerate(requests):
            if request["status"] == 0:  # still being answered: read it again next time
                self.seen += n
                return
            if UPSERT not in request["path"] or not 200 <= request["status"] < 300:
                continue
            for item in request["body"]["inputs"]:
                customer = str(item["id"])
                self.count[customer] = self.count.get(customer, 0) + 1
                if item.get("properties", {}).get("billing_state") == EXPECTED_STATE:
                    self.first.setdefault(customer, float(request["at"]))
        self.seen += len(requests)


class Stack:
    """Broker (unless KAFKA_BOOTSTRAP_SERVERS), stand-in, ingest, worker and CRM sink."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.secret = "whsec_" + secrets.token_hex(16)
        self.token = secrets.token_urlsafe(16)
        self.ingest_port, self.standin_port = free_port(), free_port()

        self.crm = CrmWatch(self.standin_url)

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
                "devstack.hubspot",
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


def cpu_by_process(stack: Stack, broker_pid: int | None) -> dict[str, float]:
    pids = {name: process.pid for name, process in stack.processes}
    if broker_pid is not None:
        pids["broker"] = broker_pid
    found = {name: cpu_seconds(pid) for name, pid in pids.items()}
    found["load generator"] = cpu_seconds(os.getpid())
    return found


def wait_for(stack: Stack, customers: set[str], timeout: float) -> dict[str, float]:
    """Poll the stand-in until every customer reached the expected state (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        stack.crm.poll()
        if customers <= stack.crm.first.keys() or time.monotonic() > deadline:
            return stack.crm.first
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
        requests = prepared_requests(stack.ingest_port, stack.secret, customers, int(time.time()))
        send(stack.ingest_port, requests, 200, 4)
        if wait_for(stack, set(customers), 10).keys() >= set(customers):
            return
    raise SystemExit("the warm-up events never reached the CRM stand-in")


@contextlib.contextmanager
def broker(counts: Path | None = None) -> Iterator[tuple[str, str, int | None]]:
    """The broker to use; with ``counts``, the embedded one behind a request-counting proxy."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external, "kafka", None
        return
    if counts is None:
        with EmbeddedBroker() as embedded:
            yield embedded.bootstrap_servers, "embedded", embedded.pid
        return
    listen = free_port()
    with EmbeddedBroker(advertised=f"127.0.0.1:{listen}") as embedded:
        proxy = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "_kafka_requests.py"),
                "--listen",
                str(listen),
                "--upstream",
                embedded.bootstrap_servers,
                "--out",
                str(counts),
            ],
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 10
            while not counts.exists():
                if time.monotonic() > deadline or proxy.poll() is not None:
                    raise SystemExit("the request-counting proxy did not start")
                time.sleep(0.1)
            yield f"127.0.0.1:{listen}", "embedded", embedded.pid
        finally:
            proxy.terminate()
            proxy.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of traffic")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--connections", type=int, default=16, help="kept-alive connections to open first"
    )
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
    parser.add_argument(
        "--count-requests",
        action="store_true",
        help="count the clients' Kafka requests per API key through a proxy (costs CPU)",
    )
    args = parser.parse_args()
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    workdir = Path(tempfile.mkdtemp(prefix="paystream-e2e-"))
    total = int(args.rate * args.duration)
    counts_file = workdir / "kafka-requests.json" if args.count_requests else None
    with broker(counts_file) as (bootstrap, profile, broker_pid):
        stack = Stack(args, workdir)
        try:
            stack.start(bootstrap, profile)
            started = time.monotonic()
            warm_up(stack)
            print(f"stack ready in {time.monotonic() - started:.1f} s (logs: {workdir})")
            run_id = uuid.uuid4().hex[:8]
            names = [f"cus_e2e{run_id}{i:07d}" for i in range(total)]
            requests = prepared_requests(stack.ingest_port, stack.secret, names, int(time.time()))
            cpu_before = cpu_by_process(stack, broker_pid)
            requests_before = read_counts(counts_file) if counts_file else {}
            sent = send(stack.ingest_port, requests, args.rate, args.connections)
            requests_during = counted_since(counts_file, requests_before) if counts_file else {}
            cpu = {
                name: used - cpu_before.get(name, 0.0)
                for name, used in cpu_by_process(stack, broker_pid).items()
            }
            sending_s = sent.finished_wall - sent.t0_wall
            customers = set(names)
            first = wait_for(stack, customers, args.grace)
            counts = stack.crm.count
            stages = stage_times(stack.settings, customers) if args.stages else {}
        finally:
            stack.stop()
    # from the moment each webhook was due, so a late sender adds to the latency
    latency = {c: (first[c] - sent.scheduled(i)) * 1000 for i, c in enumerate(names) if c in first}
    latencies = list(latency.values())
    lost = len(customers - first.keys())
    duplicates = sum(counts.get(c, 0) - 1 for c in customers if counts.get(c, 0) > 1)
    achieved = sent.offered_rate()
    lags = sent.lags_ms()
    print(
        f"sent {total} webhooks at {achieved:.0f}/s (target {args.rate:.0f}/s); behind schedule "
        f"p99 {percentile(lags, 99):.1f} ms, max {max(lags):.1f} ms; {sent.retries} retried; "
        f"{sent.connections} connections ({sent.failed_connects} failed); "
        f"answers {dict(sorted(sent.statuses.items()))}"
    )
    if latencies:
        print(
            "webhook-to-CRM latency (from the scheduled send): "
            + ", ".join(f"p{q}: {percentile(latencies, q):.0f} ms" for q in (50, 95, 99))
            + f", max: {max(latencies):.0f} ms"
        )
        slice_n = max(1, int(args.rate * 10))
        by_slice = [
            [latency[c] for c in names[k : k + slice_n] if c in latency]
            for k in range(0, total, slice_n)
        ]
        print(
            "p95 per 10 s of the schedule: "
            + ", ".join(f"{percentile(v, 95):.0f}" for v in by_slice if v)
            + " ms"
        )
    print(
        f"CPU while sending ({sending_s:.0f} s, in cores): "
        + ", ".join(f"{name} {used / sending_s:.2f}" for name, used in cpu.items())
    )
    if requests_during:
        busiest = sorted(requests_during.items(), key=lambda kv: -kv[1])
        print(
            "Kafka requests while sending (per s, per event): "
            + ", ".join(f"{key} {n / sending_s:.0f}/s {n / total:.2f}" for key, n in busiest if n)
        )
    if stages:
        spans: dict[str, list[float]] = {
            "webhook due -> ingest received": [],
            "ingest received -> worker processed": [],
            "worker processed -> command in sink.crm": [],
            "command in sink.crm -> CRM upsert": [],
        }
        for i, c in enumerate(names):
            if c not in first or c not in stages:
                continue
            received, processed, appended = stages[c]
            points = [sent.scheduled(i), received, processed, appended, first[c]]
            for name, a, b in zip(spans, points, points[1:], strict=False):
                spans[name].append((b - a) * 1000)
        print("where the time goes (p50 / p95 / p99 ms):")
        for name, values in spans.items():
            if values:
                figures = " / ".join(f"{percentile(values, q):.0f}" for q in (50, 95, 99))
                print(f"  {name}: {figures}")
    print(f"lost: {lost}, duplicate effects: {duplicates}")
    if args.keep:
        print(f"logs kept in {workdir}")
    p95 = percentile(latencies, 95) if latencies else float("nan")
    print(f"e2e rate: {achieved:.0f}/s, p95: {p95:.0f} ms, lost: {lost}, duplicates: {duplicates}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
