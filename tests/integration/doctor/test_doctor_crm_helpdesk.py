"""Doctor's CRM and helpdesk checks against the HubSpot and Zendesk stand-ins: an expired
and a revoked token, a missing scope, missing and differing properties, credentials of a
user who cannot create tickets, each beside the healthy setup; the command's exit code and
JSON for an expired token and for the healthy setup."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devstack.hubspot import SINK_SCOPES
from paystream.commands.doctor import shell
from paystream.crm_properties import contact_properties
from tests.integration.doctor.conftest import Group, RunDoctor, Standins

pytestmark = pytest.mark.broker


@pytest.fixture
def hubspot(group: Callable[..., Group]) -> Group:
    return group(shell.hubspot_findings)


@pytest.fixture
def zendesk(group: Callable[..., Group]) -> Group:
    return group(shell.zendesk_findings)


def test_a_working_token_with_the_properties_passes(hubspot: Group) -> None:
    found = hubspot()
    assert found["hubspot.token"].ok and "sink's scopes" in found["hubspot.token"].message
    assert found["hubspot.properties"].ok, found["hubspot.properties"]


def test_an_expired_token_is_named_expired(hubspot: Group, standins: Standins) -> None:
    standins.hubspot.token_expired = True
    found = hubspot()
    assert set(found) == {"hubspot.token"}  # the properties are not read with it
    assert not found["hubspot.token"].ok and "expired" in found["hubspot.token"].message
    assert "rotate" in found["hubspot.token"].fix


def test_a_revoked_token_is_named_revoked(hubspot: Group) -> None:
    found = hubspot(HUBSPOT_ACCESS_TOKEN="pat-na1-revoked-0000")
    assert not found["hubspot.token"].ok and "revoked" in found["hubspot.token"].message
    assert "pat-na1-revoked" not in found["hubspot.token"].message


def test_a_missing_scope_is_named(hubspot: Group, standins: Standins) -> None:
    standins.hubspot.scopes = [s for s in SINK_SCOPES if s != "crm.objects.contacts.write"]
    try:
        found = hubspot()
    finally:
        standins.hubspot.scopes = list(SINK_SCOPES)
    assert not found["hubspot.token"].ok
    assert "lacks scopes crm.objects.contacts.write" in found["hubspot.token"].message


def test_missing_and_differing_properties_name_crm_setup(
    hubspot: Group, standins: Standins
) -> None:
    names = [p["name"] for p in contact_properties()]
    del standins.hubspot.properties[names[0]]
    standins.hubspot.properties[names[1]]["type"] = "number"
    found = hubspot()
    assert found["hubspot.token"].ok
    props = found["hubspot.properties"]
    assert not props.ok and props.message.startswith("1 missing, ")
    assert f"missing: {names[0]}" in props.details
    assert any(names[1] in d for d in props.details[1:]), props.details
    assert "crm-setup" in props.fix


def test_a_working_agent_passes(zendesk: Group) -> None:
    found = zendesk()
    assert found["zendesk.credentials"].ok, found["zendesk.credentials"]


def test_a_revoked_zendesk_token_is_named(zendesk: Group) -> None:
    found = zendesk(ZENDESK_API_TOKEN="revoked-token")
    assert not found["zendesk.credentials"].ok
    assert "expired, revoked" in found["zendesk.credentials"].message


@pytest.mark.parametrize(
    ("role", "active", "suspended"),
    [("end-user", True, False), ("agent", False, False), ("agent", True, True)],
)
def test_a_user_who_cannot_create_tickets(
    zendesk: Group, standins: Standins, role: str, active: bool, suspended: bool
) -> None:
    standins.zendesk.role, standins.zendesk.active = role, active
    standins.zendesk.suspended = suspended
    found = zendesk()
    assert not found["zendesk.credentials"].ok
    assert "cannot create tickets" in found["zendesk.credentials"].message


def test_not_configured_is_a_problem_only_when_writes_are_enabled(
    hubspot: Group, zendesk: Group
) -> None:
    unset = {"HUBSPOT_ACCESS_TOKEN": "", "ZENDESK_API_TOKEN": ""}
    assert hubspot(**unset)["hubspot.token"].ok
    assert zendesk(**unset)["zendesk.credentials"].ok
    writes = {**unset, "PAYSTREAM_SINK_WRITES": "enabled"}
    assert not hubspot(**writes)["hubspot.token"].ok
    assert not zendesk(**writes)["zendesk.credentials"].ok


def test_the_command_exits_1_on_an_expired_token(run_doctor: RunDoctor, standins: Standins) -> None:
    standins.hubspot.token_expired = True
    report = run_doctor()
    assert report.code == 1 and not report.ok
    assert {"hubspot.token"} <= report.problems
    assert "zendesk.credentials" not in report.problems
    assert standins.hubspot.token not in report.out
    assert standins.zendesk.token not in report.out
