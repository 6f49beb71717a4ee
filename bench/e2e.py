"""End-to-end latency: signed Stripe webhooks at a fixed rate → ingest → worker → CRM sink →
HubSpot stand-in; webhook-to-CRM latency measured at the stand-in.

Usage (on a shared machine, serialise benchmarks and say the load):

    flock /tmp/paystream-e2e.lock .venv/bin/python bench/e2e.py --rate 500 --duration 60
    flock /tmp/paystream-e2e.lock .venv/bin/python bench/e2e.py --rate 900 --duration 60
    flock /tmp/paystream-e2e.lock .venv/bin/python bench/e2e.py --rate 100 --duration 5  # smoke

Every event is a real ``checkout.session.completed`` body (cloned from
``paystream/stripe_templates``) for a new customer, signed like Stripe and POSTed to
``paystream ingest`` on an open-loop schedule (event *i* leaves at ``t0 + i / rate``; a
non-2xx answer or a connection error is retried like Stripe, later). The expected effect is
one HubSpot contact per customer in ``onboarding_pending``. The stand-in (its own process)
records when each request arrived; a customer's latency is the arrival of the first upsert
that put it in the expected state minus the moment its webhook was first sent.

*lost*: customers whose contact never reached the expected state (after a grace period).
*duplicates*: upsert inputs beyond the first for a customer (the same effect applied again).

The stack is what ``paystream up`` runs (``bench/_stack.py``): the embedded broker, the
HubSpot and Zendesk stand-ins, ingest, worker, every sink and admin, separate processes on
this machine sharing its cores with the load generator, under the product's defaults (the
HubSpot plan's quota, professional: 190 requests per 10 s, in the stand-in and the sink
alike). It prints HubSpot requests per contact write and the CPU of every process. The last
line is exactly ``e2e rate: R/s, p95: P ms, lost: L, duplicates: D``, followed by
`` (HubSpot quota raised to N/10 s)`` only when ``--hubspot-rate-limit`` asked for one.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._kafka_requests import by_key, by_process, counted_since, read_counts  # noqa: E402
from bench._measure import percentile  # noqa: E402
from bench._stack import (  # noqa: E402
    Stack,
    Window,
    add_stack_arguments,
    cpu_line,
    prepared_requests,
    quota,
    requests_per_write,
    running,
    send,
    uptime,
    wait_for,
    warm_up,
)
from paystream.settings import CommonSettings  # noqa: E402

EXPECTED_STATE = "onboarding_pending"


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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of traffic")
    add_stack_arguments(parser)
    parser.add_argument("--grace", type=float, default=60, help="seconds to wait for the tail")
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs")
    parser.add_argument(
        "--stages", action="store_true", help="also break the latency down by stage (sink.crm)"
    )
    return parser.parse_args()


def print_stages(names: list[str], sent: Any, first: dict[str, float], stages: Any) -> None:
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


def print_sending(args: argparse.Namespace, sent: Any, total: int) -> None:
    lags = sent.lags_ms()
    print(
        f"sent {total} webhooks at {sent.offered_rate():.0f}/s (target {args.rate:.0f}/s); "
        f"behind schedule p99 {percentile(lags, 99):.1f} ms, max {max(lags):.1f} ms; "
        f"{sent.retries} retried; {sent.connections} connections ({sent.failed_connects} "
        f"failed); answers {dict(sorted(sent.statuses.items()))}"
    )


def print_latency(rate: float, names: list[str], latency: dict[str, float]) -> None:
    """Percentiles of the whole run and the p95 of each 10 s of the schedule."""
    latencies = list(latency.values())
    if not latencies:
        return
    print(
        "webhook-to-CRM latency (from the scheduled send): "
        + ", ".join(f"p{q}: {percentile(latencies, q):.0f} ms" for q in (50, 95, 99))
        + f", max: {max(latencies):.0f} ms"
    )
    slice_n = max(1, int(rate * 10))
    by_slice = [
        [latency[c] for c in names[k : k + slice_n] if c in latency]
        for k in range(0, len(names), slice_n)
    ]
    print(
        "p95 per 10 s of the schedule: "
        + ", ".join(f"{percentile(v, 95):.0f}" for v in by_slice if v)
        + " ms"
    )


def print_kafka_requests(
    during: dict[str, int], names: dict[int, str], sending_s: float, total: int
) -> None:
    """Requests while sending per API key, then per process and client (per s, per event)."""
    if not during:
        return

    def figures(counts: dict[str, int]) -> str:
        busiest = sorted(counts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {n / sending_s:.0f}/s {n / total:.3f}" for k, n in busiest if n)

    print(
        f"Kafka requests while sending: {sum(during.values()) / total:.2f} per event; "
        "per API key (per s, per event): " + figures(by_key(during))
    )
    for process, counts in sorted(by_process(during, names).items()):
        if sum(counts.values()):
            print(f"  {process} ({sum(counts.values()) / total:.3f} per event): {figures(counts)}")


def measure(
    stack: Stack, args: argparse.Namespace, total: int, counts_file: Path | None
) -> dict[str, Any]:
    """Warm up, send, wait for the CRM; what was seen, by name."""
    workdir = stack.workdir
    started = time.monotonic()
    warm_up(stack)
    print(f"stack ready in {time.monotonic() - started:.1f} s (logs: {workdir})")
    run_id = uuid.uuid4().hex[:8]
    names = [f"cus_e2e{run_id}{i:07d}" for i in range(total)]
    requests = prepared_requests(stack.ingest_port, stack.secret, names, int(time.time()))
    stack.crm.poll()
    crm_before = stack.crm.total.minus(Window())
    cpu_before = stack.cpu()
    requests_before = read_counts(counts_file) if counts_file else {}
    sent = send(stack.ingest_port, requests, args.rate, args.connections)
    requests_during = counted_since(counts_file, requests_before) if counts_file else {}
    cpu_sent = stack.cpu()
    sending_s = sent.finished_wall - sent.t0_wall
    customers = set(names)
    first = wait_for(stack, customers, args.grace)
    drained_wall = time.time()
    cpu_drained = stack.cpu()
    crm_window = stack.crm.total.minus(crm_before)
    counts = stack.crm.count
    limited_at = [at for at in stack.crm.limited_at if at >= sent.t0_wall]
    stages = stage_times(stack.settings, customers) if args.stages else {}
    return {
        "names": names,
        "sent": sent,
        "first": first,
        "counts": counts,
        "customers": customers,
        "limited_at": limited_at,
        "stages": stages,
        "crm_window": crm_window,
        "sending_s": sending_s,
        "requests_during": requests_during,
        "cpu_before": cpu_before,
        "cpu_sent": cpu_sent,
        "cpu_drained": cpu_drained,
        "drained_wall": drained_wall,
        "pids": {pid: name for name, pid in stack.pids().items()},
    }


def main() -> int:
    args = parse_args()
    limit, _ = quota(args)
    total = int(args.rate * args.duration)
    with running(args, "e2e", EXPECTED_STATE) as stack:
        got = measure(stack, args, total, stack.counts_file)
    workdir = stack.workdir
    names, sent, first, counts = got["names"], got["sent"], got["first"], got["counts"]
    customers, limited_at, stages = got["customers"], got["limited_at"], got["stages"]
    crm_window, sending_s, requests_during = (
        got["crm_window"],
        got["sending_s"],
        got["requests_during"],
    )
    cpu_before, cpu_sent, cpu_drained = got["cpu_before"], got["cpu_sent"], got["cpu_drained"]
    drained_wall = got["drained_wall"]
    # from the moment each webhook was due, so a late sender adds to the latency
    latency = {c: (first[c] - sent.scheduled(i)) * 1000 for i, c in enumerate(names) if c in first}
    lost = len(customers - first.keys())
    duplicates = sum(counts.get(c, 0) - 1 for c in customers if counts.get(c, 0) > 1)
    print_sending(args, sent, total)
    print_latency(args.rate, names, latency)
    print(requests_per_write(crm_window) + f" ({quota(args)[1]})")
    if limited_at:
        print(
            "answered 429 at (s after the first send): "
            + ", ".join(f"{at - sent.t0_wall:.1f}" for at in limited_at[:20])
        )
    print(cpu_line("CPU while sending", cpu_before, cpu_sent, sending_s))
    if "broker" in cpu_sent:
        broker_ms = (cpu_sent["broker"] - cpu_before.get("broker", 0.0)) * 1000 / total
        print(f"embedded broker CPU per event while sending: {broker_ms:.2f} ms")
    drain_s = drained_wall - sent.finished_wall
    if drain_s >= 1:
        print(cpu_line("CPU after sending until the last contact", cpu_sent, cpu_drained, drain_s))
    print_kafka_requests(requests_during, got["pids"], sending_s, total)
    if stages:
        print_stages(names, sent, first, stages)
    print(f"lost: {lost}, duplicate effects: {duplicates}")
    if args.keep:
        print(f"logs kept in {workdir}")
    print(f"uptime after: {uptime()}")
    p95 = percentile(list(latency.values()), 95) if latency else float("nan")
    raised = f" (HubSpot quota raised to {limit}/10 s)" if args.hubspot_rate_limit else ""
    print(
        f"e2e rate: {sent.offered_rate():.0f}/s, p95: {p95:.0f} ms, lost: {lost}, "
        f"duplicates: {duplicates}" + raised
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
