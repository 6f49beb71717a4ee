"""HubSpot's validation errors quote the email they refused: none of that text may reach a
log line or a dead letter, only the error's category and the HTTP status."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest
import structlog

from devstack._http_standin import Fault
from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
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

EMAIL = "jane.doe+billing@example.com"
#: the shape of HubSpot's 400 for a refused property value, quoting the input: from
#: https://developers.hubspot.com/changelog/upcoming-property-validations-rules-will-be-enforced-for-apis-and-integrations
#: and the INVALID_EMAIL answer quoted on community.hubspot.com (invalid e-mails thread)
VALIDATION_ERROR = {
    "status": "error",
    "message": (
        'Property values were not valid: [{"isValid":false,"message":"Email address '
        f'{EMAIL} is invalid","error":"INVALID_EMAIL","name":"email"}}]'
    ),
    "correlationId": "11061cd3-cf3b-45f7-98d4-27f10a99ece6",
    "category": "VALIDATION_ERROR",
}


class _CurrentStderr:
    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def test_a_validation_error_quoting_the_email_reaches_no_log_line_nor_dead_letter(
    sink_settings: Callable[..., SinkSettings],
    hubspot: HubSpotStandin,
    metrics: PaystreamMetrics,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("sinks", "info")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()))  # type: ignore[arg-type]
    try:
        settings = sink_settings()
        hubspot.inject(Fault(400, count=10, path="batch/upsert", body=VALIDATION_ERROR))
        command = crm_command("cus_quoted", "active", 1_700_000_000, email=EMAIL)
        send_commands(settings, settings.topics.sink_crm, "crm_command", [command])
        with RunningSink(create_crm_sink(settings, metrics)):
            results = final_results(settings, {command["idempotency_key"]})
            (letter,) = dead_letters(settings, 1)
        logs = capsys.readouterr().err
    finally:
        structlog.reset_defaults()

    assert final(results[command["idempotency_key"]])["outcome"] == "dead_lettered"
    assert letter["reason_code"] == "bad_request"
    # the category and the status are kept, the free text is not
    assert "400" in letter["last_error"] and "VALIDATION_ERROR" in letter["last_error"]
    for text in (letter["last_error"], logs, json.dumps(results, default=str)):
        assert EMAIL not in text
        assert "@" not in text
        assert "Property values" not in text
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert any(line.get("event") == "dead_lettered" for line in lines)  # the log was read
    exposition = metrics.registry.collect()
    assert all(EMAIL not in str(m.samples) for m in exposition)
