"""The benchmarks' pure figures: percentiles, RSS from /proc, counters from /metrics text,
requests per contact write, the quota a run names, a soak minute's latencies."""

from __future__ import annotations

import argparse
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench._kafka_requests import by_key, by_process, request_name
from bench._measure import percentile, rss_from_status
from bench._stack import Window, counter_sum, quota, requests_per_write
from bench.soak import TABLE_HEADER, Minute, latency_figures, summary_row


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 95, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([float(i) for i in range(1, 101)], 95, 95.0),
        ([3.0, 1.0, 2.0], 0, 1.0),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 100))
@settings(max_examples=50)
def test_percentile_is_one_of_the_values_between_min_and_max(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert p in values and min(values) <= p <= max(values)


@pytest.mark.parametrize(
    ("status", "mib"),
    [
        ("Name:\tpython\nVmPeak:\t  99999 kB\nVmRSS:\t   20480 kB\nThreads:\t4\n", 20.0),
        ("Name:\ttansu\nVmRSS:\t  1536 kB\n", 1.5),
        ("Name:\tzombie\nState:\tZ (zombie)\n", 0.0),
    ],
)
def test_rss_is_read_from_vmrss(status: str, mib: float) -> None:
    assert rss_from_status(status) == mib


METRICS = """# HELP paystream_events_total Events processed by the worker
# TYPE paystream_events_total counter
paystream_events_total{api_version="2024-06-20",outcome="applied",type="invoice.paid"} 120.0
paystream_events_total{api_version="2024-06-20",outcome="duplicate",type="invoice.paid"} 3.0
paystream_events_total{api_version="",outcome="applied",type="checkout.session.completed"} 7.0
paystream_events_created{api_version="",outcome="applied",type="invoice.paid"} 1.7e9
"""


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"type": "invoice.paid"}, 123.0),
        ({"type": "invoice.paid", "outcome": "applied"}, 120.0),
        ({}, 130.0),
        ({"type": "charge.refunded"}, 0.0),
    ],
)
def test_counter_sum_adds_the_matching_series(labels: dict[str, str], expected: float) -> None:
    assert counter_sum(METRICS, "paystream_events_total", **labels) == expected


def test_counter_sum_of_no_text_is_zero() -> None:
    assert counter_sum("", "paystream_events_total", type="invoice.paid") == 0.0


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (Window(3, 0, 100), "3 (0 answered 429) for 100 contact writes: 0.030 per contact write"),
        (Window(0, 0, 0), "0 (0 answered 429) for 0 contact writes: n/a per contact write"),
        (Window(12, 2, 4), "12 (2 answered 429) for 4 contact writes: 3.000 per contact write"),
    ],
)
def test_requests_per_write(window: Window, expected: str) -> None:
    assert requests_per_write(window) == "HubSpot requests: " + expected


def test_window_minus_is_what_happened_between_two_readings() -> None:
    assert Window(10, 2, 300).minus(Window(4, 1, 100)) == Window(6, 1, 200)


@pytest.mark.parametrize(
    ("plan", "raised", "limit", "says"),
    [
        ("professional", None, 190, "professional plan, the product's default"),
        ("starter", None, 100, "starter plan"),
        ("professional", 1000, 1000, "raised by --hubspot-rate-limit, not a default"),
    ],
)
def test_quota_names_where_the_limit_comes_from(
    plan: str, raised: int | None, limit: int, says: str
) -> None:
    found, note = quota(argparse.Namespace(hubspot_plan=plan, hubspot_rate_limit=raised))
    assert found == limit
    assert f"{limit}/10 s" in note and says in note


def test_a_soak_minute_counts_latency_from_the_due_moment_and_the_missing() -> None:
    minute = Minute(["a", "b", "c"], due=[100.0, 100.5, 101.0])
    values, missing = latency_figures(minute, {"a": 100.25, "c": 102.0, "other": 1.0})
    assert values == [250.0, 1000.0]
    assert missing == 1


def test_a_soak_row_has_the_columns_of_the_header() -> None:
    minute = Minute(
        ["a"],
        due=[1.0],
        rss={"broker": 90.0},
        cpu={"broker": 0.5},
        crm=Window(3, 1, 100),
        offered=200,
    )
    row = summary_row(0, minute, {"a": 1.5})
    assert row == "| 1 | 200/s | 500 / 500 / 500 | 0 | 3.0 | 1 | 0.50 | broker 90 |"
    assert row.count("|") == TABLE_HEADER.count("|")


def _request(key: int, client: bytes | None) -> bytes:
    """A request frame's body: api key, version, correlation id, client id (header v1)."""
    head = struct.pack(">hhi", key, 9, 7)
    if client is None:
        return head + struct.pack(">h", -1) + b"rest"
    return head + struct.pack(">h", len(client)) + client + b"rest"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_request(0, b"paystream-ingest"), ("paystream-ingest", "Produce")),
        (_request(1, b"p.sinks.crm"), ("p.sinks.crm", "Fetch")),
        (_request(1, b"two words"), ("two_words", "Fetch")),
        (_request(12, None), ("-", "Heartbeat")),
        (_request(999, b""), ("-", "999")),
        (struct.pack(">h", 3), ("-", "Metadata")),
    ],
)
def test_a_request_is_named_by_its_client_id_and_api_key(
    body: bytes, expected: tuple[str, str]
) -> None:
    assert request_name(body) == expected


def test_counts_fold_per_api_key_and_per_process() -> None:
    counts = {
        "11 paystream-ingest Produce": 5,
        "12 faust Fetch": 3,
        "12 paystream-worker Produce": 2,
        "99 - Metadata": 1,
    }
    assert by_key(counts) == {"Produce": 7, "Fetch": 3, "Metadata": 1}
    assert by_process(counts, {11: "ingest", 12: "worker"}) == {
        "ingest": {"paystream-ingest Produce": 5},
        "worker": {"faust Fetch": 3, "paystream-worker Produce": 2},
        "pid 99": {"- Metadata": 1},
    }
