"""The I/O of ``paystream doctor``: read each API once, hand the answers to the checks.

Each reader returns findings and never raises for a source that does not answer: that
source's line says so and the other checks still run. Secrets go only into request
headers; errors are reported by their class name, never with a response body or a URL
that could hold a token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import Field

from paystream.commands.doctor import checks
from paystream.commands.doctor.checks import Finding, TopicState
from paystream.commands.doctor.environment import environment_findings
from paystream.commands.status import Status, StatusSettings, open_reader, read_lag
from paystream.crm_properties import contact_properties, property_differences
from paystream.destinations import DestinationSettings, split_url
from paystream.errors import PaystreamError
from paystream.runtime.store import MetricsStoreUnavailable, QueryRejected
from paystream.settings import ApiToken, Environment, StripeApiBase, WorkerUrl
from paystream.signing import sign_header
from paystream.stripe_objects import stripe_customer_id, stripe_event_key
from paystream.vocabulary import APP_SIGNATURE_HEADER, HANDLED_STRIPE_EVENT_TYPES

#: Stripe's List endpoints: at most 100 per page (https://docs.stripe.com/api/pagination)
PAGE = 100
MAX_PAGES = 20
RECENT_EVENTS = 20
FAILED_WINDOW_S = 3 * 24 * 3600
_EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_]{1,100}$")


class DoctorSettings(DestinationSettings, StatusSettings, StripeApiBase, WorkerUrl, ApiToken):
    """What ``paystream doctor`` reads: every API the pipeline talks to."""

    #: a local tool, like ``paystream status``: development unless told otherwise (the
    #: processes' own rules are judged apart, ``paystream.commands.doctor.environment``)
    paystream_env: Environment = "development"

    #: the address Stripe reaches ingest at (the endpoint must be this + /webhooks/stripe)
    paystream_public_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    # the worker's customer-state API (PAYSTREAM_WORKER_URL, PAYSTREAM_API_TOKEN) is asked
    # what it did with each recent event
    #: Prometheus's HTTP API (rules and targets); unset: alerting is not checked
    prometheus_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    paystream_doctor_timeout_s: float = Field(default=10.0, gt=0, le=120)


class Unanswered(PaystreamError):
    """An API did not answer (connection error, timeout)."""


Answer = tuple[int, Any]


class Api:
    """One base URL, its auth headers; JSON answers as ``(status, body)``."""

    def __init__(
        self, base: str, headers: Mapping[str, str], timeout: float, auth: Any = None
    ) -> None:
        self.client = httpx.Client(
            base_url=base.rstrip("/"), headers=dict(headers), timeout=timeout, auth=auth
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unanswered(type(exc).__name__) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body

    def close(self) -> None:
        self.client.close()


# ------------------------------------------------------------------------------ Stripe


class StripeRefused(PaystreamError):
    """Stripe answered a list request with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"Stripe answered {status}")
        self.status = status


def stripe_list(api: Api, path: str, params: Mapping[str, Any], pages: int) -> list[Any]:
    """Every object of a Stripe list, newest first, paged with ``starting_after``."""
    items: list[Any] = []
    query = dict(params)
    for _ in range(pages):
        status, body = api.call("GET", path, params=query)
        if status != 200 or not isinstance(body, dict):
            raise StripeRefused(status)
        data = list(body.get("data") or [])
        items += data
        if not body.get("has_more") or not data:
            break
        query["starting_after"] = data[-1]["id"]
    return items


def _stripe_refusal(status: int) -> Finding:
    if status == 401:
        return checks.problem(
            "stripe.api_key",
            "Stripe refused STRIPE_API_KEY (expired, rolled or revoked)",
            "make a restricted key with read access to Events and Webhook Endpoints "
            "(Dashboard > Developers > API keys) and set STRIPE_API_KEY",
        )
    if status == 403:
        return checks.problem(
            "stripe.api_key",
            "STRIPE_API_KEY may not read Events or Webhook Endpoints",
            "give the restricted key read access to both",
        )
    return checks.problem("stripe.api_key", f"Stripe answered {status}", "retry later")


def stripe_findings(
    settings: DoctorSettings, ask_worker: Callable[..., list[Finding]]
) -> list[Finding]:
    if settings.stripe_api_key is None:
        return [
            checks.problem(
                "stripe.api_key",
                "STRIPE_API_KEY is not set: Stripe is not checked",
                "set a restricted read-only key (Events, Webhook Endpoints) of STRIPE_MODE",
            )
        ]
    key = settings.stripe_api_key.get_secret_value()
    api = Api(
        settings.stripe_api_base,
        {"Authorization": f"Bearer {key}"},
        settings.paystream_doctor_timeout_s,
    )
    now = time.time()
    try:
        endpoints = stripe_list(api, "/v1/webhook_endpoints", {"limit": PAGE}, MAX_PAGES)
        recent = stripe_list(
            api,
            "/v1/events",
            # "types: an array of up to 20 strings" (https://docs.stripe.com/api/events/list):
            # the 16 handled types fit (test_doctor_checks checks the count)
            {"limit": RECENT_EVENTS, "types[]": list(HANDLED_STRIPE_EVENT_TYPES)},
            1,
        )
        failed = stripe_list(
            api,
            "/v1/events",
            {
                "limit": PAGE,
                "delivery_success": "false",
                "created[gte]": int(now - FAILED_WINDOW_S),
            },
            MAX_PAGES,
        )
    except StripeRefused as exc:
        return [_stripe_refusal(exc.status)]
    except Unanswered as exc:
        return [checks.unreachable("stripe.api_key", "Stripe", str(exc), "check STRIPE_API_BASE")]
    finally:
        api.close()
    version = next((str(e["api_version"]) for e in recent if e.get("api_version")), None)
    findings = checks.webhook_endpoint_findings(
        endpoints,
        settings.paystream_public_url,
        livemode=settings.stripe_mode == "live",
        handled=HANDLED_STRIPE_EVENT_TYPES,
        event_api_version=version,
    )
    findings.append(checks.failed_delivery_findings(failed, now))
    findings += ask_worker(settings, recent, now)
    return findings


# ------------------------------------------------------------------- what the worker did


def event_outcomes(settings: DoctorSettings, events: list[dict[str, Any]]) -> dict[str, str]:
    """Each event's outcome, as the worker that owns its key answers from its dedup entry
    (``GET /events/{id}?key=``): applied, stale, ignored, duplicate, never seen; unknown
    when the worker cannot be asked."""
    answers = _worker_answers(settings, events)
    return {
        str(e["id"]): checks.event_outcome(answers.get(str(e["id"])))
        for e in events
        if _EVENT_ID.fullmatch(str(e.get("id", "")))
    }


def _worker_answers(
    settings: DoctorSettings, events: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    if not settings.paystream_worker_url or settings.paystream_api_token is None:
        return {}
    token = settings.paystream_api_token.get_secret_value()
    api = Api(
        settings.paystream_worker_url,
        {"Authorization": f"Bearer {token}"},
        settings.paystream_doctor_timeout_s,
    )
    answers: dict[str, dict[str, Any]] = {}
    try:
        for event in events:
            if not _EVENT_ID.fullmatch(str(event.get("id", ""))):
                continue
            obj = (event.get("data") or {}).get("object") or {}
            key = stripe_event_key(stripe_customer_id(obj), str(event["id"]))
            status, body = api.call("GET", f"/events/{event['id']}", params={"key": key})
            if status == 200 and isinstance(body, dict):
                answers[str(event["id"])] = body
    except Unanswered:
        pass
    finally:
        api.close()
    return answers


def recent_event_findings(
    settings: DoctorSettings, recent: list[dict[str, Any]], now: float
) -> list[Finding]:
    return [checks.recent_event_findings(recent, event_outcomes(settings, recent), now)]


# ------------------------------------------------------------------------- CRM, helpdesk


def hubspot_findings(settings: DoctorSettings) -> list[Finding]:
    token = settings.hubspot_access_token
    if token is None or not token.get_secret_value():
        return [_not_configured("hubspot.token", "HUBSPOT_ACCESS_TOKEN", settings)]
    api = Api(
        settings.hubspot_api_base,
        {"Authorization": f"Bearer {token.get_secret_value()}"},
        settings.paystream_doctor_timeout_s,
    )
    try:
        status, body = api.call(
            "POST",
            "/oauth/v2/private-apps/get/access-token-info",
            json={"tokenKey": token.get_secret_value()},
        )
        findings = [checks.hubspot_token_finding(status, body)]
        if findings[0].ok:
            findings.append(_hubspot_properties(api))
        return findings
    except Unanswered as exc:
        return [checks.unreachable("hubspot.token", "HubSpot", str(exc), "check HUBSPOT_API_BASE")]
    finally:
        api.close()


def _hubspot_properties(api: Api) -> Finding:
    wanted = contact_properties()
    held: dict[str, dict[str, Any] | None] = {}
    differences: dict[str, list[str]] = {}
    for prop in wanted:
        status, body = api.call("GET", f"/crm/v3/properties/contacts/{prop['name']}")
        held[prop["name"]] = body if status == 200 and isinstance(body, dict) else None
        if held[prop["name"]] is not None:
            differences[prop["name"]] = property_differences(prop, body)
    return checks.hubspot_property_findings(wanted, held, differences)


def zendesk_findings(settings: DoctorSettings) -> list[Finding]:
    if not (settings.zendesk_api_base and settings.zendesk_email and settings.zendesk_api_token):
        return [_not_configured("zendesk.credentials", "ZENDESK_API_TOKEN", settings)]
    auth = (
        f"{settings.zendesk_email}/token",
        settings.zendesk_api_token.get_secret_value(),
    )
    api = Api(settings.zendesk_api_base, {}, settings.paystream_doctor_timeout_s, auth=auth)
    try:
        return [checks.zendesk_user_finding(*api.call("GET", "/api/v2/users/me"))]
    except Unanswered as exc:
        return [
            checks.unreachable("zendesk.credentials", "Zendesk", str(exc), "check ZENDESK_API_BASE")
        ]
    finally:
        api.close()


#: what the signed probe carries: no ``billing_state.changed``, so the app changes nothing
PROBE = b'{"type":"paystream.doctor_probe"}'


def app_webhook_findings(settings: DoctorSettings) -> list[Finding]:
    """Probe the product's notification endpoint (unsigned, then signed), if one is set."""
    target = settings.app_webhook
    if target is None:
        return [
            checks.ok("notifications.endpoint", "not checked (PAYSTREAM_APP_WEBHOOK_URL not set)")
        ]
    url, secrets = target
    base, path = split_url(url)
    api = Api(base, {"Content-Type": "application/json"}, settings.paystream_doctor_timeout_s)
    try:
        unsigned, _ = api.call("POST", path, content=PROBE)
        signature = sign_header(PROBE, secrets)
        signed, _ = api.call("POST", path, content=PROBE, headers={APP_SIGNATURE_HEADER: signature})
    except Unanswered as exc:
        return [
            checks.unreachable(
                "notifications.endpoint", "the app", str(exc), "check PAYSTREAM_APP_WEBHOOK_URL"
            )
        ]
    finally:
        api.close()
    return [checks.app_webhook_finding(unsigned, signed)]


def _not_configured(check: str, variable: str, settings: DoctorSettings) -> Finding:
    if settings.writes_enabled:
        return checks.problem(
            check,
            f"{variable} is not set while PAYSTREAM_SINK_WRITES=enabled",
            f"set {variable} (and its base URL) for the sinks",
        )
    return checks.ok(check, f"not checked ({variable} not set; sinks are dry-run)")


# ------------------------------------------------------------------------------ pipeline


def topic_states(settings: DoctorSettings, timeout: float) -> dict[str, TopicState]:
    """Partitions, replication and config of every topic of the prefix, from the broker."""
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    from paystream.runtime.topics_admin import admin_client

    with admin_client(settings.admin_config(log_level=0)) as admin:
        listed = admin.list_topics(timeout=timeout).topics
        names = [
            n for n, t in listed.items() if n.startswith(settings.topic_prefix) and not t.error
        ]
        configs: dict[str, dict[str, str]] = {}
        try:
            resources = [ConfigResource("topic", n) for n in names]
            futures = admin.describe_configs(resources, request_timeout=timeout) if names else {}
            for resource, future in futures.items():
                entries = future.result(timeout=timeout)
                configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
        except Exception:
            configs = {}
        states = {}
        for name in names:
            partitions = listed[name].partitions
            first = partitions[min(partitions)] if partitions else None
            states[name] = TopicState(
                len(partitions), len(first.replicas) if first else 0, configs.get(name, {})
            )
        return states


def pipeline_findings(settings: DoctorSettings) -> list[Finding]:
    from confluent_kafka import KafkaException

    findings = environment_findings()
    try:
        states = topic_states(settings, 10.0)
        findings.append(
            checks.topic_findings(
                settings.topics.specs(), states, settings.paystream_replication_factor
            )
        )
    except (KafkaException, PaystreamError) as exc:
        # a PaystreamError's text names the setting (no secret); Kafka's only by its class
        why = str(exc) if isinstance(exc, PaystreamError) else type(exc).__name__
        findings.append(
            checks.unreachable(
                "pipeline.topics", "the broker", why, "check KAFKA_BOOTSTRAP_SERVERS"
            )
        )
    findings.append(_store_finding(settings))
    status = Status(15)
    read_lag(settings, status)
    findings.append(checks.lag_finding(status.lag, settings.topic_prefix))
    return findings


def _store_finding(settings: DoctorSettings) -> Finding:
    check = "pipeline.metrics_store"
    try:
        reader = open_reader(settings)
    except MetricsStoreUnavailable as exc:
        return checks.problem(
            check, str(exc), "start `paystream sinks metrics` (embedded) or check CLICKHOUSE_URL"
        )
    try:
        reader.query("SELECT 1")
    except (MetricsStoreUnavailable, QueryRejected) as exc:
        return checks.problem(check, str(exc), "check the store's log")
    finally:
        reader.close()
    return checks.ok(check, "answers")


# ------------------------------------------------------------------------------ alerting


def alerting_findings(settings: DoctorSettings) -> list[Finding]:
    if not settings.prometheus_url:
        return [checks.ok("alerting", "not checked (PROMETHEUS_URL not set)")]
    api = Api(settings.prometheus_url, {}, settings.paystream_doctor_timeout_s)
    try:
        rules = checks.prometheus_rules_finding(*api.call("GET", "/api/v1/rules"))
        targets = checks.prometheus_targets_finding(
            *api.call("GET", "/api/v1/targets", params={"state": "active"})
        )
        return [rules, targets]
    except Unanswered as exc:
        return [checks.unreachable("alerting", "Prometheus", str(exc), "check PROMETHEUS_URL")]
    finally:
        api.close()


def collect(settings: DoctorSettings) -> list[Finding]:
    """Every check, in the order of the first hour: Stripe, CRM, helpdesk, the product's
    notifications, pipeline, alerts."""
    return (
        stripe_findings(settings, recent_event_findings)
        + hubspot_findings(settings)
        + zendesk_findings(settings)
        + app_webhook_findings(settings)
        + pipeline_findings(settings)
        + alerting_findings(settings)
    )
