"""The checks of ``paystream doctor``: plain data in (what an API answered), findings out.

Pure (no I/O, no settings), so each check is a table of cases in the tests. Every check
returns ``Finding`` values: ``ok`` with what was seen, or the problem with its fix. A
finding never carries a secret, an email or a raw customer id: only ids of Stripe events
and endpoints, URLs the operator configured, counts and names.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from paystream.vocabulary import APPLIED, DUPLICATE, IGNORED, STALE

#: where ingest takes Stripe's webhooks (``ingest.app``)
WEBHOOK_PATH = "/webhooks/stripe"
#: API versions whose event shapes the lifecycle reads: from the oldest fixture version on,
#: up to (not including) 2025-03-31.basil, which moved ``invoice.subscription`` under
#: ``invoice.parent`` (https://docs.stripe.com/changelog/basil)
OLDEST_READ_API_VERSION = "2020-03-02"
FIRST_UNREAD_API_VERSION = "2025-03-31"
#: host names of throw-away deployments and tunnels that must not receive live events
STALE_HOST_MARKS = ("preview", "staging", "ngrok", "trycloudflare", "localhost", ".local")
#: the HubSpot scopes the CRM sink and ``crm-setup`` use (SPEC §6)
HUBSPOT_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
)
#: the long-running processes Prometheus must scrape
PROCESSES = ("ingest", "worker", "sinks", "admin")
#: the labels both deployments give every process's scrape target (the k8s pods' labels,
#: as a kubernetes-pods job's labelmap names them; deploy/prometheus/prometheus.yml's)
NAME_LABEL = "app_kubernetes_io_name"
COMPONENT_LABEL = "app_kubernetes_io_component"
K8S_POD_LABEL = "__meta_kubernetes_pod_label_"
#: every alert rule of deploy/prometheus/alerts.yml is named Paystream...
RULE_MARK = "Paystream"
#: Zendesk roles that can create tickets through the API ("Users" API: end users cannot)
TICKET_ROLES = ("agent", "admin")
#: what the worker did with one event: its outcomes (``paystream.vocabulary``), and
#: doctor's own words for an event it never saw, one it processed before outcomes were
#: recorded (an earlier release's dedup entry), and one it could not ask about
NEVER_SEEN, PROCESSED, UNKNOWN = ("never seen", "processed", "unknown")
#: an event the worker has not seen yet that is younger than this is still on its way
#: (Stripe's first delivery attempt, ingest, the broker): named so, not a problem
IN_FLIGHT, IN_FLIGHT_S = ("not seen yet (in flight)", 120)


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``ok`` with what was seen, or a problem and its fix."""

    check: str
    ok: bool
    message: str
    fix: str = ""
    #: further lines (the events listed, the endpoints found)
    details: tuple[str, ...] = field(default_factory=tuple)


def ok(check: str, message: str, details: Iterable[str] = ()) -> Finding:
    return Finding(check, True, message, details=tuple(details))


def problem(check: str, message: str, fix: str, details: Iterable[str] = ()) -> Finding:
    return Finding(check, False, message, fix, tuple(details))


def unreachable(check: str, what: str, why: str, fix: str) -> Finding:
    """A source that could not be read: a problem naming it (the other checks still run)."""
    return problem(check, f"{what} not reachable ({why})", fix)


# ------------------------------------------------------------------------------ Stripe


def expected_webhook_url(public_url: str) -> str:
    return public_url.rstrip("/") + WEBHOOK_PATH


def is_stale_url(url: str) -> bool:
    """A URL no live endpoint should point at: loopback, private, preview or tunnel hosts."""
    host = (urlsplit(url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return any(mark in host for mark in STALE_HOST_MARKS)
    return address.is_loopback or address.is_private


def _name(endpoint: Mapping[str, Any]) -> str:
    return f"{endpoint.get('id')} {endpoint.get('url')}"


def webhook_endpoint_findings(
    endpoints: Sequence[Mapping[str, Any]],
    public_url: str | None,
    *,
    livemode: bool,
    handled: Sequence[str],
    event_api_version: str | None = None,
) -> list[Finding]:
    """The endpoint paystream needs: one, enabled, at the public URL, every handled type,
    an API version the pipeline reads; disabled, duplicate and stale endpoints named."""
    check = "stripe.endpoint"
    if not public_url:
        return [
            problem(
                check,
                "PAYSTREAM_PUBLIC_URL is not set: the endpoint cannot be checked",
                "set PAYSTREAM_PUBLIC_URL to the address Stripe reaches ingest at",
            )
        ]
    wanted = expected_webhook_url(public_url)
    ours = [e for e in endpoints if str(e.get("url", "")).rstrip("/") == wanted]
    enabled = [e for e in ours if e.get("status") == "enabled"]
    findings = [_endpoint_presence(check, wanted, ours, enabled)]
    if len(enabled) == 1:
        findings += [
            _enabled_events(enabled[0], handled),
            _api_version(enabled[0], event_api_version),
        ]
    findings += _other_endpoints(endpoints, wanted, livemode)
    return findings


def _endpoint_presence(
    check: str,
    wanted: str,
    ours: Sequence[Mapping[str, Any]],
    enabled: Sequence[Mapping[str, Any]],
) -> Finding:
    disabled = [e for e in ours if e.get("status") != "enabled"]
    if len(enabled) > 1:
        return problem(
            check,
            f"{len(enabled)} enabled endpoints point at {wanted}: "
            "Stripe delivers every event to each",
            "keep one and delete the others (Dashboard > Developers > Webhooks); rotate "
            "STRIPE_WEBHOOK_SECRETS to the one kept",
            [_name(e) for e in enabled],
        )
    if not enabled:
        return problem(
            check,
            f"no enabled webhook endpoint points at {wanted}"
            + (f" ({len(disabled)} disabled)" if disabled else ""),
            "re-enable it after fixing why deliveries failed, then `paystream reconcile`"
            if disabled
            else f"add an endpoint for {wanted} (Dashboard > Developers > Webhooks) with "
            "the events the README lists",
            [_name(e) for e in disabled],
        )
    return ok(check, f"{enabled[0].get('id')} enabled at {wanted}")


def _enabled_events(endpoint: Mapping[str, Any], handled: Sequence[str]) -> Finding:
    check = "stripe.endpoint.events"
    events = [str(e) for e in endpoint.get("enabled_events") or []]
    if "*" in events:
        return ok(check, "all events enabled (*)")
    missing = [t for t in handled if t not in events]
    if missing:
        return problem(
            check,
            f"{len(missing)} handled event types not enabled: {', '.join(missing)}",
            f"add them to endpoint {endpoint.get('id')} (Dashboard > Developers > Webhooks > "
            "Update details), then `paystream reconcile --since 30d` for what was missed",
        )
    return ok(check, f"all {len(handled)} handled event types enabled")


def reads_api_version(version: str) -> bool:
    day = version[:10]
    return OLDEST_READ_API_VERSION <= day < FIRST_UNREAD_API_VERSION


def _api_version(endpoint: Mapping[str, Any], event_api_version: str | None) -> Finding:
    check = "stripe.endpoint.api_version"
    version = endpoint.get("api_version") or event_api_version
    source = "endpoint" if endpoint.get("api_version") else "account default, seen on events"
    if not version:
        return ok(check, "the account's default version (no recent event to read it from)")
    if reads_api_version(str(version)):
        return ok(check, f"{version} ({source})")
    return problem(
        check,
        f"events are rendered as {version} ({source}); the pipeline reads "
        f"{OLDEST_READ_API_VERSION} up to before {FIRST_UNREAD_API_VERSION}",
        "create the endpoint with an api_version the pipeline reads (Stripe CLI: "
        "`stripe webhook_endpoints create --api-version ...`), move the secret, delete the old",
    )


def _other_endpoints(
    endpoints: Sequence[Mapping[str, Any]], wanted: str, livemode: bool
) -> list[Finding]:
    others = [e for e in endpoints if str(e.get("url", "")).rstrip("/") != wanted]
    stale = [e for e in others if e.get("status") == "enabled" and is_stale_url(str(e["url"]))]
    findings = []
    if stale and livemode:
        findings.append(
            problem(
                "stripe.endpoint.stale",
                f"{len(stale)} enabled live endpoint(s) point at a local, preview or tunnel URL",
                "delete them (Dashboard > Developers > Webhooks): live events and customer "
                "data go there",
                [_name(e) for e in stale],
            )
        )
    disabled = [e for e in others if e.get("status") != "enabled"]
    rest = [e for e in others if e not in stale and e not in disabled]
    if disabled or rest or (stale and not livemode):
        findings.append(
            ok(
                "stripe.endpoint.others",
                f"{len(others)} other endpoint(s): {len(disabled)} disabled",
                [f"{_name(e)} ({e.get('status')})" for e in others],
            )
        )
    return findings


def _age(seconds: float) -> str:
    """A ``--since`` value that covers ``seconds`` (rounded up to hours, then days)."""
    hours = max(1, int(-(-seconds // 3600)))
    return f"{hours}h" if hours < 48 else f"{-(-hours // 24)}d"


def failed_delivery_findings(events: Sequence[Mapping[str, Any]], now: float) -> Finding:
    """Events of the last days that Stripe did not deliver (``delivery_success=false``)."""
    check = "stripe.deliveries"
    if not events:
        return ok(check, "no failed delivery in the last 3 days")
    by_type = Counter(str(e.get("type")) for e in events)
    newest = max(events, key=lambda e: int(e.get("created") or 0))
    oldest = min(int(e.get("created") or now) for e in events)
    counts = ", ".join(f"{t} {n}" for t, n in by_type.most_common())
    return problem(
        check,
        f"{len(events)} event(s) not delivered in the last 3 days ({counts}); newest "
        f"{newest.get('id')} {newest.get('type')}",
        f"fix the endpoint (see stripe.endpoint), then `paystream reconcile --since "
        f"{_age(now - oldest)}`",
    )


def event_outcome(answer: Mapping[str, Any] | None) -> str:
    """What paystream did with one event, from the worker's answer to ``GET /events/{id}``
    (its dedup entry; None: the worker could not be asked or did not answer)."""
    if answer is None or not isinstance(answer.get("processed"), bool):
        return UNKNOWN
    if not answer["processed"]:
        return NEVER_SEEN
    if answer.get("repeated") is True:
        return DUPLICATE
    outcome = answer.get("outcome")
    return str(outcome) if outcome in (APPLIED, STALE, IGNORED) else PROCESSED


def recent_event_findings(
    events: Sequence[Mapping[str, Any]], outcomes: Mapping[str, str], now: float
) -> Finding:
    """The last payment events, each with what the pipeline did with it."""
    check = "stripe.recent_events"

    def outcome(event: Mapping[str, Any]) -> str:
        said = outcomes.get(str(event.get("id")), UNKNOWN)
        young = now - int(event.get("created") or 0) < IN_FLIGHT_S
        return IN_FLIGHT if said == NEVER_SEEN and young else said

    lines = [
        f"{e.get('id')} {e.get('type')} {_age(now - int(e.get('created') or now))} ago: "
        f"{outcome(e)}"
        for e in events
    ]
    counts = Counter(outcome(e) for e in events)
    summary = ", ".join(f"{o} {n}" for o, n in sorted(counts.items()))
    missing = [e for e in events if outcome(e) == NEVER_SEEN]
    if missing:
        oldest = min(int(e.get("created") or now) for e in missing)
        return problem(
            check,
            f"last {len(events)} events: {summary}",
            f"`paystream reconcile --since {_age(now - oldest)}` publishes the ones never seen",
            lines,
        )
    if counts.get(UNKNOWN):
        return problem(
            check,
            f"last {len(events)} events: {summary}",
            "set PAYSTREAM_WORKER_URL and PAYSTREAM_API_TOKEN so the worker can be asked",
            lines,
        )
    return ok(check, f"last {len(events)} events: {summary or 'none listed'}", lines)


# ------------------------------------------------------------------------- CRM, helpdesk


def hubspot_token_finding(status: int, body: Any) -> Finding:
    """The private app's token introspection answer: works, not expired, the sink's scopes."""
    check = "hubspot.token"
    data = body if isinstance(body, dict) else {}
    if status == 401:
        expired = data.get("category") == "EXPIRED_AUTHENTICATION"
        return problem(
            check,
            "HUBSPOT_ACCESS_TOKEN has expired"
            if expired
            else "HUBSPOT_ACCESS_TOKEN is revoked or not a token of this account",
            "HubSpot > Settings > Integrations > Private apps > the paystream app > rotate "
            "the token, then set HUBSPOT_ACCESS_TOKEN on the sinks",
        )
    if status != 200:
        return problem(check, f"HubSpot answered {status}", "retry later; check status.hubspot.com")
    scopes = {str(s) for s in data.get("scopes") or []}
    missing = [s for s in HUBSPOT_SCOPES if s not in scopes]
    if missing:
        return problem(
            check,
            f"the token lacks scopes {', '.join(missing)}",
            "add them to the private app (Scopes tab), then use its new token",
        )
    return ok(check, f"works for account {data.get('hubId')} with the sink's scopes")


def hubspot_property_findings(
    wanted: Sequence[Mapping[str, Any]],
    held: Mapping[str, Mapping[str, Any] | None],
    differences: Mapping[str, Sequence[str]],
) -> Finding:
    """Every custom property exists as ``crm-setup`` makes it (``differences``: its
    ``property_differences`` per property that exists)."""
    check = "hubspot.properties"
    missing = [str(p["name"]) for p in wanted if held.get(str(p["name"])) is None]
    differ = [d for p in wanted for d in differences.get(str(p["name"]), ())]
    if missing or differ:
        details = [f"missing: {name}" for name in missing] + list(differ)
        return problem(
            check,
            f"{len(missing)} missing, {len(differ)} differing from what the sink writes",
            "`paystream crm-setup` creates the missing ones and names what to change by hand",
            details,
        )
    return ok(check, f"all {len(wanted)} custom contact properties as crm-setup makes them")


def zendesk_user_finding(status: int, body: Any) -> Finding:
    """``GET /api/v2/users/me``: the credentials work for an active agent."""
    check = "zendesk.credentials"
    if status == 401:
        return problem(
            check,
            "Zendesk refused the credentials: the API token is expired, revoked or not "
            "ZENDESK_EMAIL's",
            "Zendesk Admin Center > Apps and integrations > Zendesk API: make a token, set "
            "ZENDESK_API_TOKEN (and ZENDESK_EMAIL to its agent)",
        )
    if status != 200:
        return problem(check, f"Zendesk answered {status}", "check ZENDESK_API_BASE")
    user = body.get("user") if isinstance(body, dict) else None
    user = user if isinstance(user, dict) else {}
    role, active = str(user.get("role") or ""), bool(user.get("active"))
    # "Users" API (https://developer.zendesk.com/api-reference/ticketing/users/users/):
    # active is false once the user is deleted; a suspended user's tickets are suspended
    suspended = user.get("suspended") is True
    if user.get("id") is None or role not in TICKET_ROLES or not active or suspended:
        state = "suspended" if suspended else "active" if active else "inactive"
        return problem(
            check,
            f"the credentials authenticate a{'n' if state[0] in 'ai' else ''} {state} "
            f"{role or 'anonymous'} user, who cannot create tickets",
            "use an active agent's email and API token",
        )
    return ok(check, f"an active {role} can create tickets")


# ------------------------------------------------------------------------------ notifications

#: the app's route (the example's ``app/api/paystream/notifications/route.ts``)
NOTIFICATION_ROUTE = "examples/nextjs/app/api/paystream/notifications/route.ts"


def app_webhook_finding(unsigned: int, signed: int) -> Finding:
    """Two probes of ``PAYSTREAM_APP_WEBHOOK_URL``, neither a notification: ``unsigned``
    is the status of a POST without a signature, ``signed`` of one signed with the
    configured secrets whose body is no ``billing_state.changed``.

    A working endpoint refuses the first (401, or any 4xx but 404) and accepts the second's
    signature (2xx, or 400/422 for the body it does not know). The sink follows no redirect
    and dead-letters a 404, so both are named.
    """
    check = "notifications.endpoint"
    if 300 <= unsigned < 400 or 300 <= signed < 400:
        return problem(
            check,
            "the endpoint answers with a redirect, which the sink does not follow",
            "set PAYSTREAM_APP_WEBHOOK_URL to the URL it redirects to (mind a trailing slash)",
        )
    if 404 in (unsigned, signed):
        return problem(
            check,
            "the endpoint answers 404: no route there, or notifications are off in the app",
            "check the URL's path, and set PAYSTREAM_APP_WEBHOOK_SECRET in the app too",
        )
    if 200 <= unsigned < 300:
        return problem(
            check,
            "the endpoint accepts a body without a valid signature: anybody could send it one",
            f"verify Paystream-Signature with verifyPaystreamWebhook ({NOTIFICATION_ROUTE})",
        )
    if signed in (401, 403):
        return problem(
            check,
            f"the endpoint refuses paystream's signature ({signed}): the secrets differ",
            "set the same PAYSTREAM_APP_WEBHOOK_SECRET on both sides",
        )
    if 400 <= unsigned < 500 and (200 <= signed < 300 or signed in (400, 422)):
        return ok(check, "reachable; refuses unsigned bodies and accepts paystream's signature")
    return problem(
        check,
        f"the endpoint answers {unsigned} unsigned and {signed} signed",
        "see the app's logs: a 5xx is retried, a 4xx dead-letters every notification",
    )


# ------------------------------------------------------------------------------ pipeline


@dataclass(frozen=True)
class TopicState:
    """What the broker says about one topic."""

    partitions: int
    replication: int
    config: Mapping[str, str]


def topic_findings(
    specs: Sequence[Any], found: Mapping[str, TopicState], replication: int
) -> Finding:
    """Every topic exists with its partitions, replication and cleanup/retention config
    (``specs``: ``schemas.topics.TopicSpec`` values)."""
    check = "pipeline.topics"
    issues = []
    for spec in specs:
        state = found.get(spec.name)
        if state is None:
            issues.append(f"{spec.name}: missing")
            continue
        if state.partitions != spec.partitions:
            issues.append(f"{spec.name}: {state.partitions} partitions, needs {spec.partitions}")
        if state.replication < replication:
            issues.append(f"{spec.name}: replication {state.replication}, needs {replication}")
        for key in ("cleanup.policy", "retention.ms"):
            want, have = spec.config.get(key), state.config.get(key)
            if want is not None and have is not None and want != have:
                issues.append(f"{spec.name}: {key}={have}, needs {want}")
    if issues:
        return problem(
            check,
            f"{len(issues)} topic problem(s)",
            "`paystream topics` creates missing topics; change partitions or config with the "
            "cluster's tools (kafka-configs.sh), never by deleting a topic with data",
            issues,
        )
    return ok(check, f"all {len(specs)} topics as `paystream topics` makes them")


def lag_finding(lag: Mapping[str, Mapping[str, int]] | None, prefix: str) -> Finding:
    check = "pipeline.lag"
    if lag is None:
        return problem(check, "the broker did not answer", "check KAFKA_BOOTSTRAP_SERVERS")
    worker = prefix + "worker"
    if worker not in lag:
        return problem(
            check,
            "the worker's consumer group has committed nothing",
            "start `paystream worker` (or check its log: it commits once it has processed)",
        )
    lines = [
        f"{group.removeprefix(prefix)}: {sum(topics.values())}"
        for group, topics in sorted(lag.items())
    ]
    return ok(check, ", ".join(lines))


def prometheus_rules_finding(status: int, body: Any) -> Finding:
    """``/api/v1/rules``: paystream's alert rules (``deploy/prometheus/alerts.yml``: each
    named ``Paystream...``, whatever the group is called) are loaded and healthy."""
    check = "alerting.rules"
    if status != 200 or not isinstance(body, dict):
        return problem(check, f"Prometheus answered {status}", "check PROMETHEUS_URL")
    groups = (body.get("data") or {}).get("groups") or []
    rules = [
        r
        for g in groups
        for r in g.get("rules") or []
        if str(r.get("name", "")).startswith(RULE_MARK)
    ]
    broken = [r for r in rules if r.get("health") not in ("ok", "unknown")]
    if not rules:
        return problem(
            check,
            "no paystream alert rule loaded",
            "add deploy/prometheus/alerts.yml to rule_files and reload Prometheus",
        )
    if broken:
        return problem(
            check,
            f"{len(broken)} of {len(rules)} rules unhealthy",
            "read each rule's lastError; `promtool check rules deploy/prometheus/alerts.yml`",
            [f"{r.get('name')}: {r.get('lastError', '')}" for r in broken],
        )
    return ok(check, f"{len(rules)} paystream rules loaded and healthy")


def target_process(target: Mapping[str, Any]) -> str | None:
    """Which paystream process a scrape target is, by what both deployments label it with:
    the pods' ``app.kubernetes.io/component`` as a cluster's ``kubernetes-pods`` job maps
    it (``labelmap`` of ``__meta_kubernetes_pod_label_(.+)``: "any unsupported characters
    converted to an underscore", https://prometheus.io/docs/prometheus/latest/configuration/configuration/#kubernetes_sd_config),
    or still undropped among the discovered labels; deploy/prometheus/prometheus.yml sets
    the same two labels on its static targets. A job named ``paystream-<process>`` (an
    older copy of that file) counts too."""
    labels = target.get("labels") or {}
    found = target.get("discoveredLabels") or {}
    for source, prefix in ((labels, ""), (found, K8S_POD_LABEL)):
        name = source.get(prefix + NAME_LABEL)
        component = source.get(prefix + COMPONENT_LABEL)
        if name == "paystream" and component in PROCESSES:
            return str(component)
    job = str(labels.get("job") or target.get("scrapePool") or "")
    process = job.removeprefix("paystream-")
    return process if job.startswith("paystream-") and process in PROCESSES else None


def prometheus_targets_finding(status: int, body: Any) -> Finding:
    """``/api/v1/targets``: every long-running process has a target, and each is up."""
    check = "alerting.targets"
    if status != 200 or not isinstance(body, dict):
        return problem(check, f"Prometheus answered {status}", "check PROMETHEUS_URL")
    active = (body.get("data") or {}).get("activeTargets") or []
    ours = [(target_process(t), t) for t in active]
    seen = {p for p, _t in ours if p}
    down = [(p, t) for p, t in ours if p and t.get("health") != "up"]
    missing = [p for p in PROCESSES if p not in seen]
    if missing or down:
        return problem(
            check,
            "; ".join(
                ([f"not scraped: {', '.join(missing)}"] if missing else [])
                + ([f"{len(down)} target(s) down"] if down else [])
            ),
            "scrape each process's /metrics (deploy/prometheus/prometheus.yml, or the pods' "
            "prometheus.io/* annotations under a kubernetes-pods job) and check each "
            "target's lastError from Prometheus's network",
            [
                f"{p}: {t.get('scrapeUrl')} {t.get('health')} {t.get('lastError', '')}".strip()
                for p, t in down
            ],
        )
    up = Counter(p for p, _t in ours if p)
    return ok(
        check,
        "every process scraped and up: " + ", ".join(f"{p} {up[p]}" for p in PROCESSES),
    )
