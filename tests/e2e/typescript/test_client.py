"""The TypeScript client (``clients/typescript``) run by Node's own test runner.

``client.test.mjs`` checks signing, retries and errors against local HTTP servers;
``e2e.test.mjs`` runs against the real ``paystream ingest`` and ``paystream worker`` started
here on the session's broker, with a customer that a signed Stripe
``checkout.session.completed`` has put into ``onboarding_pending``.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paystream.runtime.broker import free_port
from paystream.settings import CommonSettings
from paystream.signing import sign_header
from tests.e2e.conftest import Service, data_dir, http_ok, wait_until
from tests.e2e.typescript.conftest import node_test


def test_client_unit_tests_pass(typescript_client: Path) -> None:
    result = node_test([typescript_client / "test" / "client.test.mjs"])
    assert result.code == 0, "node --test failed (output above)"
    assert result.count("fail") == 0
    assert result.count("pass") >= 40


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _state(url: str, token: str) -> str | None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            state = json.loads(response.read())["billing_state"]
            return str(state) if state else None
    except (urllib.error.URLError, OSError):
        return None


def test_client_against_the_running_pipeline(
    typescript_client: Path,
    pipeline_settings: CommonSettings,
    broker_env: Callable[..., dict[str, str]],
    services: Callable[..., Service],
    stripe_fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    event = json.loads((stripe_fixtures_dir / "checkout_session_completed.json").read_text())
    event["livemode"] = False  # a test-mode copy of the real event (signed below as Stripe would)
    body = json.dumps(event).encode()
    customer = event["data"]["object"]["customer"]
    webhook_secret = "whsec_" + secrets.token_hex(16)
    app_secret = secrets.token_urlsafe(24)
    token = secrets.token_urlsafe(24)
    ingest_url = f"http://127.0.0.1:{free_port()}"
    worker_url = f"http://127.0.0.1:{free_port()}"
    env = broker_env(
        pipeline_settings.topic_prefix,
        STRIPE_MODE="test",
        STRIPE_WEBHOOK_SECRETS=webhook_secret,
        PAYSTREAM_APP_SECRETS=app_secret,
        PAYSTREAM_API_TOKEN=token,
        PAYSTREAM_INGEST_PORT=ingest_url.rsplit(":", 1)[1],
        PAYSTREAM_WORKER_PORT=worker_url.rsplit(":", 1)[1],
        PAYSTREAM_DATA_DIR=data_dir(tmp_path),
    )
    running = [services("ingest", ["ingest"], env), services("worker", ["worker"], env)]
    wait_until(lambda: http_ok(f"{ingest_url}/readyz"), 60, "ingest ready", running)
    wait_until(lambda: http_ok(f"{worker_url}/readyz"), 90, "worker ready", running)

    status, answer = _post(
        f"{ingest_url}/webhooks/stripe",
        body,
        {"Content-Type": "application/json", "Stripe-Signature": sign_header(body, webhook_secret)},
    )
    assert (status, answer) == (200, {"received": True, "id": event["id"]})
    wait_until(
        lambda: _state(f"{worker_url}/customers/{customer}", token) == "onboarding_pending",
        60,
        "the customer in onboarding_pending",
        running,
    )

    workdir = tmp_path / "node"
    workdir.mkdir()
    node_env = {
        **env,
        "PAYSTREAM_INGEST_URL": ingest_url,
        "PAYSTREAM_APP_SECRET": app_secret,
        "PAYSTREAM_WORKER_URL": worker_url,
        "PAYSTREAM_E2E_CUSTOMER": customer,
        "PAYSTREAM_E2E_WORKDIR": str(workdir),
    }
    result = node_test([typescript_client / "test" / "e2e.test.mjs"], node_env)
    assert result.code == 0, "node --test failed against the pipeline (output above)"
    assert (result.count("fail"), result.count("skipped")) == (0, 0)
    assert result.count("pass") == 6
    assert (workdir / "worker-answers.ts").is_file()
