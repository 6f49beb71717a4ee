"""sinks/crm.py with the contact-id memory against the HubSpot stand-in: requests per batch
for known and new customers, and the fall-back when a remembered contact is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
from paystream.vocabulary import ACTIVE, CANCELED, PAYMENT_FAILED
from sinks.contact_ids import Remembered
from sinks.crm import CrmAdapter
from sinks.hubspot import HubSpotClient


@pytest.fixture
def client(hubspot: HubSpotStandin) -> Iterator[HubSpotClient]:
    http = HubSpotClient(hubspot.url, SecretStr(hubspot.token), 5.0)
    yield http
    http.close()


def send(adapter: CrmAdapter, state: str, at: int, n: int = 100) -> None:
    commands = [crm_command(f"cus_{i}", state, at, email=f"c{i}@example.com") for i in range(n)]
    for call in adapter.plan(commands):  # type: ignore[arg-type]
        adapter.send(call)


def test_known_customers_cost_one_request_new_ones_at_most_three(
    hubspot: HubSpotStandin, client: HubSpotClient
) -> None:
    memory: dict[str, Remembered] = {}
    adapter = CrmAdapter(client, memory=memory)
    send(adapter, ACTIVE, 1_700_000_100)
    new_cost = client.requests_sent
    assert len(memory) == 100 and new_cost <= 3
    send(adapter, PAYMENT_FAILED, 1_700_000_200)
    assert client.requests_sent - new_cost == 1
    states = {c["properties"].get("billing_state") for c in hubspot.state()["contacts"]}
    assert states == {PAYMENT_FAILED} and len(hubspot.state()["contacts"]) == 100


def test_a_remembered_contact_hubspot_no_longer_has_falls_back_to_the_reads(
    hubspot: HubSpotStandin, client: HubSpotClient
) -> None:
    memory: dict[str, Remembered] = {}
    adapter = CrmAdapter(client, memory=memory)
    send(adapter, ACTIVE, 1_700_000_100, n=2)
    memory["cus_0"] = Remembered("999999", 0, "c0@example.com")  # merged away or deleted
    send(adapter, CANCELED, 1_700_000_200, n=2)
    states = sorted(c["properties"].get("billing_state") for c in hubspot.state()["contacts"])
    assert states == [CANCELED, CANCELED]
    assert memory["cus_0"].contact_id != "999999"
