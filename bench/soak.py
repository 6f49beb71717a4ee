"""Soak: new customers at a steady rate for many minutes; latency and memory as the run ages.

Usage (on a shared machine, serialise benchmarks and say the load):

    flock /tmp/paystream-e2e.lock .venv/bin/python bench/soak.py --rate 200 --minutes 10
    flock /tmp/paystream-e2e.lock .venv/bin/python bench/soak.py --rate 50 --minutes 1  # smoke

On the stack ``paystream up`` runs (``bench/_stack.py``: every sink, the HubSpot plan's quota)
it sends signed ``checkout.session.completed`` for new customers, as ``bench/e2e.py`` does, one
minute at a time: each minute's requests are built and signed just before it (a signature
must stay within Stripe's 300 s tolerance), so a minute starts a second or so after the last
one ended. Latency is each customer's first ``onboarding_pending`` write at the HubSpot
stand-in minus the moment its webhook was due.

Every minute it prints the RSS of every process (broker, ingest, worker, sinks, admin,
stand-ins, load generator) and the CPU each used over the minute (cores); at the end one row
per minute of the schedule: the minute's customers' latency p50/p95/p99, how many arrived,
HubSpot requests per 100 contact writes in that minute, the broker's cores (on the embedded
broker a fetch lists every batch the partition stored, so they grow with the log) and the
RSS at the minute's end. ``--count-requests`` adds the minute's Kafka requests per
event (``bench/_kafka_requests.py``).
The last line is ``soak rate: R/s, minutes: M, p95 first minute: A ms, last minute: B ms,
lost: L, duplicates: D``.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._kafka_requests import by_key, read_counts  # noqa: E402
from bench._measure import percentile  # noqa: E402
from bench._stack import (  # noqa: E402
    Stack,
    Window,
    add_stack_arguments,
    prepared_requests,
    running,
    send,
    uptime,
    wait_for,
    warm_up,
)

EXPECTED_STATE = "onboarding_pending"
TABLE_HEADER = (
    "| minute | rate | p50 / p95 / p99 ms | lost | HubSpot requests per 100 writes "
    "| answered 429 | broker cores | RSS MiB |"
)


@dataclass
class Minute:
    """One minute of the schedule: its customers, when each was due, what the stack held."""

    names: list[str]
    due: list[float] = field(default_factory=list)
    rss: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    crm: Window = field(default_factory=Window)
    offered: float = 0.0
    #: Kafka requests of the minute per API key (``--count-requests``)
    requests: dict[str, int] = field(default_factory=dict)


def latency_figures(minute: Minute, first: dict[str, float]) -> tuple[list[float], int]:
    """The minute's latencies (ms) of customers that arrived, and how many did not."""
    pairs = zip(minute.names, minute.due, strict=True)
    values = [(first[c] - due) * 1000 for c, due in pairs if c in first]
    return values, len(minute.names) - len(values)


def summary_row(index: int, minute: Minute, first: dict[str, float]) -> str:
    values, missing = latency_figures(minute, first)
    figures = (
        " / ".join(f"{percentile(values, q):.0f}" for q in (50, 95, 99)) if values else "- / - / -"
    )
    per_100 = 100 * minute.crm.requests / minute.crm.writes if minute.crm.writes else 0.0
    rss = ", ".join(f"{name} {mib:.0f}" for name, mib in minute.rss.items())
    broker = minute.cpu.get("broker", float("nan"))
    return (
        f"| {index + 1} | {minute.offered:.0f}/s | {figures} | {missing} | {per_100:.1f} "
        f"| {minute.crm.limited} | {broker:.2f} | {rss} |"
    )


def run_minute(stack: Stack, args: argparse.Namespace, index: int, run_id: str) -> Minute:
    n = int(args.rate * 60 * args.minute_fraction)
    minute = Minute([f"cus_soak{run_id}{index:03d}{i:06d}" for i in range(n)])
    requests = prepared_requests(stack.ingest_port, stack.secret, minute.names, int(time.time()))
    stack.crm.poll()
    crm_before, cpu_before = stack.crm.total.minus(Window()), stack.cpu()
    counts_before = read_counts(stack.counts_file) if stack.counts_file else {}
    sent = send(stack.ingest_port, requests, args.rate, args.connections)
    span = sent.finished_wall - sent.t0_wall
    minute.due = [sent.scheduled(i) for i in range(n)]
    minute.offered = sent.offered_rate()
    minute.rss = stack.rss()
    minute.cpu = {k: (v - cpu_before.get(k, 0.0)) / span for k, v in stack.cpu().items()}
    if stack.counts_file:
        now = by_key(read_counts(stack.counts_file))
        before = by_key(counts_before)
        minute.requests = {k: v - before.get(k, 0) for k, v in now.items() if v > before.get(k, 0)}
    stack.crm.poll()
    minute.crm = stack.crm.total.minus(crm_before)
    print_minute(index, minute, stack.crm.first)
    return minute


def print_minute(index: int, minute: Minute, first: dict[str, float]) -> None:
    values, missing = latency_figures(minute, first)
    so_far = f"p95 so far {percentile(values, 95):.0f} ms" if values else "none arrived yet"
    n = len(minute.names)
    requests = ""
    if minute.requests:
        busiest = sorted(minute.requests.items(), key=lambda kv: -kv[1])[:4]
        requests = "; Kafka requests per event: " + ", ".join(
            f"{key} {count / n:.2f}" for key, count in busiest
        )
    print(
        f"minute {index + 1}: {n} sent at {minute.offered:.0f}/s, {so_far} ({missing} pending); "
        "RSS MiB: "
        + ", ".join(f"{k} {v:.0f}" for k, v in minute.rss.items())
        + "; cores: "
        + ", ".join(f"{k} {v:.2f}" for k, v in minute.cpu.items())
        + requests,
        flush=True,
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="new customers per second")
    parser.add_argument("--minutes", type=int, default=10, help="minutes of traffic")
    parser.add_argument(
        "--minute-fraction",
        type=float,
        default=1.0,
        help="send for this fraction of each minute (smoke runs: 0.1)",
    )
    parser.add_argument("--grace", type=float, default=120, help="seconds to wait for the tail")
    add_stack_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    run_id = uuid.uuid4().hex[:8]
    minutes: list[Minute] = []
    with running(args, "soak", EXPECTED_STATE) as stack:
        warm_up(stack)
        print(f"stack ready (logs: {stack.workdir}); RSS MiB at the start: {stack.rss()}")
        for index in range(args.minutes):
            minutes.append(run_minute(stack, args, index, run_id))
        everyone = {c for m in minutes for c in m.names}
        first = wait_for(stack, everyone, args.grace)
        counts = stack.crm.count
    print(TABLE_HEADER)
    print("|" + " --- |" * (TABLE_HEADER.count("|") - 1))
    for index, minute in enumerate(minutes):
        print(summary_row(index, minute, first))
    lost = len(everyone - first.keys())
    duplicates = sum(counts.get(c, 0) - 1 for c in everyone if counts.get(c, 0) > 1)
    print(f"uptime after: {uptime()}")
    p95 = [
        percentile(v, 95) if v else float("nan")
        for v, _ in (latency_figures(m, first) for m in minutes)
    ]
    print(
        f"soak rate: {args.rate:.0f}/s, minutes: {args.minutes}, "
        f"p95 first minute: {p95[0]:.0f} ms, last minute: {p95[-1]:.0f} ms, "
        f"lost: {lost}, duplicates: {duplicates}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
