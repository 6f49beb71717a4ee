"""Fixtures of the reconcile tests: the Stripe API stand-in, a real worker, the command."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from devstack.stripe_api import DEFAULT_KEY, StripeApiStandin, events_from_fixtures
from ingest import envelope
from paystream.settings import CommonSettings
from schemas.codec import default_codec
from tests.integration.worker.conftest import WorkerProcess, start_worker  # noqa: F401
from tests.kafka_helpers import produce

PAYSTREAM = str(Path(sys.executable).parent / "paystream")
TOKEN = "reconcile-test-token"


@pytest.fixture
def stripe_api() -> Iterator[StripeApiStandin]:
    with StripeApiStandin() as standin:
        yield standin


def listed_events(fixtures: Path, count: int, prefix: str = "evt_rc") -> list[dict[str, Any]]:
    """``count`` real event bodies created over the last hours, newest first."""
    return events_from_fixtures(
        fixtures, count, newest=int(time.time()) - 60, spacing_s=30, prefix=prefix
    )


Listed = Callable[[int], list[dict[str, Any]]]


@pytest.fixture
def listed(stripe_api: StripeApiStandin, stripe_fixtures_dir: Path) -> Listed:
    """``listed(count)``: the stand-in's Events API lists ``count`` events (returned)."""

    def add(count: int) -> list[dict[str, Any]]:
        events = listed_events(stripe_fixtures_dir, count)
        stripe_api.add_events(events)
        return events

    return add


def deliver_as_webhooks(settings: CommonSettings, bodies: list[dict[str, Any]]) -> None:
    """Publish events to stripe.events exactly as ingest does for a verified webhook."""
    codec = default_codec()
    items = []
    for body in bodies:
        out = envelope.parse_stripe_event(
            orjson.dumps(body).decode(),
            live=False,
            received_at_ms=int(time.time() * 1000),
            correlation_id=f"webhook-{body['id']}",
        )
        items.append((out.key, codec.encode(out.schema, out.record)))
    produce(settings, settings.topics.stripe_events, items)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def line(self, prefix: str) -> str:
        found = [line for line in self.out.splitlines() if line.startswith(prefix)]
        assert len(found) == 1, (prefix, self.out, self.err[-2000:])
        return found[0]


RunReconcile = Callable[..., Run]


@pytest.fixture
def run_reconcile(
    pipeline_settings: CommonSettings,
    broker_env: Callable[..., dict[str, str]],
    stripe_api: StripeApiStandin,
) -> RunReconcile:
    """Run ``paystream reconcile ARGS`` against the stand-in and the test's topics."""

    def run(*args: str, timeout: float = 120, stderr: int | None = None, **extra: str) -> Run:
        """``stderr``: a file descriptor to give the command instead of a pipe."""
        settings = {"STRIPE_API_KEY": DEFAULT_KEY, "STRIPE_API_BASE": stripe_api.url}
        env = broker_env(pipeline_settings.topic_prefix, **{**settings, **extra})
        done = subprocess.run(
            [PAYSTREAM, "reconcile", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stderr is None else stderr,
            text=True,
            timeout=timeout,
        )
        return Run(done.returncode, done.stdout, done.stderr or "")

    return run


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def wait_for_metric(
    worker: WorkerProcess, name: str, value: float, timeout: float = 90, **labels: str
) -> float:
    """Wait until the worker's ``name`` (summed over ``labels``) reaches ``value``."""
    deadline = time.monotonic() + timeout
    seen = -1.0
    while time.monotonic() < deadline:
        seen = metric_sum(worker.metrics(), name, **labels)
        if seen >= value:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{name}{labels} = {seen}, expected {value}")
