"""Doctor's pipeline checks on the real embedded broker and a real (chdb) metrics store, and
the last payment events as a real worker answers for them.

Broken: a topic missing, the store down, environment rules some processes would refuse,
an event Stripe lists that the worker never saw. Healthy: every check of the command passes
(exit 0) once the worker has processed everything and the store answers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paystream.commands.doctor import shell
from paystream.runtime.store import MetricsStoreSettings, open_store
from paystream.runtime.store_endpoint import QueryServer, write_endpoint_file
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings
from paystream.vocabulary import APPLIED, DUPLICATE, STALE
from tests.integration.doctor.conftest import (
    API_TOKEN,
    Group,
    Report,
    RunDoctor,
    Standins,
    detail_lines,
)
from tests.integration.reconcile.conftest import deliver_as_webhooks
from tests.integration.worker.conftest import StartWorker, start_worker  # noqa: F401
from tests.unit.processors.stripe_events import stripe_body

pytestmark = pytest.mark.broker


@pytest.fixture
def pipeline(group: Callable[..., Group]) -> Group:
    return group(shell.pipeline_findings)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A real embedded store served as the metrics sink serves it: its loopback query
    endpoint published in the data directory doctor reads (returned)."""
    data_dir = tmp_path / "doctor"
    settings = MetricsStoreSettings(paystream_env="development", paystream_data_dir=str(data_dir))
    metrics_store = open_store(settings)
    server = QueryServer(metrics_store)
    server.start()
    write_endpoint_file(settings.query_endpoint_file, server.url, server.token)
    try:
        yield data_dir
    finally:
        server.stop()
        metrics_store.close()


def test_a_missing_topic_and_a_store_that_is_down(
    pipeline: Group, kafka_bootstrap: str, pipeline_settings: CommonSettings
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    specs = CommonSettings(
        paystream_env="development",
        paystream_topic_prefix=prefix,
        paystream_topic_partitions=pipeline_settings.paystream_topic_partitions,
    ).topics.specs()
    ensure_topics(kafka_bootstrap, specs[1:])
    found = pipeline(PAYSTREAM_TOPIC_PREFIX=prefix)
    topics = found["pipeline.topics"]
    assert not topics.ok and topics.details == (f"{specs[0].name}: missing",)
    assert "`paystream topics`" in topics.fix
    store = found["pipeline.metrics_store"]
    assert not store.ok and "no running metrics sink" in store.message
    assert not found["pipeline.lag"].ok  # no worker has committed on these topics
    # every process starts with these settings
    assert all(
        found[f"pipeline.environment.{p}"].ok for p in ("ingest", "worker", "sinks", "admin")
    )


def test_the_store_answers(pipeline: Group, store: Path) -> None:
    found = pipeline()
    assert found["pipeline.metrics_store"].ok, found["pipeline.metrics_store"]
    assert found["pipeline.topics"].ok, found["pipeline.topics"]


def test_environment_rules_as_each_process_judges_them(run_doctor: RunDoctor) -> None:
    """Preview with writes on: every process would refuse (the preview rule is common to
    all); a short API token only ingest and the worker (the two that read it)."""
    preview = {"PAYSTREAM_ENV": "preview", "PAYSTREAM_TOPIC_PREFIX_WITHOUT_MODE": "yes"}
    report = run_doctor(**preview, PAYSTREAM_SINK_WRITES="enabled")
    assert report.code == 1
    assert not report["doctor.settings"].ok  # doctor itself reads the same rules
    for process in ("ingest", "worker", "sinks", "admin"):
        finding = report[f"pipeline.environment.{process}"]
        assert not finding.ok and "PAYSTREAM_SINK_WRITES" in finding.message, finding
    report = run_doctor(**preview, PAYSTREAM_API_TOKEN="short")
    assert {f.check for f in report.findings if not f.ok} >= {
        "pipeline.environment.ingest",
        "pipeline.environment.worker",
    }
    assert report["pipeline.environment.sinks"].ok and report["pipeline.environment.admin"].ok
    assert "short" not in json.dumps([f.message for f in report.findings])


# -------------------------------------------------------------- the last payment events


def storyline(now: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Events Stripe lists, the order they were delivered in, and what the worker did (all
    older than the two minutes doctor gives an event to arrive)."""
    now -= 600
    sub = stripe_body("customer.subscription.created", "evt_dr_sub", now - 500, "cus_dr_a",
                      status="active")  # fmt: skip
    newer = stripe_body("customer.subscription.updated", "evt_dr_late", now - 300, "cus_dr_b",
                        {"status": "active"}, status="past_due")  # fmt: skip
    older = stripe_body("customer.subscription.updated", "evt_dr_old", now - 400, "cus_dr_b",
                        {"status": "incomplete"}, status="active")  # fmt: skip
    paid = stripe_body("invoice.paid", "evt_dr_paid", now - 200, "cus_dr_c")
    lost = stripe_body("invoice.payment_failed", "evt_dr_lost", now - 100, "cus_dr_d")
    listed = [lost, paid, newer, older, sub]
    delivered = [sub, newer, older, paid, sub]  # the subscription's twice, the older late
    outcomes = {
        "evt_dr_sub": DUPLICATE,
        "evt_dr_late": APPLIED,
        "evt_dr_old": STALE,
        "evt_dr_paid": APPLIED,
        "evt_dr_lost": "never seen",
    }
    return listed, delivered, outcomes


def wait_for(
    run: Callable[[], Report], done: Callable[[Report], bool], timeout: float = 90
) -> Report:
    deadline = time.monotonic() + timeout
    while True:
        report = run()
        if done(report) or time.monotonic() > deadline:
            return report
        time.sleep(1)


def test_the_last_events_from_the_worker_then_a_healthy_run(
    run_doctor: RunDoctor,
    standins: Standins,
    start_worker: StartWorker,  # noqa: F811
    pipeline_settings: CommonSettings,
    store: Path,
) -> None:
    listed, delivered, outcomes = storyline(int(time.time()))
    standins.stripe.add_events(listed)
    worker = start_worker("w1", PAYSTREAM_API_TOKEN=API_TOKEN)
    deliver_as_webhooks(pipeline_settings, delivered)
    worker.wait_ready()
    asked = {
        "PAYSTREAM_WORKER_URL": f"http://127.0.0.1:{worker.port}",
        "PAYSTREAM_API_TOKEN": API_TOKEN,
    }

    def settled(report: Report) -> bool:
        seen = detail_lines(report["stripe.recent_events"])
        return seen == outcomes and report["pipeline.lag"].ok

    report = wait_for(lambda: run_doctor(**asked), settled)
    recent = report["stripe.recent_events"]
    assert detail_lines(recent) == outcomes, recent
    assert not recent.ok and "reconcile --since" in recent.fix
    assert report.code == 1 and report.problems == {"stripe.recent_events"}, report.out

    # the lost event arrives (as `reconcile` would publish it): every check passes
    deliver_as_webhooks(pipeline_settings, [listed[0]])
    report = wait_for(lambda: run_doctor(**asked), lambda r: r.ok)
    assert report.code == 0 and report.ok, report.out
    assert detail_lines(report["stripe.recent_events"])["evt_dr_lost"] == APPLIED
    # without the worker's address the outcomes are unknown, and that is a problem
    unasked = run_doctor()
    assert set(detail_lines(unasked["stripe.recent_events"]).values()) == {"unknown"}
    assert unasked.code == 1 and "PAYSTREAM_WORKER_URL" in unasked["stripe.recent_events"].fix
