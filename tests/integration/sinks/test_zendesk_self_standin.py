"""The Zendesk stand-in's ``GET /api/v2/users/me`` ("Show Self"): the user the credentials
authenticate, with the role and state a ticket-creating agent needs; bad credentials 401."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.zendesk import DEFAULT_EMAIL, DEFAULT_TOKEN, ZendeskStandin


@pytest.fixture
def zendesk() -> Iterator[ZendeskStandin]:
    with ZendeskStandin() as standin:
        yield standin


def me(standin: ZendeskStandin, token: str = DEFAULT_TOKEN) -> httpx.Response:
    auth = httpx.BasicAuth(f"{DEFAULT_EMAIL}/token", token)
    return httpx.get(f"{standin.url}/api/v2/users/me", auth=auth, timeout=10)


def test_show_self_names_the_agent_and_refuses_bad_credentials(zendesk: ZendeskStandin) -> None:
    user = me(zendesk).json()["user"]
    assert (user["email"], user["role"], user["active"]) == (DEFAULT_EMAIL, "agent", True)
    zendesk.role, zendesk.active = "end-user", False
    user = me(zendesk).json()["user"]
    assert (user["role"], user["active"]) == ("end-user", False)
    assert me(zendesk, token="wrong").status_code == 401
