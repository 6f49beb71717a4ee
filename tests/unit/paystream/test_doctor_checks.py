"""The pure checks of ``paystream doctor``: what an API answered → ok or a problem."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from paystream.commands.doctor import checks
from paystream.commands.doctor.checks import TopicState
from paystream.vocabulary import APPLIED, DUPLICATE, HANDLED_STRIPE_EVENT_TYPES, IGNORED, STALE
from schemas.topics import Topics

PUBLIC = "https://pay.example.com"
URL = PUBLIC + "/webhooks/stripe"
NOW = 1_800_000_000


def endpoint(url: str = URL, events: tuple[str, ...] = ("*",), **extra: Any) -> dict[str, Any]:
    return {
        "id": f"we_{abs(hash((url, events))) % 1000}",
        "url": url,
        "enabled_events": list(events),
        "status": "enabled",
        "api_version": None,
        **extra,
    }


def by_check(findings: list[checks.Finding]) -> dict[str, bool]:
    return {f.check: f.ok for f in findings}


@pytest.mark.parametrize(
    ("endpoints", "livemode", "expect"),
    [
        ([endpoint()], True, {"stripe.endpoint": True, "stripe.endpoint.events": True}),
        ([], True, {"stripe.endpoint": False}),
        ([endpoint(status="disabled")], True, {"stripe.endpoint": False}),
        ([endpoint(), endpoint(events=("invoice.paid",))], True, {"stripe.endpoint": False}),
        ([endpoint(events=("invoice.paid",))], False, {"stripe.endpoint.events": False}),
        ([endpoint(events=HANDLED_STRIPE_EVENT_TYPES)], False, {"stripe.endpoint.events": True}),
        ([endpoint(api_version="2025-03-31.basil")], True, {"stripe.endpoint.api_version": False}),
        ([endpoint(api_version="2024-06-20")], True, {"stripe.endpoint.api_version": True}),
        (
            [endpoint(), endpoint("https://app-git-x-preview.vercel.app/webhooks/stripe")],
            True,
            {"stripe.endpoint": True, "stripe.endpoint.stale": False},
        ),
        (
            [endpoint(), endpoint("http://localhost:8080/webhooks/stripe")],
            False,
            {"stripe.endpoint": True, "stripe.endpoint.others": True},
        ),
        (
            [endpoint(), endpoint("https://old.example.com/hook", status="disabled")],
            True,
            {"stripe.endpoint.others": True},
        ),
    ],
    ids=[
        "one-good",
        "none",
        "disabled",
        "duplicate",
        "missing-types",
        "listed-types",
        "basil",
        "2024",
        "preview-live",
        "localhost-test",
        "disabled-other",
    ],
)
def test_webhook_endpoints(
    endpoints: list[dict[str, Any]], livemode: bool, expect: dict[str, bool]
) -> None:
    found = by_check(
        checks.webhook_endpoint_findings(
            endpoints, PUBLIC, livemode=livemode, handled=HANDLED_STRIPE_EVENT_TYPES
        )
    )
    assert {k: found.get(k) for k in expect} == expect


def test_no_public_url_is_a_problem() -> None:
    (finding,) = checks.webhook_endpoint_findings(
        [endpoint()], None, livemode=False, handled=HANDLED_STRIPE_EVENT_TYPES
    )
    assert not finding.ok and "PAYSTREAM_PUBLIC_URL" in finding.message


def test_account_default_version_is_read_from_events() -> None:
    found = checks.webhook_endpoint_findings(
        [endpoint()],
        PUBLIC,
        livemode=False,
        handled=("invoice.paid",),
        event_api_version="2026-01-28.clover",
    )
    assert by_check(found)["stripe.endpoint.api_version"] is False


@pytest.mark.parametrize(
    ("url", "stale"),
    [
        ("http://127.0.0.1:8080/webhooks/stripe", True),
        ("http://10.0.0.4/webhooks/stripe", True),
        ("https://abc.ngrok-free.app/webhooks/stripe", True),
        ("https://pr-12.preview.example.com/webhooks/stripe", True),
        ("https://pay.example.com/webhooks/stripe", False),
        ("https://34.120.0.1/webhooks/stripe", False),
    ],
)
def test_stale_urls(url: str, stale: bool) -> None:
    assert checks.is_stale_url(url) is stale


def test_failed_deliveries_name_types_and_the_reconcile_command() -> None:
    events = [
        {"id": "evt_1", "type": "invoice.paid", "created": NOW - 7200},
        {"id": "evt_2", "type": "invoice.paid", "created": NOW - 3600},
        {"id": "evt_3", "type": "charge.refunded", "created": NOW - 60},
    ]
    finding = checks.failed_delivery_findings(events, NOW)
    assert not finding.ok
    assert "invoice.paid 2" in finding.message and "evt_3" in finding.message
    assert "paystream reconcile --since 2h" in finding.fix
    assert checks.failed_delivery_findings([], NOW).ok


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (None, checks.UNKNOWN),
        ({"error": "unavailable"}, checks.UNKNOWN),
        ({"processed": False, "outcome": None, "repeated": False}, checks.NEVER_SEEN),
        ({"processed": True, "outcome": APPLIED, "repeated": False}, APPLIED),
        ({"processed": True, "outcome": STALE, "repeated": False}, STALE),
        ({"processed": True, "outcome": IGNORED, "repeated": False}, IGNORED),
        ({"processed": True, "outcome": APPLIED, "repeated": True}, DUPLICATE),
        # a worker of an earlier release, or an entry written before outcomes were kept
        ({"processed": True}, checks.PROCESSED),
        ({"processed": True, "outcome": None, "repeated": False}, checks.PROCESSED),
        ({"processed": True, "outcome": "nonsense"}, checks.PROCESSED),
    ],
)
def test_event_outcome(answer: dict[str, Any] | None, outcome: str) -> None:
    assert checks.event_outcome(answer) == outcome


def test_recent_events_never_seen_is_a_problem_with_its_fix() -> None:
    events = [{"id": "evt_a", "type": "invoice.paid", "created": NOW - 4000}]
    finding = checks.recent_event_findings(events, {"evt_a": checks.NEVER_SEEN}, NOW)
    assert not finding.ok and "reconcile --since 2h" in finding.fix
    assert finding.details == ("evt_a invoice.paid 2h ago: never seen",)
    assert checks.recent_event_findings(events, {"evt_a": APPLIED}, NOW).ok


@pytest.mark.parametrize(("age", "ok"), [(30, True), (119, True), (121, False), (4000, False)])
def test_an_event_of_the_last_two_minutes_is_still_in_flight(age: int, ok: bool) -> None:
    events = [{"id": "evt_a", "type": "invoice.paid", "created": NOW - age}]
    finding = checks.recent_event_findings(events, {"evt_a": checks.NEVER_SEEN}, NOW)
    assert finding.ok is ok
    assert finding.details[0].endswith(checks.IN_FLIGHT if ok else checks.NEVER_SEEN)


@pytest.mark.parametrize(
    ("status", "body", "ok", "word"),
    [
        (200, {"hubId": 1, "scopes": list(checks.HUBSPOT_SCOPES)}, True, "works"),
        (200, {"hubId": 1, "scopes": ["crm.objects.contacts.read"]}, False, "lacks"),
        (401, {"category": "EXPIRED_AUTHENTICATION"}, False, "expired"),
        (401, {"category": "INVALID_AUTHENTICATION"}, False, "revoked"),
        (503, None, False, "503"),
    ],
)
def test_hubspot_token(status: int, body: Any, ok: bool, word: str) -> None:
    finding = checks.hubspot_token_finding(status, body)
    assert finding.ok is ok and word in finding.message


@pytest.mark.parametrize(
    ("status", "user", "ok"),
    [
        (200, {"id": 1, "role": "agent", "active": True}, True),
        (200, {"id": 1, "role": "admin", "active": True}, True),
        (200, {"id": 1, "role": "end-user", "active": True}, False),
        (200, {"id": 1, "role": "agent", "active": False}, False),
        (200, {"id": 1, "role": "agent", "active": True, "suspended": True}, False),
        (200, {"id": 1, "role": "agent", "active": True, "suspended": False}, True),
        (200, {"id": None, "role": "end-user", "active": False}, False),
        (401, None, False),
    ],
)
def test_zendesk_user(status: int, user: Any, ok: bool) -> None:
    assert checks.zendesk_user_finding(status, {"user": user}).ok is ok


def test_topics_missing_partitions_and_policy() -> None:
    specs = Topics("p.test.", 4).specs()
    good = {s.name: TopicState(s.partitions, 1, dict(s.config)) for s in specs}
    assert checks.topic_findings(specs, good, 1).ok
    broken = dict(good)
    del broken[specs[0].name]
    broken[specs[1].name] = TopicState(2, 1, {})
    broken[specs[7].name] = TopicState(4, 1, {"cleanup.policy": "delete"})
    finding = checks.topic_findings(specs, broken, 1)
    assert not finding.ok and len(finding.details) == 3


def test_lag_needs_the_worker_group() -> None:
    assert not checks.lag_finding(None, "p.").ok
    assert not checks.lag_finding({"p.sinks.crm": {"p.sink.crm": 0}}, "p.").ok
    assert checks.lag_finding({"p.worker": {"p.stripe.events": 3}}, "p.").ok


def rules(*health: str) -> dict[str, Any]:
    return {
        "data": {
            "groups": [
                {
                    "name": "paystream",
                    "rules": [
                        {"name": f"PaystreamRule{i}", "health": h, "lastError": "bad"}
                        for i, h in enumerate(health)
                    ],
                }
            ]
        }
    }


def test_prometheus_rules() -> None:
    assert checks.prometheus_rules_finding(200, rules("ok", "ok")).ok
    assert checks.prometheus_rules_finding(200, rules("ok", "unknown")).ok  # not yet evaluated
    assert not checks.prometheus_rules_finding(200, rules("ok", "err")).ok
    assert not checks.prometheus_rules_finding(200, {"data": {"groups": []}}).ok
    assert not checks.prometheus_rules_finding(503, None).ok
    # other rules of the same Prometheus are not paystream's
    other = {"data": {"groups": [{"name": "paystream", "rules": [{"name": "NodeDown"}]}]}}
    assert not checks.prometheus_rules_finding(200, other).ok


def static(process: str, health: str = "up", job: str = "") -> dict[str, Any]:
    """A target as deploy/prometheus/prometheus.yml makes it."""
    labels = {"job": job or f"paystream-{process}", "instance": f"{process}:1"}
    labels |= {"app_kubernetes_io_name": "paystream", "app_kubernetes_io_component": process}
    return {"labels": labels, "health": health, "scrapeUrl": f"http://{process}:1/metrics"}


def pod(process: str, health: str = "up", *, mapped: bool = True) -> dict[str, Any]:
    """A target of a cluster's kubernetes-pods job: pod labels mapped by labelmap, or only
    among the discovered labels when the job maps none."""
    meta = {
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "paystream",
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": process,
    }
    labels = {"job": "kubernetes-pods", "instance": "10.0.0.1:1"}
    if mapped:
        labels |= {k.removeprefix("__meta_kubernetes_pod_label_"): v for k, v in meta.items()}
    return {"labels": labels, "discoveredLabels": meta, "health": health}


def targets(*active: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"activeTargets": list(active)}}


ALL = checks.PROCESSES


@pytest.mark.parametrize(
    ("active", "ok", "word"),
    [
        ([static(p) for p in ALL], True, "ingest 1"),
        ([pod(p) for p in ALL] + [pod("ingest")], True, "ingest 2"),
        ([pod(p, mapped=False) for p in ALL], True, "admin 1"),
        # an older copy of prometheus.yml: job names only
        ([{"labels": {"job": f"paystream-{p}"}, "health": "up"} for p in ALL], True, "sinks 1"),
        ([static(p) for p in ALL[:3]], False, "not scraped: admin"),
        ([static(p) for p in ALL] + [pod("ingest", "down")], False, "1 target(s) down"),
        ([static(p, "down") for p in ALL], False, "4 target(s) down"),
        # a component of another application, or no labels at all, is nobody of ours
        (
            [
                {
                    "labels": {"job": "kubernetes-pods", "app_kubernetes_io_component": "worker"},
                    "health": "up",
                }
            ],
            False,
            "not scraped: ingest, worker, sinks, admin",
        ),
        ([], False, "not scraped"),
    ],
)
def test_prometheus_targets(active: list[dict[str, Any]], ok: bool, word: str) -> None:
    finding = checks.prometheus_targets_finding(200, targets(*active))
    assert finding.ok is ok and word in finding.message, finding


def test_doctor_knows_the_targets_of_both_deployments() -> None:
    """deploy/prometheus/prometheus.yml's static targets (by their labels alone, whatever
    the job is called) and the k8s pods' labels as a kubernetes-pods job maps them are
    each of the four processes."""
    deploy = Path(__file__).resolve().parents[3] / "deploy"
    scrape = yaml.safe_load((deploy / "prometheus" / "prometheus.yml").read_text())
    found = {
        checks.target_process({"labels": {"job": "renamed", **sc.get("labels", {})}})
        for job in scrape["scrape_configs"]
        for sc in job["static_configs"]
    }
    assert set(ALL) <= found
    pods = {}
    for manifest in (deploy / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc["kind"] in ("Deployment", "StatefulSet"):
                template = doc["spec"]["template"]
                labels = {
                    re.sub(r"[^A-Za-z0-9_]", "_", k): v
                    for k, v in template["metadata"]["labels"].items()
                }
                process = checks.target_process({"labels": {"job": "kubernetes-pods", **labels}})
                pods[process] = template["spec"]["containers"][0]["args"][0]
    assert pods == {p: p for p in ALL}


@given(st.lists(st.sampled_from(HANDLED_STRIPE_EVENT_TYPES), unique=True))
def test_events_pass_exactly_when_every_handled_type_is_enabled(enabled: list[str]) -> None:
    found = by_check(
        checks.webhook_endpoint_findings(
            [endpoint(events=tuple(enabled))],
            PUBLIC,
            livemode=False,
            handled=HANDLED_STRIPE_EVENT_TYPES,
        )
    )
    assert found["stripe.endpoint.events"] is (len(enabled) == len(HANDLED_STRIPE_EVENT_TYPES))


def test_the_handled_types_fit_one_events_list_request() -> None:
    """Stripe's ``types`` filter takes at most 20 names: doctor lists the recent events of
    every handled type in one request."""
    from devstack.stripe_api import MAX_TYPES

    assert len(HANDLED_STRIPE_EVENT_TYPES) <= MAX_TYPES


@pytest.mark.parametrize(
    ("unsigned", "signed", "healthy", "named"),
    [
        (401, 200, True, "accepts paystream's signature"),  # verifies, takes unknown types
        (401, 400, True, "accepts paystream's signature"),  # the example: signed, no notice
        (403, 422, True, "accepts paystream's signature"),
        (400, 400, True, "accepts paystream's signature"),  # unsigned refused as malformed
        (200, 200, False, "without a valid signature"),  # verifies nothing
        (204, 401, False, "without a valid signature"),
        (401, 401, False, "secrets differ"),
        (401, 403, False, "secrets differ"),
        (404, 404, False, "404"),  # no route, or the app's secret unset
        (401, 404, False, "404"),
        (308, 308, False, "redirect"),  # a trailing slash Next.js redirects
        (401, 500, False, "answers 401 unsigned and 500 signed"),
        (502, 502, False, "answers 502 unsigned and 502 signed"),
        (401, 410, False, "answers 401 unsigned and 410 signed"),
    ],
)
def test_the_notification_endpoint_is_judged_by_its_two_answers(
    unsigned: int, signed: int, healthy: bool, named: str
) -> None:
    finding = checks.app_webhook_finding(unsigned, signed)
    assert finding.check == "notifications.endpoint"
    assert finding.ok is healthy and named in finding.message
    assert bool(finding.fix) is not healthy
