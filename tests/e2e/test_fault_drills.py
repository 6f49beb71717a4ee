"""Fault drills: the whole pipeline as separate OS processes, faults injected under load.

One stack for the module (its own embedded broker, so it can be frozen): the HubSpot and
Zendesk stand-ins, ``paystream ingest``, ``paystream worker`` and ``paystream sinks crm
helpdesk``. Each drill sends the storylines of 50 new customers (realistic, signed Stripe
events: checkout, invoices, two failed renewals, pause/resume, a chargeback, a refund,
the cancellation), every event delivered 1-3 times in shuffled order by a sender that
retries like Stripe (a non-2xx answer or a connection error: try again later), injects its
fault mid-stream, and ends with an EXACT comparison of the stand-ins' state with the one
computed independently: the pure lifecycle fold over each customer's events in
``created`` order (billing state and email per contact; one ticket per key, no other).
"""

from __future__ import annotations

import json
import random
import secrets
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from paystream.runtime.broker import EmbeddedBroker, free_port
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings
from paystream.signing import sign_header
from paystream.storyline import storyline
from processors.lifecycle import (
    CustomerRecord,
    Event,
    OpenTicket,
    apply,
    apply_orphan,
    customer_id_of,
)
from tests.e2e.conftest import Service, http_ok, stop_all

CUSTOMERS = 50
HUBSPOT_TOKEN = "drill-hubspot-token"
ZENDESK_EMAIL, ZENDESK_TOKEN = "agent@example.com", "drill-zendesk-token"
SETTLE_S = 180.0


# ----------------------------------------------------------------------- the expected state
@dataclass
class Expected:
    contacts: dict[str, tuple[str | None, str | None]]  # customer → (billing state, email)
    tickets: set[str]


def expected_outcome(events: list[dict[str, Any]]) -> Expected:
    """The pure lifecycle fold over the events in ``created`` order (no Kafka, no dedup)."""
    records: dict[str, CustomerRecord] = {}
    tickets: set[str] = set()
    for body in sorted(events, key=lambda e: (e["created"], e["id"])):
        obj = body["data"]["object"]
        event = Event(
            event_id=body["id"],
            type=body["type"],
            created=body["created"],
            customer_id=customer_id_of(body["type"], obj, None),
            object=obj,
            previous_attributes=body["data"].get("previous_attributes"),
            livemode=body["livemode"],
        )
        if event.customer_id is None:
            effects = apply_orphan(event)
        else:
            record = records.get(event.customer_id, CustomerRecord(event.customer_id))
            applied = apply(record, event)
            records[event.customer_id] = applied.record
            effects = applied.effects
        tickets |= {e.ticket.key for e in effects if isinstance(e, OpenTicket)}
    return Expected({c: (r.state, r.email) for c, r in records.items()}, tickets)


def drill_events(
    tag: str, seed: int, customers: int = CUSTOMERS
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """``customers`` customers' storylines; deliveries: each event 1-3 times, shuffled."""
    rng = random.Random(seed)
    start = int(time.time()) - 3600  # recent: the onboarding-stuck timer stays quiet
    events: list[dict[str, Any]] = []
    for n in range(customers):
        customer = f"cus_{tag}{n:03d}"
        events += storyline(customer, start + n, email=f"{customer}@example.com")
    deliveries = [
        json.dumps(e, separators=(",", ":")).encode()
        for e in events
        for _ in range(rng.randint(1, 3))
    ]
    rng.shuffle(deliveries)
    return events, deliveries


# ----------------------------------------------------------------------- the sender
@dataclass
class StripeSender:
    """Delivers webhooks like Stripe: each one again, later, until it gets a 2xx."""

    url: str
    secret: str
    deliveries: list[bytes]
    rate: float = 80.0
    threads: int = 8
    retry_after_s: float = 0.3
    acked: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0
    _workers: list[threading.Thread] = field(default_factory=list)
    _t0: float = 0.0

    def start(self) -> StripeSender:
        self._t0 = time.monotonic()
        self._workers = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def _take(self) -> bytes | None:
        with self._lock:
            if self._next >= len(self.deliveries):
                return None
            i, self._next = self._next, self._next + 1
        due = self._t0 + i / self.rate
        time.sleep(max(0.0, due - time.monotonic()))  # the schedule of an open-loop sender
        return self.deliveries[i]

    def _run(self) -> None:
        while (body := self._take()) is not None:
            while not self._post(body):
                time.sleep(self.retry_after_s)

    def _post(self, body: bytes) -> bool:
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign_header(body, self.secret),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                answer.read()
                ok = 200 <= answer.status < 300
                outcome = str(answer.status)
        except urllib.error.HTTPError as exc:
            ok, outcome = False, str(exc.code)
        except (urllib.error.URLError, OSError):
            ok, outcome = False, "connection"
        with self._lock:
            if ok:
                self.acked += 1
            else:
                self.failures[outcome] += 1
        return ok

    def done(self) -> bool:
        return all(not w.is_alive() for w in self._workers)


# ----------------------------------------------------------------------- the stack
class Stack:
    """Broker, stand-ins, ingest, worker and sinks as separate processes."""

    def __init__(self, workdir: Path, partitions: int = 2) -> None:
        self.workdir = workdir
        self.partitions = partitions
        self.broker = EmbeddedBroker(log_path=workdir / "tansu.log")
        self.secret = "whsec_" + secrets.token_hex(16)
        self.ports = {n: free_port() for n in ("ingest", "worker", "hubspot", "zendesk")}
        self.services: dict[str, Service] = {}
        self.customers: set[str] = set()
        self.tickets: set[str] = set()

    def start(self) -> None:
        self.broker.start()
        self.settings = CommonSettings(
            kafka_bootstrap_servers=self.broker.bootstrap_servers,
            paystream_broker_profile="embedded",
            paystream_topic_prefix="drill.",
            paystream_topic_partitions=self.partitions,
        )
        ensure_topics(self.broker.bootstrap_servers, self.settings.topics.specs())
        standin = ["--port"]
        self.run(
            "hubspot",
            [
                *standin,
                str(self.ports["hubspot"]),
                "--token",
                HUBSPOT_TOKEN,
                "--rate-limit",
                "1000",
            ],
            "devstack.hubspot",
        )
        self.run(
            "zendesk",
            [
                *standin,
                str(self.ports["zendesk"]),
                "--email",
                ZENDESK_EMAIL,
                "--token",
                ZENDESK_TOKEN,
            ],
            "devstack.zendesk",
        )
        for name in ("ingest", "worker", "sinks"):
            self.start_service(name)
        self.wait(lambda: http_ok(f"{self.url('ingest')}/readyz"), 60, "ingest ready")
        self.wait(lambda: http_ok(f"{self.url('worker')}/readyz"), 90, "worker ready")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def env(self) -> dict[str, str]:
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
        env.update(
            PAYSTREAM_ENV="development",
            KAFKA_BOOTSTRAP_SERVERS=self.broker.bootstrap_servers,
            PAYSTREAM_BROKER_PROFILE="embedded",
            PAYSTREAM_TOPIC_PREFIX="drill.",
            PAYSTREAM_TOPIC_PARTITIONS=str(self.partitions),
            PAYSTREAM_DATA_DIR=str(self.workdir / "data"),
            STRIPE_MODE="test",
            STRIPE_WEBHOOK_SECRETS=self.secret,
            PAYSTREAM_INGEST_PORT=str(self.ports["ingest"]),
            PAYSTREAM_WORKER_PORT=str(self.ports["worker"]),
            PAYSTREAM_SINK_WRITES="enabled",
            HUBSPOT_API_BASE=self.url("hubspot"),
            HUBSPOT_ACCESS_TOKEN=HUBSPOT_TOKEN,
            PAYSTREAM_HUBSPOT_RATE_LIMIT="1000",
            ZENDESK_API_BASE=self.url("zendesk"),
            ZENDESK_EMAIL=ZENDESK_EMAIL,
            ZENDESK_API_TOKEN=ZENDESK_TOKEN,
            PAYSTREAM_SINKS_METRICS_PORT="0",
            # The default retry policy rides out the 30 s CRM outage (5-10 min before a call
            # is dead-lettered). Only its 30 s cap is lowered: the sink then notices the
            # CRM's return within 5 s instead of up to 30 s (still >= 56 s of back-off).
            PAYSTREAM_SINK_BACKOFF_MAX_S="5",
        )
        return env

    def run(self, name: str, args: list[str], module: str = "paystream") -> Service:
        service = Service(name, args, self.env, self.workdir / f"{name}.log", module)
        self.services[name] = service
        return service

    def start_service(self, name: str) -> Service:
        args = {"ingest": ["ingest"], "worker": ["worker"], "sinks": ["sinks", "crm", "helpdesk"]}
        return self.run(name, args[name])

    def kill(self, name: str) -> None:
        """SIGKILL, then start it again on the same port and data directory."""
        service = self.services[name]
        assert service.alive(), f"{name} was not running:\n{service.tail()}"
        service.stop(signal.SIGKILL)
        self.start_service(name)

    def check_alive(self) -> None:
        for service in self.services.values():
            if not service.alive():
                pytest.fail(f"{service.name} exited:\n{service.tail()}")

    def wait(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.check_alive()
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {s.name}\n{s.tail(15)}" for s in self.services.values())
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
            time.sleep(0.2)

    def stop(self) -> None:
        stop_all(list(reversed(self.services.values())))
        self.broker.stop()

    # ------------------------------------------------------------------- the stand-ins
    def standin_state(self, name: str) -> Any:
        with urllib.request.urlopen(f"{self.url(name)}/__standin/state", timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read())

    def inject(self, name: str, fault: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url(name)}/__standin/faults",
            data=json.dumps(fault).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            assert answer.status == 200

    def observed(
        self, customers: set[str]
    ) -> tuple[dict[str, tuple[str | None, str | None]], Counter[str]]:
        contacts = {}
        for contact in self.standin_state("hubspot")["contacts"]:
            props = contact["properties"]
            if props.get("stripe_customer_id") in customers:
                contacts[props["stripe_customer_id"]] = (
                    props.get("billing_state"),
                    props.get("email"),
                )
        tickets = Counter(str(t["external_id"]) for t in self.standin_state("zendesk")["tickets"])
        return contacts, tickets

    def crm_writes(self, customers: set[str]) -> str:
        """The upserts the CRM answered for ``customers``, oldest first (for a failure)."""
        lines = []
        for request in stack_requests(self, "hubspot"):
            for item in (request.get("body") or {}).get("inputs", []):
                if isinstance(item, dict) and item.get("id") in customers:
                    lines.append(f"{request['path']} {request['status']} {item}")
        return "\n".join(lines[-40:])

    def contacts_of(self, customers: set[str]) -> int:
        return sum(
            1
            for c in self.standin_state("hubspot")["contacts"]
            if c["properties"].get("stripe_customer_id") in customers
        )

    # ------------------------------------------------------------------- a drill
    def sender(self, deliveries: list[bytes], rate: float) -> StripeSender:
        return StripeSender(f"{self.url('ingest')}/webhooks/stripe", self.secret, deliveries, rate)

    def settle_and_compare(self, events: list[dict[str, Any]], sender: StripeSender) -> None:
        """Wait until every delivery was acknowledged and the stand-ins hold the expected
        state (or time out), then compare exactly."""
        expected = expected_outcome(events)
        self.customers |= set(expected.contacts)
        self.tickets |= expected.tickets
        self.wait(sender.done, SETTLE_S, "every delivery acknowledged")
        assert sender.acked == len(sender.deliveries)
        all_tickets = Counter({k: 1 for k in self.tickets})

        def matches() -> bool:
            contacts, tickets = self.observed(set(expected.contacts))
            return contacts == expected.contacts and tickets == all_tickets

        deadline = time.monotonic() + SETTLE_S
        while not matches() and time.monotonic() < deadline:
            self.check_alive()
            time.sleep(0.5)
        contacts, tickets = self.observed(set(expected.contacts))
        differing = {c for c in expected.contacts if contacts.get(c) != expected.contacts[c]}
        assert contacts == expected.contacts, self.crm_writes(differing)  # state and email
        assert tickets == all_tickets  # one ticket per key, and no other ticket
        # every contact once: HubSpot upserts by the unique stripe_customer_id
        assert self.contacts_of(self.customers) == len(self.customers)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("drills"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


# ----------------------------------------------------------------------- the drills
def test_redelivery_and_shuffled_order(stack: Stack) -> None:
    events, deliveries = drill_events("dup", seed=1)
    assert len(deliveries) > len(events)  # some events more than once
    sender = stack.sender(deliveries, rate=200).start()
    stack.settle_and_compare(events, sender)
    assert expected_outcome(events).tickets  # failed renewals and chargebacks were due


def test_ingest_sigkill_under_load(stack: Stack) -> None:
    events, deliveries = drill_events("ing", seed=2)
    sender = stack.sender(deliveries, rate=60).start()
    stack.wait(lambda: sender.acked >= len(deliveries) // 3, 60, "a third acknowledged")
    stack.kill("ingest")
    stack.wait(lambda: sender.failures["connection"] > 0, 30, "the sender to see ingest gone")
    stack.settle_and_compare(events, sender)


def test_worker_and_sinks_sigkill_mid_stream(stack: Stack) -> None:
    events, deliveries = drill_events("wrk", seed=3)
    customers = {f"cus_wrk{n:03d}" for n in range(CUSTOMERS)}
    sender = stack.sender(deliveries, rate=60).start()
    stack.wait(lambda: stack.contacts_of(customers) >= 5, 60, "some contacts in the CRM")
    stack.kill("worker")
    stack.wait(lambda: sender.acked >= 2 * len(deliveries) // 3, 90, "two thirds acknowledged")
    stack.kill("sinks")
    stack.settle_and_compare(events, sender)


def test_broker_frozen_for_10s_under_load(stack: Stack) -> None:
    events, deliveries = drill_events("frz", seed=4)
    sender = stack.sender(deliveries, rate=40).start()
    stack.wait(lambda: sender.acked >= len(deliveries) // 4, 60, "a quarter acknowledged")
    stack.broker.freeze()
    try:
        time.sleep(10)  # the outage itself
        assert not sender.done()
    finally:
        stack.broker.thaw()
    assert sender.failures["503"] > 0  # ingest answered 503 while the broker was away
    stack.settle_and_compare(events, sender)


def test_crm_answering_5xx_for_30s(stack: Stack) -> None:
    events, deliveries = drill_events("crm", seed=5)
    customers = {f"cus_crm{n:03d}" for n in range(CUSTOMERS)}
    sender = stack.sender(deliveries, rate=60).start()
    stack.wait(lambda: stack.contacts_of(customers) >= 5, 60, "some contacts in the CRM")
    stack.inject("hubspot", {"status": 503, "for_s": 30, "path": "/crm/v3/objects/contacts"})
    stack.settle_and_compare(events, sender)
    failed = [r for r in stack_requests(stack, "hubspot") if r["status"] == 503]
    assert failed, "the CRM outage never reached the sink"


def stack_requests(stack: Stack, name: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{stack.url(name)}/__standin/requests", timeout=30) as answer:  # noqa: S310
        found: list[dict[str, Any]] = json.loads(answer.read())
        return found
