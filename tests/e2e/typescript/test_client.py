"""The TypeScript client (``clients/typescript``) run by Node's own test runner.

``client.test.mjs`` checks signing, retries and errors against local HTTP servers;
``e2e.test.mjs`` runs against the real ``paystream ingest`` and ``paystream worker`` started
here on the session's broker, with a customer that a signed Stripe
``checkout.session.completed`` has put into ``onboarding_pending``; then the Next.js
example's route handlers (``examples/nextjs/test/routes.e2e.test.mjs``) do the same for a
second customer, through the built client.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from paystream.runtime.broker import free_port
from paystream.settings import CommonSettings
from paystream.signing import sign_header
from tests.e2e.conftest import Service, data_dir, http_ok, wait_until
from tests.e2e.typescript.conftest import EXAMPLE, ExampleBuild, billing_state, node_test

UNIT_TESTS = ("client", "paystream", "webhooks", "package")


def test_client_unit_tests_pass(typescript_client: Path) -> None:
    files = [typescript_client / "test" / f"{name}.test.mjs" for name in UNIT_TESTS]
    result = node_test(files)
    assert result.code == 0, "node --test failed (output above)"
    assert (result.count("fail"), result.count("skipped")) == (0, 0)
    assert result.count("pass") >= 93


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _state_is(url: str, token: str, expected: str) -> bool:
    return billing_state(url, token) == expected


def _checkout(fixture: dict[str, Any], customer: str) -> bytes:
    """A test-mode copy of the real checkout event for ``customer`` (its own event id)."""
    event = json.loads(json.dumps(fixture))
    event["livemode"] = False
    event["id"] = f"{fixture['id']}_{customer}"
    event["data"]["object"]["customer"] = customer
    return json.dumps(event).encode()


def test_client_and_example_routes_against_the_running_pipeline(
    typescript_client: Path,
    example_build: ExampleBuild,
    pipeline_settings: CommonSettings,
    broker_env: Callable[..., dict[str, str]],
    services: Callable[..., Service],
    stripe_fixtures_dir: Path,
    tmp_path: Path,
) -> None:
    assert example_build.check.code == 0, "examples/nextjs does not type-check (see its test)"
    fixture = json.loads((stripe_fixtures_dir / "checkout_session_completed.json").read_text())
    customer = fixture["data"]["object"]["customer"]
    route_customer = f"{customer}_route"
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
    # ingest's GET /v1/customers/{id} asks this worker
    ingest_env = {**env, "PAYSTREAM_WORKER_URL": worker_url}
    running = [services("ingest", ["ingest"], ingest_env), services("worker", ["worker"], env)]
    # a second ingest whose broker is unreachable: it answers app events with a real 503
    down_url = f"http://127.0.0.1:{free_port()}"
    down_env = {
        **env,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "PAYSTREAM_INGEST_PORT": down_url.rsplit(":", 1)[1],
        # its flush at SIGTERM can never succeed: 2 s instead of 10 s of the teardown
        "PAYSTREAM_INGEST_SHUTDOWN_TIMEOUT_S": "2",
    }
    running.append(services("ingest-without-broker", ["ingest"], down_env))
    wait_until(lambda: http_ok(f"{down_url}/healthz"), 60, "the broker-less ingest alive", running)
    wait_until(lambda: http_ok(f"{ingest_url}/readyz"), 60, "ingest ready", running)
    wait_until(lambda: http_ok(f"{worker_url}/readyz"), 90, "worker ready", running)

    # both customers check out (a signed Stripe event each) and wait in onboarding_pending
    for who in (customer, route_customer):
        body = _checkout(fixture, who)
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_header(body, webhook_secret),
        }
        status, answer = _post(f"{ingest_url}/webhooks/stripe", body, headers)
        assert (status, answer) == (200, {"received": True, "id": json.loads(body)["id"]})
    for who in (customer, route_customer):
        url = f"{worker_url}/customers/{who}"
        wait_until(
            partial(_state_is, url, token, "onboarding_pending"), 60, f"{who} pending", running
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
        "PAYSTREAM_E2E_ROUTE_CUSTOMER": route_customer,
        "PAYSTREAM_E2E_DOWN_INGEST_URL": down_url,
        "PAYSTREAM_EXAMPLE_BUILD": str(example_build.out),
    }
    client = node_test([typescript_client / "test" / "e2e.test.mjs"], node_env)
    assert client.code == 0, "the client's node --test failed against the pipeline (output above)"
    assert (client.count("fail"), client.count("skipped"), client.count("pass")) == (0, 0, 8)
    assert (workdir / "worker-answers.ts").is_file()

    routes = node_test(
        [EXAMPLE / "test" / "routes.e2e.test.mjs"], node_env, EXAMPLE / "test" / "register.mjs"
    )
    assert routes.code == 0, "the example's routes failed against the pipeline (output above)"
    assert (routes.count("fail"), routes.count("skipped"), routes.count("pass")) == (0, 0, 5)
