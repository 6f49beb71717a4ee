"""The personal-data audit of the CRM sink: HubSpot refuses an email it finds malformed and
quotes it in its answer (the stand-in does what HubSpot documents, no injected fault), for
a new customer (``batch/upsert``) and for one whose contact exists (its write by contact
id). Neither the email nor HubSpot's message may reach a log line, a dead letter's fields
(the command it carries aside: dead letters keep the command, personal data included,
until PAYSTREAM_DLQ_RETENTION), a sink result or the /metrics exposition; the error's
category and the HTTP status stay."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from prometheus_client import generate_latest

from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin, invalid_email_message
from paystream.logging import configure_logging
from paystream.metrics import PaystreamMetrics
from sinks.app import create_crm_sink
from sinks.settings import SinkSettings
from tests.integration.sinks.conftest import (
    RunningSink,
    dead_letters,
    final,
    final_results,
    send_commands,
)

pytestmark = pytest.mark.broker

NEW_EMAIL = "jane.doe+billing@example.c0m"
KNOWN_EMAIL = "ada.lovelace@example.org"
CHANGED_EMAIL = "ada@lovelace"
#: what HubSpot's answer says besides its category, in any of its parts
QUOTED = ("Property values", "Email address", "is invalid", "INVALID_EMAIL")


class _CurrentStderr:
    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def test_the_stand_in_refuses_a_malformed_email_quoting_it() -> None:
    # the premise: the answer the sink must redact quotes the email
    assert NEW_EMAIL in invalid_email_message(NEW_EMAIL)


def test_no_email_nor_hubspot_message_in_logs_dead_letters_results_or_metrics(
    sink_settings: Callable[..., SinkSettings],
    hubspot: HubSpotStandin,
    metrics: PaystreamMetrics,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = sink_settings()
    known = crm_command("cus_auditKnown", "active", 1_700_000_000, email=KNOWN_EMAIL)
    changed = crm_command("cus_auditKnown", "past_due", 1_700_000_100, email=CHANGED_EMAIL)
    new = crm_command("cus_auditNew", "active", 1_700_000_000, email=NEW_EMAIL)
    configure_logging("sinks", "info")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()))  # type: ignore[arg-type]
    try:
        with RunningSink(create_crm_sink(settings, metrics)):
            send_commands(settings, settings.topics.sink_crm, "crm_command", [known])
            final_results(settings, {known["idempotency_key"]})
            assert hubspot.contact_by("email", KNOWN_EMAIL) is not None
            send_commands(settings, settings.topics.sink_crm, "crm_command", [changed, new])
            keys = {changed["idempotency_key"], new["idempotency_key"]}
            results = final_results(settings, keys)
            letters = dead_letters(settings, 2)
        logs = capsys.readouterr().err
    finally:
        structlog.reset_defaults()

    assert {final(results[k])["outcome"] for k in keys} == {"dead_lettered"}
    refused = [r for r in hubspot.requests if r.status == 400]
    assert len(refused) >= 2  # both writes were refused by HubSpot's own check
    assert {letter["idempotency_key"] for letter in letters} == keys
    for letter in letters:
        assert letter["reason_code"] == "bad_request"
        assert "400" in letter["last_error"] and "VALIDATION_ERROR" in letter["last_error"]
    exposition = generate_latest(metrics.registry).decode()
    fields = [{k: v for k, v in letter.items() if k != "command"} for letter in letters]
    texts = {
        "logs": logs,
        "dead letters": json.dumps(fields, default=str),
        "results": json.dumps(results, default=str),
        "/metrics": exposition,
    }
    for where, text in texts.items():
        for secret in (NEW_EMAIL, CHANGED_EMAIL, *QUOTED):
            assert secret not in text, f"{secret!r} in {where}"
    lines: list[dict[str, Any]] = [json.loads(x) for x in logs.splitlines() if x.strip()]
    assert sum(line.get("event") == "dead_lettered" for line in lines) >= 2  # logs were read
    assert "paystream_sink_requests_total" in exposition  # the exposition was read
