"""The helpdesk sink against the real broker and the Zendesk stand-in."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.commands import helpdesk_command
from devstack.hubspot import HubSpotStandin
from devstack.zendesk import ZendeskStandin
from paystream.metrics import PaystreamMetrics
from paystream.runtime.broker import free_port
from sinks.app import create_helpdesk_sink
from sinks.settings import SinkSettings
from tests.integration.sinks.conftest import (
    PAYSTREAM,
    RunningSink,
    dead_letters,
    final,
    final_results,
    send_commands,
    standin_env,
)

pytestmark = pytest.mark.broker

Settings = Callable[..., SinkSettings]


def test_one_ticket_per_key_with_idempotency_key_and_external_id(
    sink_settings: Settings, zendesk: ZendeskStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings()
    commands = [
        helpdesk_command("failed_renewal", "in_1", "cus_A"),
        helpdesk_command(
            "chargeback",
            "du_1",
            "cus_B",
            facts={"amount": "12000", "currency": "eur", "reason": "fraudulent"},
        ),
        helpdesk_command("failed_renewal", "in_1", "cus_A"),  # the same trigger again
    ]
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", commands)
    with RunningSink(create_helpdesk_sink(settings, metrics)):
        results = final_results(settings, {c["idempotency_key"] for c in commands})

    assert {final(r)["outcome"] for r in results.values()} == {"delivered"}
    tickets = {t["external_id"]: t for t in zendesk.ticket_list()}
    assert sorted(tickets) == ["paystream:chargeback:du_1", "paystream:failed_renewal:in_1"]
    chargeback = tickets["paystream:chargeback:du_1"]
    assert chargeback["tags"] == ["chargeback", "paystream"]
    assert chargeback["priority"] == "urgent"
    assert "EUR 120.00" in chargeback["subject"]
    assert "https://dashboard.stripe.com/test/customers/cus_B" in chargeback["description"]
    posts = [r for r in zendesk.requests_to("/api/v2/tickets") if r.method == "POST"]
    assert len(posts) == 2
    for request in posts:
        assert request.headers["Idempotency-Key"] == request.body["ticket"]["external_id"]
    # each create was preceded by a lookup of its key as external_id
    lookups = [r.path for r in zendesk.requests_to("external_id=") if r.method == "GET"]
    assert len(lookups) == 2
    assert (
        metrics.registry.get_sample_value(
            "paystream_sink_requests_total", {"sink": "helpdesk", "outcome": "delivered"}
        )
        == 3
    )


def test_wrong_credentials_are_permanent(
    sink_settings: Settings, zendesk: ZendeskStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(zendesk_api_token="not-the-token")
    command = helpdesk_command("chargeback", "du_401")
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", [command])
    with RunningSink(create_helpdesk_sink(settings, metrics)):
        (letter,) = dead_letters(settings, 1)
    assert (letter["reason_code"], letter["attempts"]) == ("unauthorized", 1)
    assert "not-the-token" not in letter["last_error"]
    assert len(zendesk.requests) == 1
    assert zendesk.ticket_list() == []


def test_timeouts_back_off_then_succeed(
    sink_settings: Settings, zendesk: ZendeskStandin, metrics: PaystreamMetrics
) -> None:
    settings = sink_settings(paystream_sink_timeout_s=0.5, paystream_sink_max_attempts=4)
    zendesk.fail_next(None, count=2, delay_s=1.5)  # slow answers: the client gives up waiting
    command = helpdesk_command("onboarding_stuck", "cus_A:evt_9")
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", [command])
    with RunningSink(create_helpdesk_sink(settings, metrics)):
        results = final_results(settings, {command["idempotency_key"]})
    records = results[command["idempotency_key"]]
    assert [r["reason_code"] for r in records if r["outcome"] == "retry"] == ["timeout", "timeout"]
    assert final(records)["attempts"] == 3
    # the slow answers did create the ticket; the retries found it through the key
    assert len(zendesk.ticket_list()) == 1


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigkill_mid_batch_and_restart_makes_no_second_ticket(
    sink_settings: Settings,
    broker_env: Callable[..., dict[str, str]],
    hubspot: HubSpotStandin,
    zendesk: ZendeskStandin,
    tmp_path: Path,
) -> None:
    settings = sink_settings()
    commands = [helpdesk_command("failed_renewal", f"in_k{i}", "cus_K") for i in range(16)]
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", commands)
    zendesk.fail_next(None, count=10_000, delay_s=0.25)  # every answer a little slow
    env = broker_env(
        settings.topic_prefix, PAYSTREAM_SINK_WRITES="enabled", **standin_env(hubspot, zendesk)
    )
    log = tmp_path / "sinks.log"

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [PAYSTREAM, "sinks", "helpdesk"],
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    first = start()
    try:
        _wait(lambda: len(zendesk.ticket_list()) >= 4, 90, "the first tickets")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        created_before = len(zendesk.ticket_list())
        assert created_before < len(commands), "killed too late to be mid-batch"
        second = start()
        try:
            results = final_results(settings, {c["idempotency_key"] for c in commands}, 120)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    finally:
        if first.poll() is None:
            first.kill()

    tickets = zendesk.ticket_list()
    assert sorted(t["external_id"] for t in tickets) == sorted(
        c["idempotency_key"] for c in commands
    )
    # the restart met what the killed process had created: found by external_id, not re-made
    found = [r for rs in results.values() for r in rs if r["reason_code"] == "ticket_exists"]
    assert len(found) >= 1
    assert {final(r)["outcome"] for r in results.values()} == {"delivered"}


def test_dry_run_process_makes_no_network_call(
    sink_settings: Settings,
    broker_env: Callable[..., dict[str, str]],
    hubspot: HubSpotStandin,
    zendesk: ZendeskStandin,
) -> None:
    from devstack.commands import crm_command

    settings = sink_settings()
    crm = [crm_command(f"cus_d{i}", "active", 1_700_000_000) for i in range(3)]
    tickets = [helpdesk_command("chargeback", f"du_d{i}") for i in range(2)]
    send_commands(settings, settings.topics.sink_crm, "crm_command", crm)
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", tickets)
    port = free_port()
    env = broker_env(settings.topic_prefix, **standin_env(hubspot, zendesk))  # writes not enabled
    env["PAYSTREAM_SINKS_METRICS_PORT"] = str(port)
    process = subprocess.Popen(
        [PAYSTREAM, "sinks", "crm", "helpdesk"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        results = final_results(settings, {c["idempotency_key"] for c in [*crm, *tickets]})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            exposition = page.read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert {final(r)["outcome"] for r in results.values()} == {"dry_run"}
    assert {final(r)["sink"] for r in results.values()} == {"crm", "helpdesk"}
    assert hubspot.requests == []
    assert zendesk.requests == []
    assert 'paystream_sink_requests_total{outcome="dry_run",sink="crm"} 3.0' in exposition
    assert 'paystream_sink_requests_total{outcome="dry_run",sink="helpdesk"} 2.0' in exposition
    assert hubspot.token.encode() not in stderr
    assert base64.b64encode(f"{zendesk.email}/token:{zendesk.token}".encode()) not in stderr


def test_rebalance_while_backing_off_loses_nothing_and_duplicates_nothing(
    sink_settings: Settings, zendesk: ZendeskStandin
) -> None:
    """A second sink joins while the first is paused on a 429: the paused batch is abandoned
    uncommitted, whoever owns each partition afterwards sends it, one ticket per key."""
    settings = sink_settings(paystream_sink_retry_after_max_s=4.0)
    zendesk.fail_next(429, count=1, retry_after="4")
    commands = [helpdesk_command("chargeback", f"du_rb{i}", f"cus_rb{i}") for i in range(8)]
    send_commands(settings, settings.topics.sink_helpdesk, "helpdesk_command", commands)
    with RunningSink(create_helpdesk_sink(settings, PaystreamMetrics())):
        _wait(lambda: any(r.status == 429 for r in zendesk.requests), 60, "the first 429")
        with RunningSink(create_helpdesk_sink(settings, PaystreamMetrics())):
            results = final_results(settings, {c["idempotency_key"] for c in commands}, 120)
    tickets = sorted(t["external_id"] for t in zendesk.ticket_list())
    assert tickets == sorted(c["idempotency_key"] for c in commands)
    assert {final(r)["outcome"] for r in results.values()} == {"delivered"}
