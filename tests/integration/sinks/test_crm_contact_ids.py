"""sinks/crm.py with an in-process contact-id memory against the HubSpot stand-in: requests
per batch for known and new customers, and the fall-back when a remembered contact is gone
(the durable memory on the real broker: test_crm_contact_memory.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
from paystream.vocabulary import ACTIVE, CANCELED, PAYMENT_FAILED
from sinks.contact_ids import Remembered, email_key
from sinks.contact_memory import ContactMemory
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


def test_known_customers_cost_one_request_new_ones_two(
    hubspot: HubSpotStandin, client: HubSpotClient
) -> None:
    memory = ContactMemory()
    adapter = CrmAdapter(client, memory=memory)
    send(adapter, ACTIVE, 1_700_000_100)
    new_cost = client.requests_sent
    assert len(memory) == 100 and new_cost == 2  # read by email, upsert
    send(adapter, PAYMENT_FAILED, 1_700_000_200)
    assert client.requests_sent - new_cost == 1
    states = {c["properties"].get("billing_state") for c in hubspot.state()["contacts"]}
    assert states == {PAYMENT_FAILED} and len(hubspot.state()["contacts"]) == 100


def test_a_remembered_contact_hubspot_no_longer_has_falls_back_to_the_reads(
    hubspot: HubSpotStandin, client: HubSpotClient
) -> None:
    memory = ContactMemory()
    adapter = CrmAdapter(client, memory=memory)
    send(adapter, ACTIVE, 1_700_000_100, n=2)
    wrong = Remembered("999999", 0, email_key("c0@example.com"))  # merged away or deleted
    memory.forget(["cus_0"])
    memory.learn({"cus_0": wrong})
    send(adapter, CANCELED, 1_700_000_200, n=2)
    states = sorted(c["properties"].get("billing_state") for c in hubspot.state()["contacts"])
    assert states == [CANCELED, CANCELED]
    corrected = memory.get("cus_0")
    assert corrected is not None and corrected.contact_id not in ("999999", "")


def test_a_customer_hubspot_has_but_the_memory_does_not_is_updated_not_duplicated(
    hubspot: HubSpotStandin, client: HubSpotClient
) -> None:
    """Written before the memory existed (or by someone else), under another email: the
    upsert by stripe_customer_id finds it; under a lead's email, the read by id decides."""
    hubspot.seed_contact(stripe_customer_id="cus_0", email="old0@example.com")
    hubspot.seed_contact(stripe_customer_id="cus_1", email="old1@example.com")
    hubspot.seed_contact(email="c1@example.com")  # a lead holds cus_1's new email
    adapter = CrmAdapter(client, memory=ContactMemory())
    send(adapter, ACTIVE, 1_700_000_100, n=2)
    by_customer = {
        c["properties"].get("stripe_customer_id"): c["properties"]
        for c in hubspot.state()["contacts"]
    }
    assert len(hubspot.state()["contacts"]) == 3
    assert by_customer["cus_0"]["email"] == "c0@example.com"
    # today's choice for a lead holding a known customer's new email: keep the old one
    assert by_customer["cus_1"]["email"] == "old1@example.com"
    assert {p["billing_state"] for p in (by_customer["cus_0"], by_customer["cus_1"])} == {ACTIVE}


def test_a_remembered_contact_whose_email_a_lead_took_falls_back_to_the_reads(
    hubspot: HubSpotStandin, client: HubSpotClient
) -> None:
    """The update by id would give the contact an email a lead now holds (409): the reads
    decide as today, and the state still goes out."""
    memory = ContactMemory()
    adapter = CrmAdapter(client, memory=memory)
    send(adapter, ACTIVE, 1_700_000_100, n=1)
    contact = hubspot.contact_by("stripe_customer_id", "cus_0")
    assert contact is not None
    with hubspot.lock:  # someone edits the contact's email in HubSpot, a lead takes the old one
        hubspot._write(contact, {"email": "edited@example.com"})
    hubspot.seed_contact(email="c0@example.com")
    send(adapter, CANCELED, 1_700_000_200, n=1)
    again = hubspot.contact_by("stripe_customer_id", "cus_0")
    assert again is not None and again["properties"]["billing_state"] == CANCELED
    assert len(hubspot.state()["contacts"]) == 2
