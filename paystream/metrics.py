"""The Prometheus metrics of SPEC §7, built per registry (no import-time globals).

Every process creates one ``PaystreamMetrics`` in its app factory and serves its
registry on ``/metrics``; the names are the contract the alert rules and dashboards use.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5)


class PaystreamMetrics:
    """All paystream metrics registered in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._ingest(self.registry)
        self._worker(self.registry)
        self._sinks(self.registry)
        self._consumers_and_queue(self.registry)

    def _ingest(self, r: CollectorRegistry) -> None:
        """What ingest answers (``/webhooks/stripe``, ``/events/app``)."""
        self.webhook_requests = Counter(
            "paystream_webhook_requests",
            "Webhook requests by HTTP status and reason.",
            ["status", "reason"],
            registry=r,
        )
        self.webhook_duration = Histogram(
            "paystream_webhook_duration_seconds",
            "Time to answer a webhook request, publish included.",
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.app_event_requests = Counter(
            "paystream_app_event_requests",
            "First-party app event requests (POST /events/app) by HTTP status and reason.",
            ["status", "reason"],
            registry=r,
        )

    def _worker(self, r: CollectorRegistry) -> None:
        """What the worker and ``paystream reconcile`` processed."""
        self.events = Counter(
            "paystream_events",
            "Events processed by the worker by type, outcome (applied, duplicate, stale) and "
            "the API version Stripe rendered them at (empty for app events).",
            ["type", "outcome", "api_version"],
            registry=r,
        )
        self.worker_commits_held = Counter(
            "paystream_worker_commits_held",
            "Offset commits the worker held back because Faust asked to commit past an input "
            "record the agent had not handled (processors/offsets.py), by topic.",
            ["topic"],
            registry=r,
        )
        self.reconcile_recovered = Counter(
            "paystream_reconcile_recovered_events",
            "Events listed by `paystream reconcile` that the worker had never seen: Stripe "
            "never delivered them as a webhook (the delivery gap), by type.",
            ["type"],
            registry=r,
        )

    def _sinks(self, r: CollectorRegistry) -> None:
        """What the sinks sent and how long a change took to reach its destination."""
        self.sink_requests = Counter(
            "paystream_sink_requests",
            "Sink command outcomes by sink.",
            ["sink", "outcome"],
            registry=r,
        )
        self.sync_latency = Histogram(
            "paystream_sync_latency_seconds",
            "From Stripe's event created to the sink's acknowledgement; delivery: first, or "
            "retry/reconcile for deliveries a person or `paystream reconcile` caused.",
            ["sink", "delivery"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sink_paused = Gauge(
            "paystream_sink_paused",
            "1 while a sink waits out an API limit that lasts (HubSpot's daily limit).",
            ["sink", "reason"],
            registry=r,
        )

    def _consumers_and_queue(self, r: CollectorRegistry) -> None:
        """The consumer groups, the exception queue and the metrics store."""
        self.consumer_lag = Gauge(
            "paystream_consumer_lag",
            "Records a consumer group has not committed yet, by partition: end offset minus "
            "committed offset (approximate on the embedded broker, whose end offsets lag).",
            ["group", "topic", "partition"],
            registry=r,
        )
        self.consumer_assigned_partitions = Gauge(
            "paystream_consumer_assigned_partitions",
            "Partitions this process's consumers hold, by consumer group (a live member).",
            ["group"],
            registry=r,
        )
        self.exceptions_open = Gauge(
            "paystream_exceptions_open",
            "Commands in the exception queue (sink.dlq) not yet retried or dismissed.",
            registry=r,
        )
        self.manual_interventions = Counter(
            "paystream_manual_interventions",
            "Retries and dismissals done by a person in the exception queue.",
            ["action"],
            registry=r,
        )
        self.metrics_rows_stored = Counter(
            "paystream_metrics_rows_stored",
            "Rows the metrics sink stored in the metrics store, by table.",
            ["table"],
            registry=r,
        )
        self.metrics_store_errors = Counter(
            "paystream_metrics_store_errors",
            "Failed inserts into the metrics store (retried; nothing committed until stored).",
            registry=r,
        )
