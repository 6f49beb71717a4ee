"""The stack the end-to-end benchmarks run: what ``paystream up`` runs, as separate processes.

The embedded broker (unless ``KAFKA_BOOTSTRAP_SERVERS``), the HubSpot and Zendesk stand-ins,
``paystream ingest``, ``paystream worker``, ``paystream sinks`` (every sink, as ``up`` runs
them: CRM, helpdesk and metrics into the embedded store) and ``paystream admin``, with the
product's defaults: the HubSpot plan's quota (``PAYSTREAM_HUBSPOT_PLAN``, professional: 190
requests per 10 s) in the stand-in and the sink alike, unless a bench is told to raise it
(``--hubspot-rate-limit``; then it says so beside its figures).

Also the parts the benches share: signed webhook requests, the stand-in's request log read
incrementally (``CrmWatch``), the warm-up, and CPU/RSS per process.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from bench._loadgen import LoadGenerator, Outcome, http_post  # noqa: E402
from bench._measure import cpu_seconds, rss_mib  # noqa: E402
from paystream.commands.up import embedded_ingest_environment  # noqa: E402
from paystream.runtime.broker import EmbeddedBroker, free_port  # noqa: E402
from paystream.runtime.topics_admin import ensure_topics  # noqa: E402
from paystream.settings import CommonSettings  # noqa: E402
from paystream.signing import sign_header  # noqa: E402
from paystream.storyline import make_event  # noqa: E402
from sinks.hubspot import PLAN_LIMITS_PER_10S  # noqa: E402

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
#: the CRM calls that write contacts (their inputs are the contact writes)
WRITES = (UPSERT, "/crm/v3/objects/contacts/batch/update", "/crm/v3/objects/contacts/batch/create")
WEBHOOK_PATH = "/webhooks/stripe"
DEFAULT_PLAN = "professional"


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every end-to-end bench shares (the product's defaults unless told)."""
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--connections", type=int, default=16, help="kept-alive connections to open first"
    )
    parser.add_argument(
        "--hubspot-plan",
        default=DEFAULT_PLAN,
        choices=sorted(PLAN_LIMITS_PER_10S),
        help="PAYSTREAM_HUBSPOT_PLAN of the sink; its quota is the stand-in's (default: "
        "professional, 190 requests per 10 s, the product's default)",
    )
    parser.add_argument(
        "--hubspot-rate-limit",
        type=int,
        default=None,
        help="raise (or lower) the quota, requests per 10 s, stand-in and sink alike "
        "(PAYSTREAM_HUBSPOT_RATE_LIMIT); the figures then say so",
    )
    parser.add_argument(
        "--only-crm", action="store_true", help="run only the CRM sink (the old bench's setup)"
    )
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for ingest/worker/sinks"
    )
    parser.add_argument(
        "--count-requests",
        action="store_true",
        help="count the clients' Kafka requests per process, client and API key through a "
        "proxy (bench/_kafka_requests.py; costs CPU)",
    )


def quota(args: argparse.Namespace) -> tuple[int, str]:
    """HubSpot requests per 10 s the run allows and how the figures name it."""
    if args.hubspot_rate_limit is not None:
        limit = int(args.hubspot_rate_limit)
        return limit, f"HubSpot quota {limit}/10 s (raised by --hubspot-rate-limit, not a default)"
    limit = PLAN_LIMITS_PER_10S[args.hubspot_plan]
    return limit, f"HubSpot quota {limit}/10 s ({args.hubspot_plan} plan, the product's default)"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def signed_post(port: int, secret: str, event: dict[str, Any], signed_at: int) -> bytes:
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": sign_header(body, secret, signed_at),
    }
    return http_post("127.0.0.1", port, WEBHOOK_PATH, headers, body)


def checkout(customer: str, created: int) -> dict[str, Any]:
    email = f"{customer.lower()}@example.com"
    return make_event(
        "checkout.session.completed",
        customer=customer,
        created=created,
        payment_status="paid",
        status="complete",
        customer_email=email,
        customer_details={"email": email},
    )


def prepared_requests(port: int, secret: str, customers: list[str], created: int) -> list[bytes]:
    """Signed ``checkout.session.completed`` POSTs, one per customer, built before the run."""
    signed_at = int(time.time())
    return [
        signed_post(port, secret, checkout(c, created + i // 1000), signed_at)
        for i, c in enumerate(customers)
    ]


def send(port: int, requests: list[bytes], rate: float, connections: int) -> Outcome:
    return asyncio.run(LoadGenerator("127.0.0.1", port, requests, rate, connections).run())


@dataclass
class Window:
    """What the stand-in saw between two moments: requests, 429s, contact writes."""

    requests: int = 0
    limited: int = 0
    writes: int = 0

    def minus(self, earlier: Window) -> Window:
        return Window(
            self.requests - earlier.requests,
            self.limited - earlier.limited,
            self.writes - earlier.writes,
        )


def requests_per_write(window: Window) -> str:
    """``N requests (K answered 429) for W contact writes: R per write``."""
    ratio = f"{window.requests / window.writes:.3f}" if window.writes else "n/a"
    return (
        f"HubSpot requests: {window.requests} ({window.limited} answered 429) for "
        f"{window.writes} contact writes: {ratio} per contact write"
    )


class CrmWatch:
    """Reads the stand-in's request log incrementally (``?since=N``): each poll costs the
    stand-in only what arrived since the last one, not the whole run again."""

    def __init__(self, url: str, expected_state: str) -> None:
        self.url = url
        self.expected_state = expected_state
        self.seen = 0
        #: customer → arrival of the first write putting it in the expected state
        self.first: dict[str, float] = {}
        #: customer → write inputs naming it
        self.count: dict[str, int] = {}
        #: every API request so far, those answered 429, contact write inputs
        self.total = Window()
        #: arrival (epoch s) of each API request, for counts over a span of time
        self.arrivals: list[float] = []
        #: arrival (epoch s) of each request answered 429
        self.limited_at: list[float] = []

    def poll(self) -> None:
        address = f"{self.url}/__standin/requests?since={self.seen}"
        with urllib.request.urlopen(address, timeout=60) as answer:  # noqa: S310
            requests: list[dict[str, Any]] = json.loads(answer.read())
        for n, request in enumerate(requests):
            if request["status"] == 0:  # still being answered: read it again next time
                self.seen += n
                return
            self._count(request)
        self.seen += len(requests)

    def _count(self, request: dict[str, Any]) -> None:
        self.total.requests += 1
        self.arrivals.append(float(request["at"]))
        if request["status"] == 429:
            self.total.limited += 1
            self.limited_at.append(float(request["at"]))
        if not any(w in request["path"] for w in WRITES) or not 200 <= request["status"] < 300:
            return
        for item in request["body"]["inputs"]:
            self.total.writes += 1
            properties = item.get("properties", {})
            customer = str(properties.get("stripe_customer_id") or item.get("id"))
            self.count[customer] = self.count.get(customer, 0) + 1
            if properties.get("billing_state") == self.expected_state:
                self.first.setdefault(customer, float(request["at"]))

    def requests_between(self, start: float, end: float) -> int:
        return sum(1 for at in self.arrivals if start <= at < end)


class Stack:
    """What ``paystream up`` runs, each its own process (see the module doc)."""

    def __init__(self, args: argparse.Namespace, workdir: Path, expected_state: str) -> None:
        self.args, self.workdir = args, workdir
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.secret = "whsec_" + secrets.token_hex(16)
        self.token = secrets.token_urlsafe(16)
        self.ingest_port, self.standin_port = free_port(), free_port()
        self.zendesk_port, self.worker_port = free_port(), free_port()
        self.crm = CrmWatch(self.standin_url, expected_state)
        self.broker_pid: int | None = None
        #: the counting proxy's file (``--count-requests``), else None
        self.counts_file: Path | None = None

    @property
    def standin_url(self) -> str:
        return f"http://127.0.0.1:{self.standin_port}"

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,  # the stand-ins (devstack/) live in the source checkout
        )
        self.processes.append((name, process))

    def start(self, bootstrap: str, profile: str, broker_pid: int | None) -> None:
        args = self.args
        self.broker_pid = broker_pid
        prefix = f"e2e{uuid.uuid4().hex[:8]}."
        self.settings = CommonSettings(
            paystream_env="development",
            kafka_bootstrap_servers=bootstrap,
            paystream_broker_profile=profile,  # type: ignore[arg-type]
            paystream_topic_prefix=prefix,
            paystream_topic_partitions=args.partitions,
        )
        ensure_topics(bootstrap, self.settings.topics.specs())
        limit, _ = quota(args)
        python = sys.executable
        self._standins(python, limit)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
        env.update(self._environment(bootstrap, profile, prefix))
        for extra in args.env:
            name, _, value = extra.partition("=")
            env[name] = value
        self.spawn("ingest", [python, "-m", "paystream", "ingest"], env)
        self.spawn("worker", [python, "-m", "paystream", "worker"], env)
        sinks = ["crm"] if args.only_crm else []
        self.spawn("sinks", [python, "-m", "paystream", "sinks", *sinks], env)
        if not args.only_crm:
            self.spawn("admin", [python, "-m", "paystream", "admin"], env)

    def _standins(self, python: str, limit: int) -> None:
        hubspot = ["--port", str(self.standin_port), "--token", self.token]
        hubspot += ["--rate-limit", str(limit), "--rate-period", "10"]
        self.spawn("hubspot", [python, "-m", "devstack.hubspot", *hubspot], {**os.environ})
        if not self.args.only_crm:
            zendesk = ["--port", str(self.zendesk_port), "--email", "agent@example.com"]
            zendesk += ["--token", self.token]
            self.spawn("zendesk", [python, "-m", "devstack.zendesk", *zendesk], {**os.environ})

    def _environment(self, bootstrap: str, profile: str, prefix: str) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PAYSTREAM_BROKER_PROFILE": profile,
            "PAYSTREAM_TOPIC_PREFIX": prefix,
            "PAYSTREAM_TOPIC_PARTITIONS": str(self.args.partitions),
            "PAYSTREAM_DATA_DIR": str(self.workdir / "data"),
            "PAYSTREAM_ENV": "development",
            "PAYSTREAM_LOG_LEVEL": "warning",
            "STRIPE_MODE": "test",
            "STRIPE_WEBHOOK_SECRETS": self.secret,
            "PAYSTREAM_INGEST_HOST": "127.0.0.1",
            "PAYSTREAM_INGEST_PORT": str(self.ingest_port),
            "PAYSTREAM_WORKER_PORT": str(self.worker_port),
            "PAYSTREAM_ADMIN_PORT": str(free_port()),
            "PAYSTREAM_ADMIN_TOKEN": secrets.token_urlsafe(24),
            # as up: the worker's API, and ingest's read-through to this worker
            "PAYSTREAM_API_TOKEN": secrets.token_urlsafe(24),
            "PAYSTREAM_WORKER_URL": f"http://127.0.0.1:{self.worker_port}",
            "PAYSTREAM_SINKS_METRICS_PORT": str(free_port()),
            "PAYSTREAM_SINK_WRITES": "enabled",
            "HUBSPOT_API_BASE": self.standin_url,
            "HUBSPOT_ACCESS_TOKEN": self.token,
            "PAYSTREAM_HUBSPOT_PLAN": self.args.hubspot_plan,
            "ZENDESK_API_BASE": f"http://127.0.0.1:{self.zendesk_port}",
            "ZENDESK_EMAIL": "agent@example.com",
            "ZENDESK_API_TOKEN": self.token,
        }
        if profile == "embedded":  # as `paystream up` starts ingest beside its broker
            env.update(embedded_ingest_environment())
        if self.args.hubspot_rate_limit is not None:
            env["PAYSTREAM_HUBSPOT_RATE_LIMIT"] = str(self.args.hubspot_rate_limit)
            env["PAYSTREAM_HUBSPOT_RATE_PERIOD_S"] = "10"
        return env

    def pids(self) -> dict[str, int]:
        """Every process of the stack by name, the broker and this load generator included."""
        found = {name: process.pid for name, process in self.processes}
        if self.broker_pid is not None:
            found["broker"] = self.broker_pid
        found["load generator"] = os.getpid()
        return found

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def rss(self) -> dict[str, float]:
        return {name: rss_mib(pid) for name, pid in self.pids().items()}

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


def counter_sum(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus counter's samples in ``text`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def read_metrics(port: int) -> str:
    """A process's Prometheus ``/metrics`` text ("" when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text: str = answer.read().decode()
    except OSError:
        return ""
    return text


def cpu_line(title: str, before: dict[str, float], after: dict[str, float], span_s: float) -> str:
    """``title (S s, in cores): name C, ...; stack T`` — CPU each process used over a span."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    cores = {name: seconds / span_s for name, seconds in used.items()} if span_s > 0 else {}
    stack = sum(c for name, c in cores.items() if name != "load generator")
    return (
        f"{title} ({span_s:.0f} s, in cores): "
        + ", ".join(f"{name} {c:.2f}" for name, c in cores.items())
        + f"; stack without the load generator {stack:.2f}"
    )


def wait_for(stack: Stack, customers: set[str], timeout: float) -> dict[str, float]:
    """Poll the stand-in until every customer reached the expected state (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        stack.crm.poll()
        if customers <= stack.crm.first.keys() or time.monotonic() > deadline:
            return stack.crm.first
        time.sleep(0.5)


def wait_ready(stack: Stack) -> None:
    deadline = time.monotonic() + 180
    while True:
        stack.check_alive()
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(
                f"http://127.0.0.1:{stack.ingest_port}/readyz", timeout=1
            ) as answer,
        ):
            if answer.status == 200:
                return
        if time.monotonic() > deadline:
            raise SystemExit("ingest never became ready")
        time.sleep(0.2)


def warm_up(stack: Stack, build: Callable[[list[str]], list[bytes]] | None = None) -> None:
    """Send a few new customers until they reach the CRM in the expected state (``build``
    makes their requests; default: checkouts): every stage is up and assigned."""
    wait_ready(stack)
    for _ in range(30):
        customers = [f"cus_warm{uuid.uuid4().hex[:10]}" for _ in range(20)]
        if build is None:
            now = int(time.time())
            requests = prepared_requests(stack.ingest_port, stack.secret, customers, now)
        else:
            requests = build(customers)
        send(stack.ingest_port, requests, 200, 4)
        if wait_for(stack, set(customers), 10).keys() >= set(customers):
            return
    raise SystemExit("the warm-up events never reached the CRM stand-in")


@contextlib.contextmanager
def running(args: argparse.Namespace, name: str, expected_state: str) -> Iterator[Stack]:
    """Print the load and the quota, then start the broker (behind the counting proxy with
    ``--count-requests``: ``stack.counts_file``) and the stack; stop both at the end."""
    print(f"uptime before: {uptime()}")
    _, quota_note = quota(args)
    print(quota_note + ("; CRM sink only" if args.only_crm else "; every sink, as `paystream up`"))
    workdir = Path(tempfile.mkdtemp(prefix=f"paystream-{name}-"))
    counts_file = workdir / "kafka-requests.json" if args.count_requests else None
    with broker(counts_file) as (bootstrap, profile, broker_pid):
        stack = Stack(args, workdir, expected_state)
        stack.counts_file = counts_file
        try:
            stack.start(bootstrap, profile, broker_pid)
            yield stack
        finally:
            stack.stop()


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
