"""The stand-ins as ``paystream up`` runs them: separate processes driven over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from devstack.hubspot import DEFAULT_TOKEN as HUBSPOT_TOKEN
from devstack.zendesk import DEFAULT_EMAIL, DEFAULT_TOKEN
from paystream.runtime.broker import free_port
from sinks.errors import RetryableSinkError
from sinks.hubspot import HubSpotClient
from sinks.zendesk import ZendeskClient


def _call(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())


def _serve(module: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            _call(url + "/__standin/requests")
            break
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"{module} did not start")
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def zendesk_process() -> Iterator[str]:
    yield from _serve("devstack.zendesk")


@pytest.fixture
def hubspot_process() -> Iterator[str]:
    yield from _serve("devstack.hubspot")


def test_zendesk_process_records_injects_and_replays(zendesk_process: str) -> None:
    client = ZendeskClient(zendesk_process, DEFAULT_EMAIL, SecretStr(DEFAULT_TOKEN), 5)
    body = {"ticket": {"subject": "s", "comment": {"body": "b"}, "external_id": "k"}}
    _call(zendesk_process + "/__standin/faults", {"status": 429, "retry_after": "7"})
    with pytest.raises(RetryableSinkError) as raised:
        client.create_ticket("k", body)
    assert (raised.value.reason_code, raised.value.retry_after) == ("rate_limited", 7.0)
    first = client.create_ticket("k", body)
    again = client.create_ticket("k", body)
    assert first.ticket_id == again.ticket_id
    assert (first.how, again.how) == ("created", "found")  # looked up, not created again
    seen = _call(zendesk_process + "/__standin/requests")
    assert [(r["method"], r["status"]) for r in seen] == [
        ("GET", 429),
        ("GET", 200),
        ("POST", 201),
        ("GET", 200),
    ]
    assert all("Authorization" not in r["headers"] for r in seen)
    assert seen[2]["headers"]["Idempotency-Key"] == "k"
    assert len(_call(zendesk_process + "/__standin/state")["tickets"]) == 1
    _call(zendesk_process + "/__standin/reset", {})
    assert _call(zendesk_process + "/__standin/requests") == []


def test_hubspot_process_upserts_and_reads_back(hubspot_process: str) -> None:
    client = HubSpotClient(hubspot_process, SecretStr(HUBSPOT_TOKEN), 5)
    client.batch_upsert(
        [
            {
                "idProperty": "stripe_customer_id",
                "id": "cus_1",
                "properties": {"billing_state": "active"},
            }
        ]
    )
    read = client.batch_read("stripe_customer_id", ["cus_1", "cus_none"], ["billing_state"])
    assert [r["properties"]["billing_state"] for r in read["results"]] == ["active"]
    assert read["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    contacts = _call(hubspot_process + "/__standin/state")["contacts"]
    assert contacts[0]["properties"]["stripe_customer_id"] == "cus_1"
