"""``paystream reconcile`` end to end: the Stripe API stand-in, the real broker, a real worker.

A window of 250 real-shaped events (three pages of 100), all but one delivered as webhooks;
reconcile rides out Stripe's 429s, finds the one missing event, publishes it once, and the
worker counts it as the delivery gap. A second run publishes everything again and the
worker's dedup makes it harmless. Failures end with a non-zero exit and an honest summary.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import struct
import termios
import threading

import pytest

from devstack.stripe_api import StripeApiStandin
from ingest import envelope
from paystream.runtime.broker import free_port
from paystream.settings import CommonSettings
from tests.integration.reconcile.conftest import (
    TOKEN,
    Listed,
    RunReconcile,
    deliver_as_webhooks,
    metric_sum,
    wait_for_metric,
)
from tests.integration.worker.conftest import StartWorker

pytestmark = pytest.mark.broker

EVENTS = 250
RECOVERED = "paystream_reconcile_recovered_events_total"
PROCESSED = "paystream_events_total"


def test_a_missed_webhook_is_recovered_once_and_replays_are_harmless(
    pipeline_settings: CommonSettings,
    stripe_api: StripeApiStandin,
    start_worker: StartWorker,
    run_reconcile: RunReconcile,
    listed: Listed,
) -> None:
    events = listed(EVENTS)
    missed = events[137]  # on the second page
    worker = start_worker(PAYSTREAM_API_TOKEN=TOKEN)
    worker.wait_ready()
    deliver_as_webhooks(pipeline_settings, [e for e in events if e is not missed])
    wait_for_metric(worker, PROCESSED, EVENTS - 1)

    # the worker's dedup lookup, as reconcile uses it (by the event's Kafka key)
    def processed(event: dict[str, object]) -> object:
        key = envelope.stripe_customer_id(event["data"]["object"]) or event["id"]  # type: ignore[index]
        status, body = worker.get(f"/events/{event['id']}?key={key}", TOKEN)
        assert status == 200, body
        return body["processed"]

    assert processed(missed) is False
    assert processed(events[0]) is True
    assert worker.get(f"/events/{missed['id']}?key=x")[0] == 401
    assert worker.get(f"/events/{missed['id']}", TOKEN)[0] == 400

    stripe_api.fail_next(429, count=2, path="/v1/events")  # no Retry-After, like Stripe
    first = run_reconcile(
        "--since",
        "1d",
        PAYSTREAM_WORKER_URL=f"http://127.0.0.1:{worker.port}",
        PAYSTREAM_API_TOKEN=TOKEN,
    )
    assert first.code == 0, first.out + first.err[-3000:]
    assert first.line("listed:") == f"listed: {EVENTS}"
    assert first.line("already processed:") == f"already processed: {EVENTS - 1}"
    assert first.line("never arrived") == "never arrived as a webhook (delivery gap): 1"
    assert first.line("published:") == "published: 1"
    assert first.line("failed:") == "failed: 0"
    assert first.line("result:") == "result: ok"
    assert first.err.count("stripe_rate_limited") == 2
    pages = stripe_api.requests_to("/v1/events")
    assert [r.status for r in pages] == [429, 429, 200, 200, 200]
    assert "starting_after=evt_rc000199" in pages[-1].path

    wait_for_metric(worker, RECOVERED, 1, type=missed["type"])
    wait_for_metric(worker, PROCESSED, EVENTS)
    metrics = worker.metrics()
    assert metric_sum(metrics, RECOVERED) == 1
    assert metric_sum(metrics, PROCESSED, outcome="duplicate") == 0

    # a replay without asking the worker: everything again, every one a duplicate
    second = run_reconcile("--since", "1d")
    assert second.code == 0, second.out + second.err[-3000:]
    assert second.line("listed:") == f"listed: {EVENTS}"
    assert second.line("published:") == f"published: {EVENTS}"
    assert second.line("already processed:").endswith("unknown (worker not asked)")
    wait_for_metric(worker, PROCESSED, EVENTS, outcome="duplicate")
    metrics = worker.metrics()
    assert metric_sum(metrics, RECOVERED) == 1
    assert metric_sum(metrics, PROCESSED) == 2 * EVENTS


def test_rate_limit_not_ridden_out_fails_with_an_incomplete_listing(
    stripe_api: StripeApiStandin, listed: Listed, run_reconcile: RunReconcile
) -> None:
    listed(150)
    # the first page passes, then Stripe keeps answering 429
    stripe_api.fail_next(None, count=1, path="/v1/events")
    stripe_api.fail_next(429, count=100, path="/v1/events")
    run = run_reconcile("--since", "1d", PAYSTREAM_RECONCILE_RATE_LIMIT_RETRIES="2")
    assert run.code == 1
    assert run.line("listed:") == "listed: 100 (listing incomplete)"
    assert run.line("published:") == "published: 100"
    assert run.line("error:") == "error: Stripe answered 429 (rate limit) 3 times in a row"
    assert run.line("result:") == "result: FAILED"
    assert [r.status for r in stripe_api.requests_to("/v1/events")] == [200, 429, 429, 429]


def test_list_requests_stay_under_the_configured_rate(
    stripe_api: StripeApiStandin, listed: Listed, run_reconcile: RunReconcile
) -> None:
    listed(350)
    run = run_reconcile("--since", "1d", PAYSTREAM_RECONCILE_REQUESTS_PER_S="0.5")
    assert run.code == 0, run.out + run.err[-3000:]
    assert run.line("published:") == "published: 350"
    times = [r.at for r in stripe_api.requests_to("/v1/events")]
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 2 s apart as sent; as received by the stand-in each gap also carries two processes'
    # scheduling delays (1.897 s seen under load 10). 1.5 s still tells 0.5 requests/s from
    # 1/s or from no pacing (a page of 100 then takes well under 1 s).
    assert min(gaps) >= 1.5, gaps
    assert times[-1] - times[0] >= 3 * 2.0 - 0.2, gaps  # three gaps of 2 s on average


def test_a_progress_bar_on_a_terminal_only(listed: Listed, run_reconcile: RunReconcile) -> None:
    listed(120)
    plain = run_reconcile("--since", "1d")
    assert plain.code == 0 and "events/s" not in plain.err
    assert "\x1b" not in plain.out + plain.err  # not a terminal: no escape code
    primary, secondary = os.openpty()  # stderr is a terminal for this run, 100 columns wide
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    shown = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal's other end is closed: all read
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        on_tty = run_reconcile("--since", "1d", stderr=secondary)
    finally:
        os.close(secondary)
        reader.join(10)
        os.close(primary)
    assert on_tty.code == 0
    assert re.search(rb"reconcile: 120 events \[", shown), shown[-500:]
    assert on_tty.line("listed:") == "listed: 120"  # the summary still goes to stdout


def test_a_worker_that_does_not_answer_means_publish_anyway_and_say_so(
    listed: Listed, run_reconcile: RunReconcile
) -> None:
    listed(5)
    run = run_reconcile(
        "--since",
        "1d",
        PAYSTREAM_WORKER_URL=f"http://127.0.0.1:{free_port()}",  # nobody listens
        PAYSTREAM_API_TOKEN=TOKEN,
    )
    assert run.code == 0, run.out + run.err[-3000:]
    assert run.line("published:") == "published: 5"
    assert run.line("already processed:") == (
        "already processed: at least 0 (the worker did not answer for 5)"
    )


def test_events_the_broker_never_acknowledged_are_failures(
    listed: Listed, run_reconcile: RunReconcile
) -> None:
    listed(15)
    run = run_reconcile(
        "--since",
        "1d",
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",  # nobody listens
        PAYSTREAM_RECONCILE_PUBLISH_TIMEOUT_S="1",
    )
    assert run.code == 1
    assert run.line("listed:") == "listed: 15"
    assert run.line("published:") == "published: 0"
    assert run.line("failed:") == "failed: 15"
    assert run.line("result:") == "result: FAILED"
    # the first ten are logged one by one, the rest only counted
    assert run.err.count('"publish_failed"') == 10, run.err[-3000:]
    assert run.err.count('"further_failures_not_logged"') == 1


def test_a_revoked_key_fails_without_a_secret_in_the_output(
    stripe_api: StripeApiStandin, run_reconcile: RunReconcile
) -> None:
    stripe_api.api_key = "sk_test_another_one"
    run = run_reconcile("--since", "3h")
    assert run.code == 1
    assert run.line("error:") == "error: Stripe refused STRIPE_API_KEY (401)"
    assert "sk_test_standin" not in run.out + run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--since", "31d"], {}, "Stripe keeps events for 30 days only"),
        (["--from", "2020-01-01"], {}, "Stripe keeps events for 30 days only"),
        (["--since", "soon"], {}, "is not a duration"),
        (["--since", "1d"], {"STRIPE_API_KEY": "sk_live_x"}, "invalid setting STRIPE_API_KEY"),
        (
            ["--since", "1d"],
            {
                "STRIPE_MODE": "live",
                "PAYSTREAM_ENV": "production",
                "PAYSTREAM_CUSTOMER_HASH_KEY": "k" * 40,
                "STRIPE_API_KEY": "rk_test_x",
            },
            "invalid setting STRIPE_API_KEY",
        ),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    run_reconcile: RunReconcile,
    stripe_api: StripeApiStandin,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    run = run_reconcile(*args, **env)
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paystream reconcile: "), run.err
    assert message in lines[0]
    assert "sk_live_x" not in run.err and "rk_test_x" not in run.err
    assert stripe_api.requests == []  # refused before any call
