"""``paystream sinks`` and ``paystream crm-setup`` as a user runs them."""

from __future__ import annotations

import os
import subprocess

from devstack.hubspot import HubSpotStandin
from tests.integration.sinks.conftest import PAYSTREAM


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "PAYSTREAM_", "HUBSPOT_", "ZENDESK_", "KAFKA_"))
    }
    env["PAYSTREAM_ENV"] = "development"  # required by every command that touches a service
    env.update(extra)
    return env


def test_writes_without_a_token_stop_with_one_line_naming_it() -> None:
    done = subprocess.run(
        [PAYSTREAM, "sinks", "crm"],
        env=_env(PAYSTREAM_SINK_WRITES="enabled", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "HUBSPOT_ACCESS_TOKEN" in lines[0]


def test_bad_retry_setting_stops_the_process() -> None:
    done = subprocess.run(
        [PAYSTREAM, "sinks", "helpdesk"],
        env=_env(PAYSTREAM_SINK_MAX_ATTEMPTS="many"),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.decode().startswith(
        "paystream sinks: invalid setting PAYSTREAM_SINK_MAX_ATTEMPTS"
    )


def test_crm_setup_creates_the_properties_once() -> None:
    with HubSpotStandin(with_properties=False) as hubspot:
        env = _env(HUBSPOT_API_BASE=hubspot.url, HUBSPOT_ACCESS_TOKEN=hubspot.token)
        first = subprocess.run([PAYSTREAM, "crm-setup"], env=env, capture_output=True, timeout=60)
        second = subprocess.run([PAYSTREAM, "crm-setup"], env=env, capture_output=True, timeout=60)
        created = [
            r.body for r in hubspot.requests_to("/crm/v3/properties/contacts") if r.status == 201
        ]
        state = hubspot.state()
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "property stripe_customer_id: created" in first.stdout.decode()
    assert "property stripe_customer_id: exists" in second.stdout.decode()
    assert {
        "stripe_customer_id",
        "billing_state",
        "billing_state_changed_at",
        "paystream_user_id",
    } <= set(state["properties"])
    unique = [b for b in created if b.get("name") == "stripe_customer_id"]
    assert unique and unique[0]["hasUniqueValue"] is True


def test_crm_setup_with_a_wrong_token_fails_clearly() -> None:
    with HubSpotStandin(with_properties=False) as hubspot:
        env = _env(HUBSPOT_API_BASE=hubspot.url, HUBSPOT_ACCESS_TOKEN="wrong")
        done = subprocess.run([PAYSTREAM, "crm-setup"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 1
    assert "unauthorized" in done.stderr.decode()
    assert "wrong" not in done.stderr.decode().replace("unauthorized", "")


def test_crm_setup_fails_loudly_when_an_existing_property_differs() -> None:
    """Someone created ``stripe_customer_id`` by hand, without unique values: a 409 is no
    longer "done" — the command names the difference and exits 1."""
    with HubSpotStandin() as hubspot:
        hubspot.properties["stripe_customer_id"] = {"type": "string", "hasUniqueValue": False}
        env = _env(HUBSPOT_API_BASE=hubspot.url, HUBSPOT_ACCESS_TOKEN=hubspot.token)
        done = subprocess.run([PAYSTREAM, "crm-setup"], env=env, capture_output=True, timeout=60)
        hubspot.properties["stripe_customer_id"] = {"type": "string", "hasUniqueValue": True}
        matching = subprocess.run(
            [PAYSTREAM, "crm-setup"], env=env, capture_output=True, timeout=60
        )
    assert done.returncode == 1
    err = done.stderr.decode()
    assert "stripe_customer_id: hasUniqueValue is False, needs True" in err
    assert "Traceback" not in err
    assert matching.returncode == 0, matching.stderr
    assert "property stripe_customer_id: exists, matches" in matching.stdout.decode()
