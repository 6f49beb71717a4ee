"""Doctor's Stripe checks against the Stripe API stand-in: the webhook endpoint (missing,
disabled, doubled, stale, short of event types, at a version the pipeline cannot read),
failed deliveries and a refused key, each beside the healthy setup; the command's exit
code and JSON for one broken and the healthy setup."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.stripe_api import DEFAULT_KEY, events_from_fixtures
from paystream.commands.doctor import shell
from paystream.vocabulary import HANDLED_STRIPE_EVENT_TYPES
from tests.conftest import LIVE_ENV
from tests.integration.doctor.conftest import PUBLIC_URL, WEBHOOK_URL, Group, RunDoctor, Standins

pytestmark = pytest.mark.broker

ENDPOINT_CHECKS = ("stripe.endpoint", "stripe.endpoint.events", "stripe.endpoint.api_version")


@pytest.fixture
def stripe(group: Callable[..., Group]) -> Group:
    return group(lambda s: shell.stripe_findings(s, shell.recent_event_findings))


def test_the_healthy_endpoint_passes(stripe: Group, standins: Standins) -> None:
    found = stripe()
    for check in (*ENDPOINT_CHECKS, "stripe.deliveries"):
        assert found[check].ok, found[check]
    assert f"enabled at {WEBHOOK_URL}" in found["stripe.endpoint"].message
    assert "stripe.endpoint.stale" not in found


def test_no_endpoint_at_the_public_url(stripe: Group, standins: Standins) -> None:
    standins.stripe.reset()
    standins.stripe.add_webhook_endpoint("https://old-host.example.com/webhooks/stripe")
    found = stripe()
    assert not found["stripe.endpoint"].ok
    assert (
        f"no enabled webhook endpoint points at {WEBHOOK_URL}" in found["stripe.endpoint"].message
    )
    assert "add an endpoint" in found["stripe.endpoint"].fix
    assert "old-host" in " ".join(found["stripe.endpoint.others"].details)


def test_a_disabled_endpoint_is_named_with_reconcile(stripe: Group, standins: Standins) -> None:
    standins.stripe.reset()
    disabled = standins.stripe.add_webhook_endpoint(WEBHOOK_URL, status="disabled")
    found = stripe()
    assert not found["stripe.endpoint"].ok and "(1 disabled)" in found["stripe.endpoint"].message
    assert (
        "re-enable" in found["stripe.endpoint"].fix and "reconcile" in found["stripe.endpoint"].fix
    )
    assert found["stripe.endpoint"].details == (f"{disabled['id']} {WEBHOOK_URL}",)


def test_two_enabled_endpoints_deliver_everything_twice(stripe: Group, standins: Standins) -> None:
    standins.stripe.add_webhook_endpoint(WEBHOOK_URL)
    found = stripe()
    assert (
        not found["stripe.endpoint"].ok
        and "2 enabled endpoints" in found["stripe.endpoint"].message
    )


def test_handled_types_missing_from_the_endpoint(stripe: Group, standins: Standins) -> None:
    standins.stripe.reset()
    missing = ("invoice.payment_failed", "charge.dispute.created")
    kept = [t for t in HANDLED_STRIPE_EVENT_TYPES if t not in missing]
    standins.stripe.add_webhook_endpoint(WEBHOOK_URL, kept)
    found = stripe()
    assert found["stripe.endpoint"].ok
    events = found["stripe.endpoint.events"]
    assert not events.ok and "2 handled event types not enabled" in events.message
    assert all(t in events.message for t in missing)
    assert "reconcile --since 30d" in events.fix


def test_an_api_version_the_pipeline_does_not_read(stripe: Group, standins: Standins) -> None:
    standins.stripe.reset()
    standins.stripe.add_webhook_endpoint(WEBHOOK_URL, api_version="2025-04-30.basil")
    found = stripe()
    assert not found["stripe.endpoint.api_version"].ok
    assert "2025-04-30.basil" in found["stripe.endpoint.api_version"].message


def test_a_stale_live_endpoint(stripe: Group, standins: Standins) -> None:
    standins.stripe.reset()
    standins.stripe.api_key = "rk_live_doctor"
    try:
        standins.stripe.add_webhook_endpoint(WEBHOOK_URL, livemode=True)
        standins.stripe.add_webhook_endpoint(
            "https://my-app-git-feature-preview.vercel.app/webhooks/stripe", livemode=True
        )
        standins.stripe.add_webhook_endpoint("https://abc.ngrok.io/hook", status="disabled")
        found = stripe(STRIPE_API_KEY="rk_live_doctor", **LIVE_ENV)
    finally:
        standins.stripe.api_key = DEFAULT_KEY
    assert found["stripe.endpoint"].ok
    stale = found["stripe.endpoint.stale"]
    assert not stale.ok and "1 enabled live endpoint" in stale.message
    assert stale.details == (
        "we_standin0001 https://my-app-git-feature-preview.vercel.app/webhooks/stripe",
    )
    # in test mode the same preview endpoint is only listed
    standins.healthy()
    standins.stripe.add_webhook_endpoint("https://my-app-git-feature-preview.vercel.app/x")
    assert "stripe.endpoint.stale" not in stripe()


def test_failed_deliveries_are_counted_by_type(
    stripe: Group, standins: Standins, stripe_fixtures_dir: Path
) -> None:
    now = int(time.time())
    events = events_from_fixtures(stripe_fixtures_dir, 30, newest=now - 600, spacing_s=300)
    standins.stripe.add_events(events)
    assert stripe()["stripe.deliveries"].ok
    failed = [e for e in events if e["type"] in HANDLED_STRIPE_EVENT_TYPES][:3]
    assert failed
    standins.stripe.fail_delivery(e["id"] for e in failed)
    deliveries = stripe()["stripe.deliveries"]
    assert not deliveries.ok
    assert f"{len(failed)} event(s) not delivered in the last 3 days" in deliveries.message
    assert all(e["type"] in deliveries.message for e in failed)
    assert "paystream reconcile --since" in deliveries.fix


def test_a_refused_key_is_named(stripe: Group, standins: Standins) -> None:
    found = stripe(STRIPE_API_KEY="sk_test_rolled_long_ago")
    assert set(found) == {"stripe.api_key"}
    assert not found["stripe.api_key"].ok and "refused" in found["stripe.api_key"].message
    assert "sk_test_rolled" not in found["stripe.api_key"].message + found["stripe.api_key"].fix


def test_the_command_exits_1_with_json_on_a_broken_endpoint(
    run_doctor: RunDoctor, standins: Standins
) -> None:
    standins.stripe.reset()
    standins.stripe.add_webhook_endpoint(WEBHOOK_URL, status="disabled")
    report = run_doctor(PAYSTREAM_PUBLIC_URL=PUBLIC_URL)
    assert report.code == 1 and not report.ok
    assert "stripe.endpoint" in report.problems
    # nothing secret in what it prints
    for secret in standins.env().values():
        if "token" in secret or secret.startswith("sk_"):
            assert secret not in report.out
