"""crm-repair reads HubSpot's contact search as the stand-in documents it: every contact
with a customer id exactly once, past the 10,000-results cap of one query, and through the
search's own per-second 429s (which carry no Retry-After)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from devstack.hubspot import HubSpotStandin
from paystream.commands.crm_repair.shell import (
    SEARCH_PATH,
    Client,
    CrmRepairSettings,
    RepairError,
    hubspot_client,
    search_contacts,
)


@pytest.fixture
def hubspot() -> Iterator[HubSpotStandin]:
    with HubSpotStandin(rate_limit=10_000) as standin:
        yield standin


def client(standin: HubSpotStandin, per_second: float) -> Client:
    settings = CrmRepairSettings(
        paystream_env="development",
        hubspot_api_base=standin.url,
        hubspot_access_token=standin.token,  # type: ignore[arg-type]
        paystream_crm_search_per_second=per_second,
    )
    return hubspot_client(settings)


def test_more_than_one_querys_cap_is_read_once_each(hubspot: HubSpotStandin) -> None:
    hubspot.search_rate_limit = 1_000  # this test is about the cap; pacing has its own
    for i in range(10_250):
        hubspot.seed_contact(stripe_customer_id=f"cus_{i:05d}")
    hubspot.seed_contact(email="lead@example.com")  # no customer id: not read
    reader = client(hubspot, 50)
    try:
        contacts = search_contacts(reader)
    finally:
        reader.close()
    ids = [c.customer_id for c in contacts]
    assert len(ids) == 10_250 and len(set(ids)) == 10_250
    searches = hubspot.requests_to(SEARCH_PATH)
    assert {r.status for r in searches} == {200}  # never paged into the cap's 400
    restarts = [r for r in searches if "after" not in r.body]
    assert len(restarts) == 2  # the first query, then one after the last id it reached


def test_the_search_limit_is_waited_out(hubspot: HubSpotStandin) -> None:
    hubspot.search_rate_limit = 2  # per second
    for i in range(1_000):
        hubspot.seed_contact(stripe_customer_id=f"cus_{i:05d}")
    reader = client(hubspot, 50)  # paced far above the limit: the 429s come
    try:
        contacts = search_contacts(reader)
    finally:
        reader.close()
    assert sorted(c.customer_id or "" for c in contacts) == [f"cus_{i:05d}" for i in range(1_000)]
    limited = [r for r in hubspot.requests_to(SEARCH_PATH) if r.status == 429]
    assert limited and reader.waits and len(reader.waits) == len(limited)


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (lambda s: setattr(s, "token_expired", True), "refused the token (401): HUBSPOT_"),
        (HubSpotStandin.exhaust_daily_limit, "daily request limit is spent"),
    ],
    ids=["expired token", "daily limit"],
)
def test_a_refusal_that_waiting_cannot_cure_stops_at_once(
    hubspot: HubSpotStandin, spoil: Callable[[HubSpotStandin], None], said: str
) -> None:
    hubspot.seed_contact(stripe_customer_id="cus_1")
    spoil(hubspot)
    reader = client(hubspot, 50)
    try:
        with pytest.raises(RepairError, match=re.escape(said)) as raised:
            search_contacts(reader)
    finally:
        reader.close()
    assert len(hubspot.requests_to(SEARCH_PATH)) == 1 and reader.waits == []
    assert hubspot.token not in str(raised.value)
