"""The one-click sign-in link ``paystream up`` prints: ``/login?token=...``, development only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from paystream.settings import CommonSettings
from tests.integration.admin.conftest import ADMIN_TOKEN
from tests.integration.admin.test_security import started

pytestmark = pytest.mark.broker

Client = Callable[..., Awaitable[TestClient[Any, web.Application]]]


def session_cookie(response: Any) -> str | None:
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie"]
    return next((c for c in cookies if c.startswith("paystream_admin=")), None)


async def test_the_link_signs_in_and_leaves_the_token_behind_a_redirect(
    aiohttp_client: Client, pipeline_settings: CommonSettings
) -> None:
    client = await started(aiohttp_client, pipeline_settings)
    response = await client.get(f"/login?token={ADMIN_TOKEN}", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    cookie = session_cookie(response)
    assert cookie is not None and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = await client.get("/", allow_redirects=False)
    assert page.status == 200
    assert ADMIN_TOKEN not in await page.text()


async def test_a_wrong_token_in_the_link_signs_nobody_in_and_is_throttled(
    aiohttp_client: Client, pipeline_settings: CommonSettings
) -> None:
    client = await started(
        aiohttp_client, pipeline_settings, paystream_admin_login_attempts_per_minute=2
    )
    answers = []
    for _ in range(3):
        response = await client.get("/login?token=not-the-token", allow_redirects=False)
        answers.append(response.status)
        assert session_cookie(response) is None
    assert answers == [303, 303, 429]
    assert (await client.get("/", allow_redirects=False)).status == 303  # still signed out


async def test_the_link_is_refused_outside_development(
    aiohttp_client: Client, pipeline_settings: CommonSettings
) -> None:
    token = "a-preview-admin-token-of-forty-characters"
    client = await started(
        aiohttp_client,
        pipeline_settings,
        paystream_env="preview",
        paystream_admin_token=token,
        paystream_topic_prefix_without_mode="yes",
    )
    response = await client.get(f"/login?token={token}", allow_redirects=False)
    assert response.status == 404
    assert session_cookie(response) is None
