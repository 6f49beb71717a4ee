"""Fixtures for the ingest service against the real broker: settings, app client, events."""

from __future__ import annotations

import copy
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient

from ingest.app import create_app
from ingest.settings import IngestSettings
from paystream.logging import configure_logging
from paystream.settings import CommonSettings
from paystream.signing import sign_header

SECRET = "whsec_ingestTestCurrent0123456789"
OLD_SECRET = "whsec_ingestTestPrevious987654321"
APP_SECRET = "psapp_ingestTestSecret55-0123456789abcdef"  # 32+: production's minimum
#: Card data planted in events so tests can grep for it in answers and logs.
CARD_LAST4 = "9731"
CARD_FINGERPRINT = "FpZq8xCardMarker"
EMAIL = "marker.person@example.org"

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def ingest_settings_for(common: CommonSettings, **overrides: Any) -> IngestSettings:
    values: dict[str, Any] = common.model_dump()
    values.update(
        stripe_webhook_secrets=f"{SECRET},{OLD_SECRET}",
        paystream_app_secrets=APP_SECRET,
        paystream_ingest_publish_timeout_s=2.0,
    )
    values.update(overrides)
    return IngestSettings(**values)


@pytest.fixture
def ingest_settings(pipeline_settings: CommonSettings) -> IngestSettings:
    return ingest_settings_for(pipeline_settings)


@pytest.fixture
def ingest_client(aiohttp_client: Any, ingest_settings: IngestSettings) -> ClientFactory:
    """Start the real ingest app (real producer) in-process; default: the test's settings."""

    async def make(settings: IngestSettings | None = None) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = await aiohttp_client(create_app(settings or ingest_settings))
        return client

    return make


@pytest.fixture
def make_event(stripe_fixtures_dir: Path) -> Callable[..., dict[str, Any]]:
    """A real Stripe event body (from the fixtures) with a fresh id, customer and card data."""
    cache: dict[str, dict[str, Any]] = {}

    def make(name: str = "charge_succeeded", **changes: Any) -> dict[str, Any]:
        if name not in cache:
            cache[name] = json.loads((stripe_fixtures_dir / f"{name}.json").read_text())
        event = copy.deepcopy(cache[name])
        event["id"] = f"evt_{uuid.uuid4().hex[:24]}"
        event["created"] = int(time.time())
        event["livemode"] = False
        obj = event["data"]["object"]
        if "customer" in obj:
            obj["customer"] = f"cus_{uuid.uuid4().hex[:14]}"
        card = (obj.get("payment_method_details") or {}).get("card")
        if card:
            card.update(last4=CARD_LAST4, fingerprint=CARD_FINGERPRINT)
        if "billing_details" in obj:
            obj["billing_details"]["email"] = EMAIL
        event.update(changes)
        return event

    return make


def signed(body: bytes, secrets: str | list[str] = SECRET, **headers: str) -> dict[str, str]:
    """Headers of a correctly signed Stripe delivery of ``body``."""
    return {"Stripe-Signature": sign_header(body, secrets), **headers}


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


class _CurrentStderr:
    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture
def json_logs(
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The service's stderr during the test (structlog and the request lines), parsed."""
    configure_logging("ingest", "info")
    # pytest swaps sys.stderr between set-up and call: write to whichever is current.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()))  # type: ignore[arg-type]
    seen: list[str] = []

    def read() -> list[dict[str, Any]]:
        seen.append(capsys.readouterr().err)
        lines = "".join(seen).splitlines()
        return [json.loads(line) for line in lines if line.strip()]  # every line is JSON

    yield read
    structlog.reset_defaults()  # the captured stream ends with this test
