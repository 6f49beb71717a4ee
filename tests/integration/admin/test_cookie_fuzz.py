"""Property: a tampered, expired, revoked or made-up admin cookie never signs anybody in,
never gets a 5xx other than 503, and changes nothing (no session is issued, a sign-out
everywhere sent with it does not happen); the live session still works afterwards."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, composite

from admin.security import Sessions
from paystream.settings import CommonSettings
from tests.conftest import fuzz_settings
from tests.integration.admin.conftest import ADMIN_TOKEN
from tests.integration.admin.test_security import Client, csrf_of, login, started

pytestmark = pytest.mark.broker

MAX_AGE_S = 12 * 3600
#: what a Cookie header can carry as a value (no separators, quotes or backslashes)
COOKIE_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=';,"\\')


@dataclass
class Admin:
    client: Any
    live: str  # the cookie of a signed-in session that must survive the fuzzing
    revoked: str  # the cookie of a session that signed out


def nonce_of(cookie: str) -> str:
    parts = cookie.split(".")
    return parts[1] if len(parts) == 3 else cookie


@composite
def hostile_cookies(draw: DrawFn, live: str, revoked: str) -> str:
    sessions = Sessions(ADMIN_TOKEN, MAX_AGE_S)
    kind = draw(st.sampled_from(["revoked", "expired", "future", "tampered", "other_key", "junk"]))
    if kind == "revoked":
        return revoked
    if kind == "expired":
        age = draw(st.floats(MAX_AGE_S + 1, 10 * MAX_AGE_S))
        return sessions.issue(time.time() - age)
    if kind == "future":  # issued later than now: refused like an expired one
        return sessions.issue(time.time() + draw(st.floats(5, 10 * MAX_AGE_S)))
    if kind == "other_key":
        return Sessions("another-admin-token-0123456789", MAX_AGE_S).issue(time.time())
    if kind == "tampered":
        at = draw(st.integers(0, len(live) - 1))
        char = draw(COOKIE_CHARS.filter(lambda c: c != live[at]))
        edit = draw(st.sampled_from(["replace", "cut", "append"]))
        if edit == "replace":
            return live[:at] + char + live[at + 1 :]
        if edit == "cut":
            return live[:at]
        return live + char
    return draw(st.text(COOKIE_CHARS, max_size=250))


@pytest.fixture
async def admin(aiohttp_client: Client, pipeline_settings: CommonSettings) -> Admin:
    client = await started(aiohttp_client, pipeline_settings)
    first = await login(client)
    revoked = first.cookies["paystream_admin"].value
    csrf = csrf_of(await (await client.get("/")).text())
    out = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status == 303
    live = (await login(client)).cookies["paystream_admin"].value
    client.session.cookie_jar.clear()
    return Admin(client, live, revoked)


async def status_with(admin: Admin, cookie: str) -> int:
    resp = await admin.client.get(
        "/", headers={"Cookie": f"paystream_admin={cookie}"}, allow_redirects=False
    )
    return int(resp.status)


@fuzz_settings(60)
@given(data=st.data())
async def test_a_hostile_cookie_signs_nobody_in_and_changes_nothing(
    admin: Admin, data: st.DataObject
) -> None:
    cookie = data.draw(hostile_cookies(admin.live, admin.revoked))
    assert cookie != admin.live
    headers = {"Cookie": f"paystream_admin={cookie}"}
    page = await admin.client.get("/", headers=headers, allow_redirects=False)
    assert (page.status, page.headers.get("Location")) == (303, "/login")
    # the CSRF token of the cookie's own nonce: what its holder saw on a page before
    csrf = Sessions(ADMIN_TOKEN, MAX_AGE_S).csrf_token(nonce_of(cookie))
    for path in ("/logout-everywhere", "/retry-all"):
        resp = await admin.client.post(
            path, data={"csrf_token": csrf}, headers=headers, allow_redirects=False
        )
        assert resp.status == 401, (path, resp.status)
        assert not [c for c in resp.headers.getall("Set-Cookie", []) if "paystream_admin=" in c]
    assert await status_with(admin, admin.live) == 200  # nothing was signed out
