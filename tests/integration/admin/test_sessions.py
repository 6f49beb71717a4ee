"""Signing out of the admin ends the session on every replica; the sign-in throttle counts
the client a trusted proxy reports (Secure and HSTS: tests/integration/admin/test_security.py)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from paystream.settings import CommonSettings
from tests.integration.admin.conftest import AdminClient, AdminProcess, wait_for

pytestmark = pytest.mark.broker


def session_cookie(client: AdminClient) -> str:
    (cookie,) = [c.value for c in client.jar if c.name == "paystream_admin"]
    return cookie


def get_with(url: str, cookie: str, headers: dict[str, str] | None = None) -> int:
    """GET / with a copied cookie (no jar, no redirects): 200 signed in, 303 to /login."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect())
    req = urllib.request.Request(  # noqa: S310 - our admin
        url + "/", headers={"Cookie": f"paystream_admin={cookie}", **(headers or {})}
    )
    try:
        with opener.open(req, timeout=15) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def sign_out(client: AdminClient, path: str = "/logout") -> int:
    status, headers, _ = client.request(path, {"csrf_token": client.csrf(client.page())})
    assert headers.get("Location") == "/login"
    return status


def test_signing_out_ends_a_copied_cookie_on_every_replica_and_after_a_restart(
    pipeline_settings: CommonSettings, admin_factory: Callable[..., AdminProcess]
) -> None:
    a, b = admin_factory(pipeline_settings), admin_factory(pipeline_settings)
    mine, other = AdminClient(a.url), AdminClient(a.url)
    mine.login()
    other.login()
    copied, kept = session_cookie(mine), session_cookie(other)
    assert get_with(a.url, copied) == get_with(b.url, copied) == 200

    assert sign_out(mine) == 303
    assert get_with(a.url, copied) == 303  # at once on the replica that signed out
    assert wait_for(lambda: get_with(b.url, copied) == 303, what="replica b refusing it")
    assert get_with(b.url, kept) == get_with(a.url, kept) == 200  # only that session
    c = admin_factory(pipeline_settings)  # a replica started afterwards knows it too
    assert get_with(c.url, copied) == 303 and get_with(c.url, kept) == 200


def test_signing_out_everywhere_ends_every_session_but_not_the_next(
    pipeline_settings: CommonSettings, admin_factory: Callable[..., AdminProcess]
) -> None:
    a, b = admin_factory(pipeline_settings), admin_factory(pipeline_settings)
    first, second = AdminClient(a.url), AdminClient(b.url)
    first.login()
    second.login()
    cookies = [session_cookie(first), session_cookie(second)]
    assert sign_out(first, "/logout-everywhere") == 303
    for url in (a.url, b.url):
        for cookie in cookies:
            assert wait_for(lambda u=url, c=cookie: get_with(u, c) == 303, what="all ended")
    again = AdminClient(b.url)
    status, headers, _ = again.login()  # a sign-in afterwards is a new, live session
    assert (status, headers["Location"]) == (303, "/")
    assert get_with(a.url, session_cookie(again)) == 200


def test_the_throttle_counts_the_client_the_trusted_proxy_reports(
    pipeline_settings: CommonSettings, admin_factory: Callable[..., AdminProcess]
) -> None:
    admin = admin_factory(
        pipeline_settings,
        PAYSTREAM_TRUSTED_PROXIES="127.0.0.0/8",
        PAYSTREAM_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE="2",
    )

    def attempt(client_ip: str, token: str) -> int:
        client = AdminClient(admin.url)
        client.opener.addheaders = [("X-Forwarded-For", f"6.6.6.6, {client_ip}")]
        return client.login(token)[0]

    assert [attempt("198.51.100.1", "wrong-token-guess") for _ in range(3)] == [303, 303, 429]
    assert attempt("198.51.100.1", "admin-token-for-tests-0123456789") == 429
    # the founder behind the same ingress is another client: not locked out
    assert attempt("198.51.100.2", "admin-token-for-tests-0123456789") == 303
