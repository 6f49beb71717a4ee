"""The Stripe Events API stand-in behaves as Stripe documents it (read with real clients)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import stripe

from devstack.stripe_api import (
    DEFAULT_KEY,
    RETENTION_S,
    StripeApiStandin,
    events_from_fixtures,
)

NOW = int(time.time())


def get(
    standin: StripeApiStandin, path: str, auth: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(standin.url + path)  # noqa: S310 - http://127.0.0.1
    request.add_header("Authorization", auth if auth is not None else f"Bearer {DEFAULT_KEY}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


@pytest.fixture
def loaded(stripe_api: StripeApiStandin, stripe_fixtures_dir: Path) -> list[dict[str, Any]]:
    events = events_from_fixtures(stripe_fixtures_dir, 25, newest=NOW - 10, spacing_s=3600)
    stripe_api.add_events(events)
    return events


def test_pages_newest_first_through_the_stripe_library(
    stripe_api: StripeApiStandin, loaded: list[dict[str, Any]]
) -> None:
    client = stripe.StripeClient(DEFAULT_KEY, base_addresses={"api": stripe_api.url})
    page = client.v1.events.list(params={"limit": 10})
    assert page.object == "list" and page.url == "/v1/events" and page.has_more
    ids = [e.id for e in page.auto_paging_iter()]
    assert ids == [e["id"] for e in loaded]  # all 25, newest first, each once
    assert len(stripe_api.requests_to("/v1/events")) == 3  # 10 + 10 + 5
    # every event is the real body, with its own id and created
    first = client.v1.events.retrieve(loaded[3]["id"])
    assert first.created == loaded[3]["created"] and first.data.object.object


def test_created_filters_and_cursors(
    stripe_api: StripeApiStandin, loaded: list[dict[str, Any]]
) -> None:
    created = [e["created"] for e in loaded]
    status, body, _ = get(
        stripe_api, f"/v1/events?created[gte]={created[9]}&created[lt]={created[2]}&limit=100"
    )
    assert status == 200 and not body["has_more"]
    assert [e["id"] for e in body["data"]] == [e["id"] for e in loaded[3:10]]
    _, after, _ = get(stripe_api, f"/v1/events?limit=3&starting_after={loaded[4]['id']}")
    assert [e["id"] for e in after["data"]] == [e["id"] for e in loaded[5:8]]
    assert after["has_more"]
    _, before, _ = get(stripe_api, f"/v1/events?limit=3&ending_before={loaded[4]['id']}")
    assert [e["id"] for e in before["data"]] == [e["id"] for e in loaded[1:4]]
    assert before["has_more"]  # loaded[0] is newer still


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "Invalid limit"),
        ("limit=101", "Invalid limit"),
        ("starting_after=evt_rc000001&ending_before=evt_rc000003", "only specify one"),
        ("starting_after=evt_nope", "No such event"),
    ],
)
def test_bad_list_requests_are_400(
    stripe_api: StripeApiStandin, loaded: list[dict[str, Any]], query: str, message: str
) -> None:
    status, body, _ = get(stripe_api, f"/v1/events?{query}")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]


def test_events_older_than_30_days_are_gone(
    stripe_api: StripeApiStandin, stripe_fixtures_dir: Path
) -> None:
    old = events_from_fixtures(
        stripe_fixtures_dir, 3, newest=NOW - RETENTION_S - 100, prefix="evt_old"
    )
    recent = events_from_fixtures(stripe_fixtures_dir, 2, newest=NOW - 100, prefix="evt_new")
    stripe_api.add_events(old + recent)
    _, body, _ = get(stripe_api, "/v1/events?limit=100&created[gte]=0")
    assert [e["id"] for e in body["data"]] == [e["id"] for e in recent]
    assert get(stripe_api, f"/v1/events/{old[0]['id']}")[0] == 404


def test_basic_and_bearer_auth_and_nothing_else(
    stripe_api: StripeApiStandin, loaded: list[dict[str, Any]]
) -> None:
    basic = "Basic " + base64.b64encode(f"{DEFAULT_KEY}:".encode()).decode()
    assert get(stripe_api, "/v1/events", basic)[0] == 200
    assert get(stripe_api, "/v1/events", f"Bearer {DEFAULT_KEY}")[0] == 200
    for wrong in ("", "Bearer sk_test_other", "Basic !!!", f"Token {DEFAULT_KEY}"):
        status, body, _ = get(stripe_api, "/v1/events", wrong)
        assert status == 401 and body["error"]["message"] == "Invalid API Key provided"


def test_429_as_stripe_sends_it_without_retry_after_unless_injected(
    stripe_api: StripeApiStandin, loaded: list[dict[str, Any]]
) -> None:
    stripe_api.fail_next(429, path="/v1/events")
    status, body, headers = get(stripe_api, "/v1/events")
    assert status == 429 and body["error"]["code"] == "rate_limit"
    assert "Retry-After" not in headers
    stripe_api.fail_next(429, retry_after="2", path="/v1/events")
    assert get(stripe_api, "/v1/events")[2]["Retry-After"] == "2"
    assert get(stripe_api, "/v1/events")[0] == 200
    # the library does not retry a plain 429 itself (reconcile does)
    client = stripe.StripeClient(
        DEFAULT_KEY, base_addresses={"api": stripe_api.url}, max_network_retries=3
    )
    stripe_api.fail_next(429, path="/v1/events")
    before = len(stripe_api.requests)
    with pytest.raises(stripe.RateLimitError):
        client.v1.events.list()
    assert len(stripe_api.requests) == before + 1


def test_webhook_endpoints_page_newest_first_through_the_stripe_library(
    stripe_api: StripeApiStandin,
) -> None:
    planted = [
        stripe_api.add_webhook_endpoint(f"https://pay.example.com/hook{i}", created=NOW - 100 + i)
        for i in range(5)
    ]
    old = stripe_api.add_webhook_endpoint(
        "https://old.example.com/hook", status="disabled", created=1
    )
    client = stripe.StripeClient(DEFAULT_KEY, base_addresses={"api": stripe_api.url})
    page = client.v1.webhook_endpoints.list(params={"limit": 3})
    assert (page.url, page.has_more) == ("/v1/webhook_endpoints", True)
    assert [e.id for e in page.data] == [e["id"] for e in reversed(planted[2:])]
    listed = [e.id for e in page.auto_paging_iter()]
    assert listed == [e["id"] for e in reversed(planted)] + [old["id"]]
    disabled = client.v1.webhook_endpoints.list(params={"limit": 100}).data[-1]
    assert (disabled.status, disabled.url) == ("disabled", "https://old.example.com/hook")
    assert "secret" not in disabled  # a listing never carries the signing secret
    status, body, _ = get(stripe_api, "/v1/webhook_endpoints?limit=101")
    assert (status, body["error"]["param"]) == (400, "limit")


def test_delivery_success_filters_the_events_listed(
    stripe_api: StripeApiStandin, loaded: list[dict[str, Any]]
) -> None:
    failed = {loaded[0]["id"], loaded[3]["id"]}
    stripe_api.fail_delivery(failed)
    status, body, _ = get(stripe_api, "/v1/events?limit=100&delivery_success=false")
    assert status == 200
    assert {e["id"] for e in body["data"]} == failed
    _, body, _ = get(stripe_api, "/v1/events?limit=100&delivery_success=true")
    assert {e["id"] for e in body["data"]} == {e["id"] for e in loaded} - failed


def test_a_portal_session_through_the_stripe_library_leads_to_a_page_back_to_the_app(
    stripe_api: StripeApiStandin,
) -> None:
    stripe_api.add_customers(["cus_Portal1"])
    client = stripe.StripeClient(DEFAULT_KEY, base_addresses={"api": stripe_api.url})
    back = "http://app.test/billing?from=portal&x=<y>"
    session = client.v1.billing_portal.sessions.create(
        params={"customer": "cus_Portal1", "return_url": back}
    )
    assert session.object == "billing_portal.session" and session.id.startswith("bps_")
    assert (session.customer, session.return_url, session.livemode) == ("cus_Portal1", back, False)
    assert session.url.startswith(stripe_api.url + "/p/session?secret=test_")
    # the customer's browser: no API key, the url's secret only
    with urllib.request.urlopen(session.url, timeout=10) as page:  # noqa: S310 - loopback
        text = page.read().decode()
    assert 'id="customer">cus_Portal1<' in text
    assert 'href="http://app.test/billing?from=portal&amp;x=&lt;y&gt;"' in text
    second = client.v1.billing_portal.sessions.create(params={"customer": "cus_Portal1"})
    assert second.url != session.url and second.return_url is None  # one session per call
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(stripe_api.url + "/p/session?secret=test_nope", timeout=10)  # noqa: S310
    assert unknown.value.code == 404


@pytest.mark.parametrize(
    ("params", "key", "status", "code"),
    [
        ({"customer": "cus_Nobody"}, DEFAULT_KEY, 400, "resource_missing"),
        ({"return_url": "http://app.test/"}, DEFAULT_KEY, 400, "parameter_missing"),
        ({"customer": "cus_FromEvent"}, "sk_test_wrong", 401, None),
    ],
)
def test_a_portal_session_is_refused_as_stripe_refuses_it(
    stripe_api: StripeApiStandin,
    stripe_fixtures_dir: Path,
    params: dict[str, str],
    key: str,
    status: int,
    code: str | None,
) -> None:
    event = events_from_fixtures(stripe_fixtures_dir, 1, newest=NOW)[0]
    event["data"]["object"]["customer"] = "cus_FromEvent"
    stripe_api.add_events([event])
    client = stripe.StripeClient(key, base_addresses={"api": stripe_api.url})
    with pytest.raises(stripe.StripeError) as refused:
        client.v1.billing_portal.sessions.create(params=params)  # type: ignore[arg-type]
    assert refused.value.http_status == status
    assert refused.value.code == code
    assert stripe_api.state()["portal_sessions"] == []


def test_a_customer_named_by_an_event_exists(
    stripe_api: StripeApiStandin, stripe_fixtures_dir: Path
) -> None:
    event = events_from_fixtures(stripe_fixtures_dir, 1, newest=NOW)[0]
    event["data"]["object"]["customer"] = "cus_FromEvent"
    stripe_api.add_events([event])
    client = stripe.StripeClient(DEFAULT_KEY, base_addresses={"api": stripe_api.url})
    session = client.v1.billing_portal.sessions.create(params={"customer": "cus_FromEvent"})
    assert session.customer == "cus_FromEvent"
