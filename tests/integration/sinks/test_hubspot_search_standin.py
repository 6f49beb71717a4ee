"""The HubSpot stand-in's contact search and token introspection, over HTTP, held to the
behaviours its comments cite from HubSpot's documentation: paging with ``after``, at most
200 per page, 10,000 results per query, its own per-second limit answered with a 429 that
carries no ``Retry-After``, scopes named by the introspection, an expired token named."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.hubspot import (
    DEFAULT_TOKEN,
    SEARCH_PATH,
    TOKEN_INFO_PATH,
    HubSpotStandin,
)

HAS_CUSTOMER = {
    "filterGroups": [
        {"filters": [{"propertyName": "stripe_customer_id", "operator": "HAS_PROPERTY"}]}
    ]
}


@pytest.fixture
def hubspot() -> Iterator[tuple[HubSpotStandin, httpx.Client]]:
    with HubSpotStandin() as standin:
        headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        with httpx.Client(base_url=standin.url, headers=headers, timeout=10) as client:
            yield standin, client


def search(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post(SEARCH_PATH, json={**HAS_CUSTOMER, **body})


def test_paging_with_after_returns_every_match_once(
    hubspot: tuple[HubSpotStandin, httpx.Client],
) -> None:
    standin, client = hubspot
    standin.search_rate_limit = 1_000  # this test pages; the limit has its own test
    for i in range(450):
        standin.seed_contact(email=f"c{i}@example.com", stripe_customer_id=f"cus_{i}")
    standin.seed_contact(email="lead@example.com")  # a lead: no stripe_customer_id
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        body: dict[str, Any] = {"limit": 200, "properties": ["stripe_customer_id"]}
        if after is not None:
            body["after"] = after
        answer = search(client, **body)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages += 1
        assert page["total"] == 450
        seen += [c["properties"]["stripe_customer_id"] for c in page["results"]]
        after = (page.get("paging") or {}).get("next", {}).get("after")
        if after is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(f"cus_{i}" for i in range(450))


@pytest.mark.parametrize("limit", [0, 201])
def test_a_page_holds_1_to_200(hubspot: tuple[HubSpotStandin, httpx.Client], limit: int) -> None:
    _, client = hubspot
    answer = search(client, limit=limit)
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"


def test_no_query_pages_past_10000_results(hubspot: tuple[HubSpotStandin, httpx.Client]) -> None:
    _, client = hubspot
    assert search(client, limit=200, after="9800").status_code == 200
    answer = search(client, limit=200, after="9900")
    assert answer.status_code == 400
    assert "10000" in answer.json()["message"]


def _filters(n: int) -> list[dict[str, str]]:
    return [{"propertyName": "stripe_customer_id", "operator": "HAS_PROPERTY"}] * n


@pytest.mark.parametrize(
    ("groups", "status"),
    [([5] * 5, 200), ([10, 10, 5], 200), ([1] * 6, 400), ([11], 400), ([10, 10, 6], 400)],
    ids=["5x5", "25 in all", "six groups", "eleven in a group", "26 in all"],
)
def test_filters_are_held_to_the_changelogs_limits(
    hubspot: tuple[HubSpotStandin, httpx.Client], groups: list[int], status: int
) -> None:
    _, client = hubspot
    body = {"filterGroups": [{"filters": _filters(n)} for n in groups], "limit": 1}
    assert client.post(SEARCH_PATH, json=body).status_code == status


def test_the_search_limit_answers_429_without_retry_after(
    hubspot: tuple[HubSpotStandin, httpx.Client],
) -> None:
    standin, client = hubspot
    statuses = [search(client, limit=1) for _ in range(standin.search_rate_limit + 1)]
    assert [a.status_code for a in statuses[:-1]] == [200] * standin.search_rate_limit
    limited = statuses[-1]
    assert limited.status_code == 429
    assert "Retry-After" not in limited.headers
    assert limited.json()["policyName"] == "SECONDLY"


def test_token_introspection_names_scopes_and_an_expired_token(
    hubspot: tuple[HubSpotStandin, httpx.Client],
) -> None:
    standin, client = hubspot
    info = client.post(TOKEN_INFO_PATH, json={"tokenKey": DEFAULT_TOKEN})
    assert info.status_code == 200
    assert set(info.json()["scopes"]) == set(standin.scopes)
    assert client.post(TOKEN_INFO_PATH, json={"tokenKey": "pat-na1-wrong"}).status_code == 401
    standin.token_expired = True
    expired = client.post(TOKEN_INFO_PATH, json={"tokenKey": DEFAULT_TOKEN})
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert search(client, limit=1).status_code == 401
