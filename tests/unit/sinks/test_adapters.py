"""Planning calls from a batch (pure parts of the CRM and helpdesk adapters)."""

from __future__ import annotations

from devstack.commands import crm_command, helpdesk_command
from paystream.crm_properties import contact_properties
from paystream.vocabulary import BILLING_STATES
from sinks.crm import CrmAdapter
from sinks.helpdesk import HelpdeskAdapter


def test_crm_plan_coalesces_and_marks_the_superseded_commands() -> None:
    commands = [
        crm_command("cus_A", "active", 100),
        crm_command("cus_A", "paused", 200),
        crm_command("cus_B", "active", 100),
    ]
    (call,) = CrmAdapter(None).plan(commands)
    assert sorted(call.indexes) == [0, 1, 2]
    assert call.notes == {0: "coalesced"}
    assert [u.input["properties"]["billing_state"] for u in call.payload] == ["paused", "active"]


def test_crm_plan_chunks_at_the_batch_limit() -> None:
    commands = [crm_command(f"cus_{i}") for i in range(250)]
    calls = CrmAdapter(None, batch_limit=100).plan(commands)
    assert [len(c.payload) for c in calls] == [100, 100, 50]


def test_crm_split_isolates_each_customer() -> None:
    commands = [
        crm_command("cus_A", "active", 1),
        crm_command("cus_A", "paused", 2),
        crm_command("cus_B"),
    ]
    adapter = CrmAdapter(None)
    (call,) = adapter.plan(commands)
    parts = adapter.split(call)
    assert [sorted(p.indexes) for p in parts] == [[0, 1], [2]]
    assert adapter.split(parts[0]) == [parts[0]]


def test_helpdesk_plan_sends_each_key_once() -> None:
    commands = [
        helpdesk_command(object_id="in_1"),
        helpdesk_command(object_id="in_2"),
        helpdesk_command(object_id="in_1"),
    ]
    calls = HelpdeskAdapter(None).plan(commands)
    assert [c.payload[0] for c in calls] == [
        "paystream:failed_renewal:in_1",
        "paystream:failed_renewal:in_2",
    ]
    assert calls[0].indexes == (0, 2)
    assert calls[0].notes == {2: "coalesced"}


def test_crm_setup_properties_match_the_spec() -> None:
    props = {p["name"]: p for p in contact_properties()}
    assert set(props) == {
        "stripe_customer_id",
        "billing_state",
        "billing_state_changed_at",
        "paystream_user_id",
    }
    assert props["stripe_customer_id"]["hasUniqueValue"] is True
    assert [o["value"] for o in props["billing_state"]["options"]] == list(BILLING_STATES)
    assert set(BILLING_STATES) == {
        "onboarding_pending",
        "active",
        "payment_failed",
        "paused",
        "refunded",
        "canceled",
    }
    assert props["billing_state_changed_at"]["type"] == "datetime"
