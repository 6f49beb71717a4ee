"""Two ``paystream admin`` processes on one queue: same rows, same actions, same after restart."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from paystream.settings import CommonSettings
from schemas.codec import EXCEPTION_STATUS, default_codec
from tests.integration.admin.conftest import (
    PAYSTREAM,
    AdminClient,
    AdminProcess,
    dead_letter_record,
    publish_dead_letters,
    publish_results,
    wait_for,
)
from tests.kafka_helpers import consume, decode_all

pytestmark = pytest.mark.broker


def delivered(settings: CommonSettings, record: dict[str, Any], acked_ms: int) -> dict[str, Any]:
    return {
        "sink": "crm",
        "idempotency_key": record["idempotency_key"],
        "outcome": "delivered",
        "attempts": 1,
        "reason_code": None,
        "latency_ms": 12.0,
        "customer_id": record["customer_id"],
        "cause_event_id": record["cause_event_id"],
        "cause_event_type": "invoice.paid",
        "event_created": 1_700_000_000,
        "received_at_ms": 1_700_000_000_150,
        "processed_at_ms": 1_700_000_000_300,
        "acked_at_ms": acked_ms,
        "correlation_id": "",
    }


def test_two_admins_and_a_restart_show_the_same_queue(
    pipeline_settings: CommonSettings,
    admin_factory: Callable[..., AdminProcess],
    broker_env: Callable[..., dict[str, str]],
) -> None:
    s = pipeline_settings
    now = int(time.time() * 1000)
    letters = [
        dead_letter_record(
            s,
            f"cus_Q{i}",
            failed_at_ms=now - 60_000 + i * 1000,
            reason="bad_request" if i % 2 else "unavailable",
        )
        for i in range(6)
    ]
    publish_dead_letters(s, letters)
    # one of them was delivered later anyway (a replay of its command): not open
    publish_results(s, [delivered(s, letters[0], now)])
    a, b = admin_factory(s), admin_factory(s)
    ca, cb = AdminClient(a.url), AdminClient(b.url)
    status, headers, _ = ca.login()
    assert status == 303 and headers["Location"] == "/"
    cb.login()
    expected = [r["idempotency_key"] for r in sorted(letters[1:], key=lambda r: -r["failed_at_ms"])]
    assert wait_for(lambda: ca.row_ids() == expected, what="admin a rows")
    assert wait_for(lambda: cb.row_ids() == expected, what="admin b rows")
    assert ca.open_gauge() == cb.open_gauge() == 5

    # dismiss on a, retry on b: each shows the other's action
    html = ca.page()
    gone = letters[1]["idempotency_key"]
    status, headers, _ = ca.request(
        "/dismiss",
        {"csrf_token": ca.csrf(html), "row_id": gone, "dismiss_reason": "test customer"},
    )
    assert status == 303 and "notice=dismissed" in headers["Location"]
    html_b = cb.page()
    retried = letters[2]["idempotency_key"]
    status, _, _ = cb.request("/retry", {"csrf_token": cb.csrf(html_b), "row_id": retried})
    assert status == 303
    assert wait_for(lambda: gone not in cb.row_ids(), what="dismissal seen by b")
    assert wait_for(
        lambda: (
            re.search(rf'data-row-id="{re.escape(retried)}"', ca.page())
            and "retrying" in _row_html(ca.page(), retried)
        ),
        what="retry seen by a",
    )
    assert ca.interventions("dismiss") == 1 and cb.interventions("retry") == 1

    # the retried command went back to sink.crm, byte for byte, and the store will count both
    resent = consume(s, s.topics.sink_crm, until=lambda m: len(m) >= 1, timeout=30)
    assert [m.value() for m in resent] == [letters[2]["command"]]
    outcomes = decode_all(
        consume(s, s.topics.sink_results, until=lambda m: len(m) >= 3, timeout=30)
    )
    assert sorted(r["outcome"] for r in outcomes) == ["delivered", "dismissed", "retried"]

    # the sink delivers the retried command: it leaves both lists
    publish_results(s, [delivered(s, letters[2], int(time.time() * 1000))])
    left = [k for k in expected if k not in (gone, retried)]
    assert wait_for(lambda: ca.row_ids() == left and cb.row_ids() == left, what="resolved")
    # ... and the resolution is kept in the compacted topic (sink.results expires)
    statuses = [
        default_codec().decode_as(EXCEPTION_STATUS, m.value())
        for m in consume(s, s.topics.admin_exceptions, until=lambda m: len(m) >= 4, timeout=30)
    ]
    assert {(d["row_id"], d["status"]) for d in statuses} >= {
        (gone, "dismissed"),
        (retried, "retrying"),
        (retried, "resolved"),
        (letters[0]["idempotency_key"], "resolved"),
    }

    # restart a: same queue from Kafka alone
    a.stop()
    a2 = admin_factory(s)
    ca2 = AdminClient(a2.url)
    ca2.login()
    assert ca2.row_ids() == cb.row_ids() == left
    assert ca2.open_gauge() == len(left)

    # `paystream status` counts the same rows by sink and reason
    result = subprocess.run(
        [PAYSTREAM, "status", "--json"],
        env=broker_env(s.topic_prefix, PAYSTREAM_STATUS_INGEST_METRICS_URL="http://127.0.0.1:9/m"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    page = ca2.page()
    on_page: dict[str, int] = {}
    for reason in re.findall(r"<td><code>([a-z_]+)</code></td>\s*<td>crm</td>", page):
        on_page[reason] = on_page.get(reason, 0) + 1
    assert report["exceptions"] == {"crm": len(left)}
    assert {
        e["reason_code"]: e["open"] for e in report["exceptions_by_reason"] if e["sink"] == "crm"
    } == on_page


def _row_html(page: str, row_id: str) -> str:
    start = page.index(f'data-row-id="{row_id}"')
    return page[start : page.index("</tr>", start)]


def test_retry_all_matching_the_filter_resends_only_those(
    pipeline_settings: CommonSettings, admin_factory: Callable[..., AdminProcess]
) -> None:
    s = pipeline_settings
    now = int(time.time() * 1000)
    letters = [
        dead_letter_record(
            s,
            f"cus_F{i}",
            failed_at_ms=now - 10_000 + i,
            reason="rate_limited" if i < 3 else "bad_request",
        )
        for i in range(5)
    ]
    publish_dead_letters(s, letters)
    client = AdminClient(admin_factory(s).url)
    client.login()
    assert wait_for(lambda: len(client.row_ids()) == 5, what="five rows")
    html = client.page("?reason=rate_limited")
    assert len(re.findall(r'data-row-id="', html)) == 3
    assert "Retry all 3 matching" in html
    status, headers, _ = client.request(
        "/retry-all", {"csrf_token": client.csrf(html), "reason": "rate_limited", "sink": ""}
    )
    assert (status, headers["Location"]) == (303, "/?reason=rate_limited&notice=retried")
    page = client.page()
    assert page.count('class="status retrying"') == 3 and page.count('class="status open"') == 2
    assert client.open_gauge() == 5  # retrying rows are still on the page until delivered
    assert client.interventions("retry") == 3
    resent = consume(s, s.topics.sink_crm, until=lambda m: len(m) >= 3, timeout=30, idle=2)
    assert sorted(m.value() for m in resent) == sorted(r["command"] for r in letters[:3])
    # pressing it again re-sends nothing: those rows are already retrying
    html = client.page("?reason=rate_limited")
    _, headers, _ = client.request(
        "/retry-all", {"csrf_token": client.csrf(html), "reason": "rate_limited"}
    )
    assert headers["Location"] == "/?reason=rate_limited&notice=retried_none"
    _, headers, _ = client.request(
        "/retry", {"csrf_token": client.csrf(html), "row_id": letters[0]["idempotency_key"]}
    )
    assert headers["Location"] == "/?notice=gone"
    assert "no longer open" in client.page("?notice=gone")
    assert client.interventions("retry") == 3
