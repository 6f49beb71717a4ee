"""Renewal burst: the first of the month, thousands of active subscriptions renew at once.

Usage (on a shared machine, serialise benchmarks and say the load):

    flock /tmp/paystream-e2e.lock .venv/bin/python bench/renewal.py
    flock /tmp/paystream-e2e.lock .venv/bin/python bench/renewal.py --rate 200 --duration 2  # smoke

On the stack ``paystream up`` runs (``bench/_stack.py``: every sink, the HubSpot plan's quota),
it first creates ``--customers`` active customers through the pipeline: one signed
``invoice.paid`` (``subscription_create``, a month ago) each, sent at ``--create-rate``, and
waits until every one is an ``active`` HubSpot contact, so the worker and the CRM know them.
Then it sends ``--rate`` ``invoice.paid``/s (``subscription_cycle``, same subscription, same
email: no state change, no contact change) for ``--duration`` seconds, one renewal per
customer, on the open-loop schedule of ``bench/_loadgen.py``.

Reported: ingest's answer time (from each webhook's scheduled send to its 2xx, retries
included) p50/p95/p99 and its 5xx count; how long the worker takes to handle the backlog,
twice: until its ``paystream_events_total`` counts every renewal (exact) and until its
consumer lag on ``stripe.events`` is back to 0 (``paystream/runtime/lag.py``; the embedded
broker's figure is approximate); and the HubSpot requests from the burst's start until the
drain plus 10 s (nothing changed, so the target is 0). Targets (issue 29): ingest p95 <
500 ms with no 5xx, drained within 60 s, 0 HubSpot requests. The last line is
``renewal rate: R/s, ingest p95: P ms, 5xx: E, drained in D s, HubSpot requests: H``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._loadgen import Outcome  # noqa: E402
from bench._measure import percentile  # noqa: E402
from bench._stack import (  # noqa: E402
    Stack,
    add_stack_arguments,
    broker,
    counter_sum,
    cpu_line,
    quota,
    read_metrics,
    send,
    signed_post,
    uptime,
    wait_for,
    warm_up,
)
from paystream.runtime.lag import read_lag  # noqa: E402
from paystream.storyline import make_event  # noqa: E402
from paystream.vocabulary import ACTIVE  # noqa: E402

MONTH_S = 30 * 86400


def invoice_paid(customer: str, created: int, reason: str) -> dict[str, Any]:
    """A paid invoice of the customer's subscription (``sub_<customer>``), with its email."""
    return make_event(
        "invoice.paid",
        customer=customer,
        created=created,
        subscription=f"sub_{customer.removeprefix('cus_')}",
        billing_reason=reason,
        customer_email=f"{customer.lower()}@example.com",
    )


def invoices(stack: Stack, customers: list[str], created: int, reason: str) -> list[bytes]:
    signed_at = int(time.time())
    return [
        signed_post(stack.ingest_port, stack.secret, invoice_paid(c, created, reason), signed_at)
        for c in customers
    ]


def worker_lag(stack: Stack) -> int | None:
    """The worker's consumer lag on ``stripe.events`` now (None: unreadable)."""
    topics = stack.settings.topics
    try:
        groups = read_lag(stack.settings)
    except Exception:  # the broker busy: read again
        return None
    group = groups.get(topics.worker_app_id)
    if group is None:
        return None
    return sum(p.lag for p in group.partitions if p.topic == topics.stripe_events)


def renewals_handled(stack: Stack) -> float:
    text = read_metrics(stack.worker_port)
    return counter_sum(text, "paystream_events_total", type="invoice.paid")


def drain(stack: Stack, expected: float, timeout: float) -> tuple[float | None, float | None]:
    """Wall-clock moments the worker counted ``expected`` renewals and its lag read 0."""
    counted_at: float | None = None
    lag_zero_at: float | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (counted_at is None or lag_zero_at is None):
        stack.check_alive()
        if counted_at is None and renewals_handled(stack) >= expected:
            counted_at = time.time()
        if lag_zero_at is None and counted_at is not None and worker_lag(stack) == 0:
            lag_zero_at = time.time()
        time.sleep(0.25)
    return counted_at, lag_zero_at


def settle(stack: Stack, quiet_s: float = 3.0, timeout: float = 120.0) -> None:
    """Until the stand-in got no request for ``quiet_s`` (the pre-created writes are done)."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        stack.crm.poll()
        if stack.crm.total.requests != seen:
            seen, since = stack.crm.total.requests, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.5)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000, help="renewals per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds of the burst")
    parser.add_argument(
        "--customers", type=int, default=0, help="active customers (default: rate x duration)"
    )
    parser.add_argument("--create-rate", type=float, default=500, help="creations per second")
    parser.add_argument("--drain-timeout", type=float, default=300)
    add_stack_arguments(parser)
    return parser.parse_args()


def create_customers(stack: Stack, args: argparse.Namespace, names: list[str]) -> None:
    month_ago = int(time.time()) - MONTH_S
    started = time.monotonic()
    sent = send(
        stack.ingest_port,
        invoices(stack, names, month_ago, "subscription_create"),
        args.create_rate,
        args.connections,
    )
    first = wait_for(stack, set(names), 600)
    missing = len(set(names) - first.keys())
    if missing:
        raise SystemExit(f"{missing} of {len(names)} customers never became active contacts")
    settle(stack)
    print(
        f"created {len(names)} active customers in {time.monotonic() - started:.1f} s "
        f"({sent.offered_rate():.0f}/s offered; {stack.crm.total.requests} HubSpot requests)"
    )


Drained = tuple[float | None, float | None]


def report(
    sent: Outcome, total: int, customers: int, drained: Drained, hubspot: int, quota_note: str
) -> None:
    """What ingest answered, how the worker drained, what HubSpot got."""
    answers = sent.answer_ms()
    print(
        f"sent {total} invoice.paid at {sent.offered_rate():.0f}/s (target "
        f"{sent.rate:.0f}/s) for {customers} active customers; {sent.retries} retried; "
        f"answers {dict(sorted(sent.statuses.items()))}"
    )
    print(
        "ingest answer (from the scheduled send, retries included): "
        + ", ".join(f"p{q}: {percentile(answers, q):.0f} ms" for q in (50, 95, 99))
        + f", max: {max(answers):.0f} ms"
    )

    def since_end(at: float | None) -> str:
        return f"{at - sent.finished_wall:.1f} s" if at is not None else "not within the timeout"

    counted_at, lag_zero_at = drained
    print(
        f"worker drained: every renewal counted {since_end(counted_at)} after the last was "
        f"sent, consumer lag 0 {since_end(lag_zero_at)} after (embedded lag is approximate)"
    )
    print(f"HubSpot requests from the burst's start to the drain + 10 s: {hubspot} ({quota_note})")


def print_summary(sent: Outcome, drained: Drained, hubspot: int) -> None:
    """The targets line and the last line."""
    p95 = percentile(sent.answer_ms(), 95)
    errors = sum(n for status, n in sent.statuses.items() if status >= 500)
    last = max((t for t in drained if t is not None), default=None)
    drained_s = last - sent.finished_wall if last is not None else float("nan")
    met = p95 < 500 and errors == 0 and drained_s <= 60 and hubspot == 0
    print(
        f"targets: ingest p95 {p95:.0f}/500 ms, 5xx {errors}/0, drained {drained_s:.1f}/60 s, "
        f"HubSpot requests {hubspot}/0: {'met' if met else 'not met'}"
    )
    print(
        f"renewal rate: {sent.offered_rate():.0f}/s, ingest p95: {p95:.0f} ms, 5xx: {errors}, "
        f"drained in {drained_s:.1f} s, HubSpot requests: {hubspot}"
    )


def main() -> int:
    args = parse_args()
    print(f"uptime before: {uptime()}")
    _, quota_note = quota(args)
    print(quota_note + ("; CRM sink only" if args.only_crm else "; every sink, as `paystream up`"))
    workdir = Path(tempfile.mkdtemp(prefix="paystream-renewal-"))
    total = int(args.rate * args.duration)
    names = [f"cus_rn{uuid.uuid4().hex[:8]}{i:07d}" for i in range(args.customers or total)]
    with broker() as (bootstrap, profile, broker_pid):
        stack = Stack(args, workdir, ACTIVE)
        try:
            stack.start(bootstrap, profile, broker_pid)
            now = int(time.time()) - MONTH_S
            warm_up(stack, lambda c: invoices(stack, c, now, "subscription_create"))
            create_customers(stack, args, names)
            renewing = [names[i % len(names)] for i in range(total)]
            requests = invoices(stack, renewing, int(time.time()), "subscription_cycle")
            handled_before = renewals_handled(stack)
            cpu_before = stack.cpu()
            sent = send(stack.ingest_port, requests, args.rate, args.connections)
            cpu_sent = stack.cpu()
            counted_at, lag_zero_at = drain(stack, handled_before + total, args.drain_timeout)
            time.sleep(10)  # any CRM request the burst caused has time to arrive
            stack.crm.poll()
            hubspot = stack.crm.requests_between(sent.t0_wall, time.time())
        finally:
            stack.stop()
    report(sent, total, len(names), (counted_at, lag_zero_at), hubspot, quota_note)
    print(cpu_line("CPU while sending", cpu_before, cpu_sent, sent.finished_wall - sent.t0_wall))
    print(f"uptime after: {uptime()}")
    print_summary(sent, (counted_at, lag_zero_at), hubspot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
