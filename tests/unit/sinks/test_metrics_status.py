"""Pure core of `paystream status`: parsing ingest's counters, lag arithmetic, the screen."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from paystream.commands.status import Status, WebhookFigures, duration, render, webhook_figures
from paystream.metrics import PaystreamMetrics
from paystream.runtime.lag import EMBEDDED_LAG_NOTE, PartitionLag, group_lag


def exposition(counts: dict[tuple[str, str], int]) -> str:
    metrics = PaystreamMetrics()
    for (status, reason), n in counts.items():
        metrics.webhook_requests.labels(status=status, reason=reason).inc(n)
    metrics.events.labels(type="invoice.paid", outcome="applied", api_version="2020-03-02").inc(
        5
    )  # not a webhook
    return generate_latest(metrics.registry).decode()


@pytest.mark.parametrize(
    ("counts", "rate"),
    [
        ({("200", "received"): 99, ("401", "invalid_signature"): 1}, 0.99),
        ({("200", "received"): 10, ("503", "unavailable"): 10, ("400", "malformed_event"): 5}, 0.4),
        ({("401", "invalid_signature"): 4}, 0.0),
        ({}, None),
    ],
)
def test_webhook_success_rate_from_ingest_counters(
    counts: dict[tuple[str, str], int], rate: float | None
) -> None:
    figures = webhook_figures(exposition(counts))
    assert figures.total == sum(counts.values())
    if rate is None:
        assert figures.success_rate is None
    else:
        assert figures.success_rate == pytest.approx(rate)


def test_webhook_counts_are_summed_per_status_across_reasons() -> None:
    figures = webhook_figures(
        exposition({("401", "invalid_signature"): 2, ("401", "stale"): 3, ("200", "x"): 1})
    )
    assert figures.by_status == {"200": 1.0, "401": 5.0}


@pytest.mark.parametrize(
    ("committed", "end", "lag"),
    [(10, 15, 5), (15, 15, 0), (-1001, 7, 7), (20, 3, 0)],  # last: wrong end offset, clamped
)
def test_partition_lag(committed: int, end: int, lag: int) -> None:
    assert PartitionLag("t", 0, committed, end).lag == lag


def test_group_lag_sums_partitions_per_topic() -> None:
    parts = [PartitionLag("a", 0, 1, 4), PartitionLag("a", 1, 0, 2), PartitionLag("b", 0, 5, 5)]
    assert group_lag(parts) == {"a": 5, "b": 0}


def test_screen_shows_every_section() -> None:
    status = Status(
        15,
        WebhookFigures(200, 198, {"200": 198, "503": 2}),
        120,
        [{"sink": "crm", "syncs": 12, "p50_s": 0.42, "p95_s": 1.9}],
        {"crm": 2, "helpdesk": 1},
        {"p.worker": {"p.stripe.events": 4}},
        EMBEDDED_LAG_NOTE,
    )
    screen = render(status, "p.")
    assert "success 99.00% of 200" in screen
    assert "crm       p50 420 ms  p95 1.9 s  (12 syncs, last 15 min)" in screen
    assert "exceptions      3 open (crm 2, helpdesk 1)" in screen
    assert "worker: 4" in screen and "stripe.events 4" in screen
    assert "approximate" in screen


def test_screen_lists_open_exceptions_by_sink_and_reason() -> None:
    status = Status(
        15,
        exceptions={"crm": 2, "helpdesk": 1},
        exceptions_by_reason=[
            {"sink": "crm", "reason_code": "bad_request", "open": 2},
            {"sink": "helpdesk", "reason_code": "unavailable", "open": 1},
        ],
    )
    lines = render(status, "p.").splitlines()
    at = lines.index("exceptions      3 open (crm 2, helpdesk 1)")
    assert lines[at + 1].split() == ["crm", "bad_request", "2"]
    assert lines[at + 2].split() == ["helpdesk", "unavailable", "1"]


def test_screen_says_what_could_not_be_read() -> None:
    status = Status(15, problems=["metrics store: no running metrics sink"])
    screen = render(status, "p.")
    assert "webhooks        unavailable" in screen
    assert "sync latency    unavailable" in screen
    assert "exceptions      unavailable" in screen
    assert "consumer lag    unavailable" in screen
    assert screen.endswith("! metrics store: no running metrics sink")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.42, "420 ms"),
        (1.94, "1.9 s"),
        (119.9, "119.9 s"),
        (245, "4m 05s"),
        (3600.7, "1h 00m"),
        (7830, "2h 10m"),
    ],
)
def test_latencies_read_like_durations(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
