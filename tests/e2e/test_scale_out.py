"""Scale-out drill: every stage as several processes, joining and dying while events flow.

Two ingest processes behind one sender that alternates between them (a load balancer),
three workers and then a fourth joining, two sink processes in one group (``paystream
sinks``, every sink, and ``paystream sinks crm helpdesk``, each with its own metrics
port), 4 partitions. On a schedule while the storylines of 40 new customers are delivered
(each event 1-3 times, shuffled): HubSpot answers 429 without ``Retry-After`` to sinks 1
alone, sinks 2 joins during the back-off and dies after it (its partitions go back to
sinks 1) and is restarted at the end, a fourth worker joins, worker 1 is killed for good,
ingest 1 is killed and restarted, worker 2 is killed mid-wave and restarted. It ends in the
exact CRM states and tickets the pure lifecycle gives, every contact once, and every
process alive.

The stall itself (a back-off outliving its partitions' assignment) is reproduced, failing
on the old runner, by ``tests/integration/sinks/test_runner_rebalance.py``; this drill
passed on the old runner too (its 10 s back-off ends before it matters here).
"""

from __future__ import annotations

import itertools
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paystream.runtime.broker import free_port
from tests.e2e.conftest import Service, http_ok
from tests.e2e.test_fault_drills import Stack, StripeSender, drill_events, stack_requests

CUSTOMERS = 40
PARTITIONS = 4
WORKERS = ("worker1", "worker2", "worker3")


class ScaleStack(Stack):
    """The drill stack with each stage as several processes, on 4 partitions."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, partitions=PARTITIONS)
        # ingest 1 and worker 1 are on the base stack's ports (it waits on those)
        self.ports["ingest1"], self.ports["worker1"] = self.ports["ingest"], self.ports["worker"]
        for name in ("ingest2", "worker2", "worker3", "worker4"):
            self.ports[name] = free_port()
        self.metrics_ports = {"sinks1": free_port(), "sinks2": free_port()}

    def start_service(self, name: str) -> Any:
        if name in ("ingest", "worker", "sinks"):  # the base stack's single processes
            return self._start_group(name)
        env = self.env
        if name.startswith("ingest"):
            env["PAYSTREAM_INGEST_PORT"] = str(self.ports[name])
            args = ["ingest"]
        elif name.startswith("worker"):
            env["PAYSTREAM_WORKER_PORT"] = str(self.ports[name])
            args = ["worker"]
        else:
            env["PAYSTREAM_SINKS_METRICS_PORT"] = str(self.metrics_ports[name])
            args = ["sinks"] if name == "sinks1" else ["sinks", "crm", "helpdesk"]
        service = Service(name, args, env, self.workdir / f"{name}.log")
        self.services[name] = service
        return service

    def _start_group(self, name: str) -> Any:
        names = {
            "ingest": ("ingest1", "ingest2"),
            "worker": WORKERS,
            "sinks": ("sinks1", "sinks2"),
        }[name]
        return [self.start_service(n) for n in names][-1]

    def ready(self, name: str) -> bool:
        return http_ok(f"{self.url(name)}/readyz")

    def retire(self, name: str) -> None:
        """SIGKILL for good: the process is not started again."""
        service = self.services.pop(name)
        assert service.alive(), f"{name} was not running:\n{service.tail()}"
        service.stop(signal.SIGKILL)


class AlternatingSender(StripeSender):
    """Stripe's deliveries through a load balancer: ingest 1 and 2 take turns."""

    urls: tuple[str, str] = ("", "")
    turns: Iterator[int] = itertools.cycle((0, 1))

    def _post(self, body: bytes) -> bool:
        self.url = self.urls[next(self.turns)]
        return super()._post(body)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleStack]:
    running = ScaleStack(tmp_path_factory.mktemp("scale"))
    try:
        running.start()
        for name in ("ingest2", *WORKERS):
            running.wait(lambda n=name: running.ready(n), 90, f"{name} ready")
        yield running
    finally:
        running.stop()


def test_replicas_join_and_die_while_events_flow(stack: ScaleStack) -> None:
    events, deliveries = drill_events("scl", seed=28, customers=CUSTOMERS)
    sender = AlternatingSender(stack.url("ingest1"), stack.secret, deliveries, rate=40)
    sender.urls = (
        f"{stack.url('ingest1')}/webhooks/stripe",
        f"{stack.url('ingest2')}/webhooks/stripe",
    )
    sender.start()
    total = len(deliveries)
    customers = {f"cus_scl{n:03d}" for n in range(CUSTOMERS)}

    # The rebalance a replica stalled on: sinks 1 alone, HubSpot answers 429 (no Retry-After:
    # a 10 s back-off, every partition paused), sinks 2 joins during it and takes some of
    # them, the back-off ends, sinks 2 dies: its partitions come back to sinks 1 (librdkafka
    # keeps their pause flag) and must deliver. Meanwhile a fourth worker joins.
    stack.wait(lambda: stack.contacts_of(customers) >= 3, 90, "the first contacts")
    stack.retire("sinks2")
    stack.wait(lambda: held(stack, "sinks1") == PARTITIONS, 60, "sinks 1 holding every partition")
    stack.inject("hubspot", {"status": 429, "for_s": 2, "path": "/crm/v3/objects/contacts"})
    stack.wait(lambda: 429 in [r["status"] for r in _requests(stack)], 30, "the 429")
    backed_off = time.monotonic()
    stack.start_service("sinks2")
    stack.start_service("worker4")
    stack.wait(lambda: held(stack, "sinks2") > 0, 30, "sinks 2 taking partitions")
    # the back-off (10 s from the 429) ends while sinks 2 holds its share
    stack.wait(lambda: time.monotonic() - backed_off > 11, 15, "the back-off to end")
    stack.retire("sinks2")
    stack.wait(lambda: stack.ready("worker4"), 90, "worker 4 ready")

    stack.wait(lambda: sender.acked >= total // 2, 120, "half acknowledged")
    stack.retire("worker1")
    stack.kill("ingest1")
    stack.wait(lambda: stack.ready("ingest1"), 60, "ingest 1 back")

    stack.wait(lambda: sender.acked >= 3 * total // 4, 120, "three quarters acknowledged")
    stack.kill("worker2")

    # sinks 1 alone delivers everything, the partitions it got back paused included
    stack.settle_and_compare(events, sender)
    stack.start_service("sinks2")  # killed and restarted: back in the group
    stack.wait(lambda: held(stack, "sinks2") > 0, 60, "sinks 2 back in the group")
    stack.check_alive()  # every process that should run still runs
    alive = {"ingest1", "ingest2", "worker2", "worker3", "worker4", "sinks1", "sinks2"}
    assert set(stack.services) >= alive


def held(stack: ScaleStack, name: str) -> float:
    """CRM partitions the sinks process ``name`` holds, from its own metrics."""
    url = f"http://127.0.0.1:{stack.metrics_ports[name]}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return 0.0
    group = f'group="{stack.settings.topic_prefix}sinks.crm"'
    for line in text.splitlines():
        if line.startswith("paystream_consumer_assigned_partitions{") and group in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _requests(stack: ScaleStack) -> list[dict[str, Any]]:
    return stack_requests(stack, "hubspot")
