"""``paystream status``: the one screen an operator reads first.

Webhook success rate (ingest's Prometheus counters), sync latency p50/p95 of first
deliveries over the last 15 minutes (the metrics store; dry-run calls, retries and events
``reconcile`` recovered left out, as the SLO alert does), open exceptions by sink and
reason (read from Kafka exactly as the admin view folds them, so both show the same
numbers), consumer lag per group (the broker: committed offsets against end offsets).

The store is reached directly at ``CLICKHOUSE_URL``; with the embedded store (chdb, which
one process only may open) it is read through the running metrics sink's loopback query
endpoint, published in ``PAYSTREAM_DATA_DIR/metrics-query.json``. Each section that cannot
be reached says so in one line; the others still print (exit status 1 then). Beside a
running ``paystream up`` (same data directory) the broker, topics and ports it chose are the
defaults (``paystream.runtime.running_stack``).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import Field

from paystream.command_help import command_parser
from paystream.errors import PaystreamError
from paystream.exception_queue.feed import read_queue
from paystream.runtime import lag
from paystream.runtime.lag import EMBEDDED_LAG_NOTE, group_lag
from paystream.runtime.running_stack import load_beside_running_stack
from paystream.runtime.store import (
    MetricsStore,
    MetricsStoreSettings,
    MetricsStoreUnavailable,
    QueryRejected,
    StoreReader,
)
from paystream.runtime.store_endpoint import HttpStoreReader, read_endpoint_file
from paystream.runtime.topic_feed import FeedNotLoaded
from paystream.settings import Environment, IngestPort


class StatusSettings(MetricsStoreSettings, IngestPort):
    """Where ``paystream status`` reads from."""

    #: a local tool (beside ``paystream up``): development unless told otherwise
    paystream_env: Environment = "development"
    #: ingest's Prometheus endpoint; default: this machine's ingest port
    paystream_status_ingest_metrics_url: str | None = Field(default=None, pattern=r"^https?://\S+$")

    @property
    def ingest_metrics_url(self) -> str:
        return (
            self.paystream_status_ingest_metrics_url
            or f"http://127.0.0.1:{self.paystream_ingest_port}/metrics"
        )


# --------------------------------------------------------------------------- pure core


@dataclass(frozen=True)
class WebhookFigures:
    """Webhook answers counted by ingest since it started."""

    total: float
    succeeded: float
    by_status: dict[str, float]

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.total if self.total else None


def webhook_figures(metrics_text: str) -> WebhookFigures:
    """Sum ``paystream_webhook_requests_total`` by status from a Prometheus exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    by_status: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "paystream_webhook_requests":
            continue
        for sample in family.samples:
            if sample.name == "paystream_webhook_requests_total":
                status = sample.labels.get("status", "?")
                by_status[status] = by_status.get(status, 0.0) + sample.value
    total = sum(by_status.values())
    ok = sum(v for s, v in by_status.items() if s.startswith("2"))
    return WebhookFigures(total, ok, dict(sorted(by_status.items())))


@dataclass
class Status:
    """Everything the screen shows; None where a source could not be read."""

    window_minutes: int
    webhooks: WebhookFigures | None = None
    webhooks_accepted_in_window: int | None = None
    latency: list[dict[str, Any]] | None = None
    exceptions: dict[str, int] | None = None
    lag: dict[str, dict[str, int]] | None = None
    lag_note: str | None = None
    problems: list[str] = field(default_factory=list)
    #: open exceptions by sink and reason, as the admin view counts them
    exceptions_by_reason: list[dict[str, Any]] | None = None
    #: per group: each partition's committed offset and lag
    lag_partitions: dict[str, list[dict[str, Any]]] | None = None
    #: per group: its members now (-1: the broker did not say)
    group_members: dict[str, int] | None = None


def duration(value: Any) -> str:
    """A latency for people: 420 ms, 1.9 s, 4m 05s, 2h 10m."""
    if value is None:
        return "-"
    v = float(value)
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 120:
        return f"{v:.1f} s"
    whole = round(v)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def render(status: Status, topic_prefix: str) -> str:
    """The terminal screen, plain text, one fact per line."""
    w = status.window_minutes
    lines = [f"paystream status  (topics {topic_prefix}*)", ""]
    if status.webhooks is None:
        lines.append("webhooks        unavailable (ingest /metrics not reachable)")
    elif status.webhooks.success_rate is None:
        lines.append("webhooks        no request since ingest started")
    else:
        f = status.webhooks
        rate = f.success_rate or 0.0
        detail = ", ".join(f"{s}: {int(n)}" for s, n in f.by_status.items() if n)
        lines.append(
            f"webhooks        success {rate:.2%} of {int(f.total)} since ingest started ({detail})"
        )
    if status.webhooks_accepted_in_window is not None:
        lines.append(
            f"                {status.webhooks_accepted_in_window} accepted in the last {w} min"
        )
    if status.latency is None:
        lines.append("sync latency    unavailable (metrics store not reachable)")
    elif not status.latency:
        lines.append(f"sync latency    no sync in the last {w} min")
    else:
        for i, row in enumerate(status.latency):
            head = "sync latency" if i == 0 else ""
            lines.append(
                f"{head:<16}{row['sink']:<9} p50 {duration(row['p50_s'])}  "
                f"p95 {duration(row['p95_s'])}  ({row['syncs']} syncs, last {w} min)"
            )
    if status.exceptions is None:
        lines.append("exceptions      unavailable (broker not reachable)")
    else:
        total = sum(status.exceptions.values())
        detail = ", ".join(f"{s} {n}" for s, n in sorted(status.exceptions.items()))
        lines.append(f"exceptions      {total} open" + (f" ({detail})" if detail else ""))
        for entry in status.exceptions_by_reason or []:
            lines.append(f"{'':<18}{entry['sink']:<9} {entry['reason_code']:<24} {entry['open']}")
    lines += _lag_lines(status, topic_prefix)
    for problem in status.problems:
        lines.append(f"! {problem}")
    return "\n".join(lines)


def _lag_lines(status: Status, topic_prefix: str) -> list[str]:
    """The screen's consumer lag: per group (and its members), per topic, per partition."""
    out: list[str] = []
    if status.lag is None:
        out.append("consumer lag    unavailable (broker not reachable)")
    elif not status.lag:
        out.append("consumer lag    no consumer group of this prefix has committed yet")
    else:
        for i, (group, topics) in enumerate(sorted(status.lag.items())):
            head = "consumer lag" if i == 0 else ""
            detail = ", ".join(f"{t.removeprefix(topic_prefix)} {n}" for t, n in topics.items())
            members = (status.group_members or {}).get(group, -1)
            alive = f" ({members} member{'' if members == 1 else 's'})" if members >= 0 else ""
            name = group.removeprefix(topic_prefix)
            out.append(f"{head:<16}{name}: {sum(topics.values())}{alive}")
            if detail:
                out.append(f"{'':<18}{detail}")
            lagging = [
                f"{p['topic'].removeprefix(topic_prefix)}/{p['partition']} {p['lag']}"
                for p in (status.lag_partitions or {}).get(group, [])
                if p["lag"]
            ]
            if lagging:
                out.append(f"{'':<18}by partition: {', '.join(lagging)}")
        if status.lag_note:
            out.append(f"{'':<16}note: {status.lag_note}")
    return out


def as_json(status: Status) -> str:
    data = asdict(status)
    if status.webhooks is not None:
        data["webhooks"]["success_rate"] = status.webhooks.success_rate
    return json.dumps(data, default=str, indent=2)


# --------------------------------------------------------------------------- shell


def latency_sql(database: str, minutes: int) -> str:
    """p50/p95 from Stripe created to sink acknowledgement per sink, last ``minutes``."""
    return (  # the database name is a validated identifier (settings pattern)
        "SELECT sink, count() AS syncs, "  # noqa: S608
        "quantileExact(0.5)(latency_s) AS p50_s, quantileExact(0.95)(latency_s) AS p95_s "
        "FROM (SELECT sink, (toUnixTimestamp64Milli(acked_at) - "
        "toInt64(toUnixTimestamp(event_created)) * 1000) / 1000. AS latency_s "
        f"FROM {database}.sink_attempts FINAL "
        "WHERE outcome = 'delivered' AND delivery = 'first' "
        f"AND acked_at >= now() - INTERVAL {int(minutes)} MINUTE) "
        "GROUP BY sink ORDER BY sink"
    )


def open_reader(settings: StatusSettings) -> StoreReader:
    """The store directly (a server), or through the metrics sink (embedded store)."""
    if settings.clickhouse_url is not None:
        from paystream.runtime.store import open_metrics_store

        url = settings.clickhouse_url.get_secret_value()
        try:
            client = open_metrics_store(url, settings.embedded_store_dir)
        except Exception as exc:
            raise MetricsStoreUnavailable(
                f"CLICKHOUSE_URL not reachable ({type(exc).__name__})"
            ) from None
        return MetricsStore(client, settings.store_database)
    url, token = read_endpoint_file(settings.query_endpoint_file)
    return HttpStoreReader(url, token)


def read_store(settings: StatusSettings, status: Status) -> None:
    db = settings.store_database
    minutes = status.window_minutes
    try:
        reader = open_reader(settings)
    except MetricsStoreUnavailable as exc:
        status.problems.append(f"metrics store: {exc}")
        return
    try:
        status.latency = reader.query(latency_sql(db, minutes)).dicts()
        accepted = reader.query(
            f"SELECT count() FROM {db}.webhook_events FINAL "  # noqa: S608
            f"WHERE received_at >= now() - INTERVAL {minutes} MINUTE"
        ).rows
        status.webhooks_accepted_in_window = int(accepted[0][0])
    except (MetricsStoreUnavailable, QueryRejected) as exc:
        status.problems.append(f"metrics store: {exc}")
    finally:
        reader.close()


def read_exceptions(settings: StatusSettings, status: Status) -> None:
    """Open exceptions as the admin view shows them: the same topics, the same fold."""
    try:
        settings.bootstrap_servers  # noqa: B018 - a missing setting is reported by read_lag
        queue = read_queue(settings, timeout=30)
    except FeedNotLoaded as exc:
        status.problems.append(f"exceptions: {exc}")
        return
    except PaystreamError:
        return
    counts = queue.counts()
    by_sink: dict[str, int] = {}
    for key, n in counts.items():
        by_sink[key.sink] = by_sink.get(key.sink, 0) + n
    status.exceptions = by_sink
    status.exceptions_by_reason = [
        {"sink": k.sink, "reason_code": k.reason_code, "open": n} for k, n in counts.items()
    ]


def read_webhooks(settings: StatusSettings, status: Status) -> None:
    url = settings.ingest_metrics_url
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our setting
            text = response.read().decode()
    except (OSError, ValueError) as exc:
        status.problems.append(f"ingest metrics at {url}: {type(exc).__name__}")
        return
    status.webhooks = webhook_figures(text)


def read_lag(settings: StatusSettings, status: Status, timeout: float = 5.0) -> None:
    from confluent_kafka import KafkaException

    try:
        groups = lag.read_lag(settings, timeout)
    except PaystreamError as exc:
        status.problems.append(str(exc))
        return
    except (KafkaException, OSError) as exc:
        status.problems.append(f"broker: {type(exc).__name__}")
        return
    status.lag = {name: group_lag(g.partitions) for name, g in groups.items()}
    status.lag_partitions = {
        name: [
            {"topic": p.topic, "partition": p.partition, "committed": p.committed, "lag": p.lag}
            for p in g.partitions
        ]
        for name, g in groups.items()
    }
    status.group_members = {name: g.members for name, g in groups.items()}
    if settings.embedded_broker:
        status.lag_note = EMBEDDED_LAG_NOTE


def collect(settings: StatusSettings, window_minutes: int = 15) -> Status:
    status = Status(window_minutes)
    read_webhooks(settings, status)
    read_store(settings, status)
    read_lag(settings, status)
    if status.lag is not None:  # the broker answered
        read_exceptions(settings, status)
    return status


def main(argv: list[str]) -> int:
    parser = command_parser("status")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--minutes", type=int, default=15, help="window of the store figures")
    args = parser.parse_args(argv)
    # Beside a running `paystream up`, its broker, topics and ports are the defaults.
    settings = load_beside_running_stack(StatusSettings)
    # Client libraries log connection failures themselves; the screen says it in one line.
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    status = collect(settings, max(1, args.minutes))
    print(as_json(status) if args.json else render(status, settings.topic_prefix))
    return 1 if status.problems else 0
