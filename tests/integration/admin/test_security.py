"""The admin's doors: token at start, login, cookies, throttle, CSRF, refusals that say nothing."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from admin.app import create_app
from admin.settings import AdminSettings
from devstack.commands import helpdesk_command
from paystream.settings import CommonSettings
from tests.integration.admin.conftest import (
    ADMIN_TOKEN,
    PAYSTREAM,
    dead_letter_record,
    publish_dead_letters,
)
from tests.kafka_helpers import consume

pytestmark = pytest.mark.broker

Client = Callable[..., Awaitable[TestClient[Any, web.Application]]]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "invalid setting PAYSTREAM_ADMIN_TOKEN: Field required"),
        ("short", "invalid setting PAYSTREAM_ADMIN_TOKEN: Value error, must be at least 16"),
    ],
)
def test_admin_refuses_to_start_without_a_token(
    broker_env: Callable[..., dict[str, str]], token: str | None, message: str
) -> None:
    env = broker_env("nothing.")
    if token is not None:
        env["PAYSTREAM_ADMIN_TOKEN"] = token
    result = subprocess.run(
        [PAYSTREAM, "admin"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("paystream admin: " + message)
    assert result.stderr.count("\n") == 1 and result.stdout == ""


async def started(
    aiohttp_client: Client, settings: CommonSettings, **extra: Any
) -> TestClient[Any, web.Application]:
    values = {**settings.model_dump(), "paystream_admin_token": ADMIN_TOKEN, **extra}
    client = await aiohttp_client(create_app(AdminSettings(**values)))
    for _ in range(300):
        if (await client.get("/readyz")).status == 200:
            return client
        await asyncio.sleep(0.1)
    raise AssertionError("the admin never loaded the queue")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def login(client: TestClient[Any, web.Application], token: str = ADMIN_TOKEN) -> Any:
    page = await (await client.get("/login")).text()
    return await client.post(
        "/login", data={"csrf_token": csrf_of(page), "token": token}, allow_redirects=False
    )


async def test_login_sets_a_strict_httponly_cookie_and_the_page_needs_it(
    aiohttp_client: Client, pipeline_settings: CommonSettings
) -> None:
    client = await started(aiohttp_client, pipeline_settings)
    anonymous = await client.get("/", allow_redirects=False)
    assert (anonymous.status, anonymous.headers["Location"]) == (303, "/login")

    response = await login(client)
    assert (response.status, response.headers["Location"]) == (303, "/")
    cookie = next(
        v for k, v in response.headers.items() if k == "Set-Cookie" and "paystream_admin=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    page = await client.get("/")
    html = await page.text()
    assert page.status == 200
    assert "No open exceptions" in html  # an empty queue says so plainly
    assert ADMIN_TOKEN not in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert "http://" not in re.sub(r'href="/[^"]*"', "", html).replace(
        'xmlns="http://', ""
    )  # no external asset


@pytest.mark.parametrize(
    ("proxies", "forwarded", "secure"),
    [("127.0.0.1", "https", True), ("", "https", False), ("127.0.0.0/8", None, False)],
)
async def test_secure_cookie_and_hsts_behind_a_trusted_https_proxy(
    aiohttp_client: Client,
    pipeline_settings: CommonSettings,
    proxies: str,
    forwarded: str | None,
    secure: bool,
) -> None:
    client = await started(aiohttp_client, pipeline_settings, paystream_trusted_proxies=proxies)
    headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    form = await client.get("/login", headers=headers)
    nonce = form.cookies["paystream_admin_login"].value
    response = await client.post(
        "/login",
        data={"csrf_token": csrf_of(await form.text()), "token": ADMIN_TOKEN},
        headers={**headers, "Cookie": f"paystream_admin_login={nonce}"},
        allow_redirects=False,
    )
    assert response.status == 303
    for answer, name in ((form, "paystream_admin_login="), (response, "paystream_admin=")):
        (cookie,) = [c for c in answer.headers.getall("Set-Cookie") if name in c]
        assert ("Secure" in cookie) is secure
        # HSTS over https only (a browser ignores it over http anyway), redirects included
        hsts = answer.headers.getall("Strict-Transport-Security", [])
        assert hsts == (["max-age=31536000"] if secure else [])


async def test_wrong_tokens_are_throttled_and_a_login_without_csrf_is_refused(
    aiohttp_client: Client, pipeline_settings: CommonSettings
) -> None:
    client = await started(
        aiohttp_client, pipeline_settings, paystream_admin_login_attempts_per_minute=3
    )
    for _ in range(3):
        wrong = await login(client, "not-the-token-at-all")
        assert (wrong.status, wrong.headers["Location"]) == (303, "/login?failed=1")
    blocked = await login(client, ADMIN_TOKEN)  # even the right token waits now
    assert blocked.status == 429
    assert "Too many attempts" in await blocked.text()
    no_csrf = await client.post("/login", data={"token": ADMIN_TOKEN}, allow_redirects=False)
    assert no_csrf.status == 403
    assert "paystream_admin=" not in " ".join(no_csrf.headers.getall("Set-Cookie", []))


async def test_a_post_without_the_csrf_token_changes_nothing(
    aiohttp_client: Client, pipeline_settings: CommonSettings
) -> None:
    s = pipeline_settings
    command = helpdesk_command("chargeback", "dp_1", "cus_Secret1")
    letter = dead_letter_record(s, "cus_Secret1", failed_at_ms=int(time.time() * 1000))
    helpdesk_letter = {
        **dead_letter_record(
            s, "cus_Secret1", failed_at_ms=int(time.time() * 1000), reason="bad_request"
        ),
        "sink": "helpdesk",
        "idempotency_key": command["idempotency_key"],
        "source_topic": s.topics.sink_helpdesk,
    }
    from schemas.codec import HELPDESK_COMMAND, default_codec

    helpdesk_letter["command"] = default_codec().encode(HELPDESK_COMMAND, command)
    publish_dead_letters(s, [letter, helpdesk_letter])
    client = await started(aiohttp_client, s)
    await login(client)
    for _ in range(100):
        html = await (await client.get("/")).text()
        if html.count("data-row-id=") == 2:
            break
        await asyncio.sleep(0.1)
    assert html.count("data-row-id=") == 2
    assert "jenny@example.com" not in html and "@" not in html  # no email on the page
    assert "https://dashboard.stripe.com/test/customers/cus_Secret1" in html

    forged = [
        ("/retry", {"row_id": letter["idempotency_key"]}),
        ("/retry", {"row_id": letter["idempotency_key"], "csrf_token": "guess"}),
        ("/retry-all", {}),
        ("/dismiss", {"row_id": letter["idempotency_key"], "dismiss_reason": "forged"}),
        ("/logout", {}),
    ]
    for path, form in forged:
        response = await client.post(path, data=form, allow_redirects=False)
        body = await response.text()
        assert response.status == 403, path
        assert "cus_Secret1" not in body and "csrf" not in body.lower()
        assert letter["idempotency_key"] not in body
    # without a session at all: 401, saying nothing either
    client.session.cookie_jar.clear()
    anonymous = await client.post("/retry", data={"row_id": letter["idempotency_key"]})
    assert anonymous.status == 401
    assert "cus_Secret1" not in await anonymous.text()

    await login(client)
    html = await (await client.get("/")).text()
    assert html.count('class="status open"') == 2  # still open, nothing retried or dismissed
    assert consume(s, s.topics.admin_exceptions, timeout=3, idle=1) == []
    assert consume(s, s.topics.sink_crm, timeout=3, idle=1) == []
    assert consume(s, s.topics.sink_results, timeout=3, idle=1) == []
    metrics = await (await client.get("/metrics")).text()
    assert "paystream_exceptions_open 2.0" in metrics
    assert 'paystream_manual_interventions_total{action="retry"}' not in metrics
