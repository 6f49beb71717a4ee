"""Topic names, partitions and retention — the one place every stage reads them from.

Every name carries the prefix (``paystream.<mode>.`` by default) so test and live never
share a topic. Topics that must be co-partitioned (everything keyed by customer id) share
one partition count. The Faust worker's table changelogs are listed here too, because a
broker that does not auto-create topics (and Apache Kafka in production, where
auto-creation is off) needs them created with the same partition count up front.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000

#: Faust tables of the worker; their changelog topics are created by ``paystream topics``.
WORKER_TABLES: tuple[str, ...] = ("dedup", "customers")


@dataclass(frozen=True)
class TopicSpec:
    """What ``paystream topics`` creates or checks."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    """All topic names for one prefix."""

    prefix: str
    partitions: int = 4
    replication: int = 1
    #: ``retention.ms`` of ``sink.dlq`` (``PAYSTREAM_DLQ_RETENTION``, default 30 days)
    dlq_retention_ms: int = 30 * DAY_MS

    @property
    def stripe_events(self) -> str:
        return self.prefix + "stripe.events"

    @property
    def app_events(self) -> str:
        return self.prefix + "app.events"

    @property
    def customer_lifecycle(self) -> str:
        return self.prefix + "customer.lifecycle"

    @property
    def sink_crm(self) -> str:
        return self.prefix + "sink.crm"

    @property
    def sink_helpdesk(self) -> str:
        return self.prefix + "sink.helpdesk"

    @property
    def sink_results(self) -> str:
        return self.prefix + "sink.results"

    @property
    def sink_dlq(self) -> str:
        return self.prefix + "sink.dlq"

    @property
    def admin_exceptions(self) -> str:
        """The exception queue's decisions per row (retrying, dismissed, resolved)."""
        return self.prefix + "admin.exceptions"

    @property
    def admin_sessions(self) -> str:
        """Admin sign-outs: one record per ended session, one per "sign out everywhere"."""
        return self.prefix + "admin.sessions"

    @property
    def crm_contacts(self) -> str:
        """The CRM sink's contact ids: one record per Stripe customer (``contact_id``)."""
        return self.prefix + "sink.crm.contacts"

    @property
    def worker_app_id(self) -> str:
        """Faust app id (also the worker's consumer group and changelog prefix)."""
        return self.prefix + "worker"

    def changelog(self, table: str) -> str:
        return f"{self.worker_app_id}-{table}-changelog"

    def specs(self) -> list[TopicSpec]:
        week = {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)}
        dlq = {"cleanup.policy": "delete", "retention.ms": str(self.dlq_retention_ms)}
        compact = {"cleanup.policy": "compact"}
        # ingest accepts bodies up to 1 MiB; the envelope around one must still fit.
        events = {**week, "max.message.bytes": str(2 * 1024 * 1024)}
        n = self.partitions
        specs = [
            TopicSpec(self.stripe_events, n, events),
            TopicSpec(self.app_events, n, week),
            TopicSpec(self.customer_lifecycle, n, week),
            TopicSpec(self.sink_crm, n, week),
            # a longer retention keeps v1 helpdesk records longer: sinks/ticket_text.py's
            # trigger_facts says when its v1 reader may go
            TopicSpec(self.sink_helpdesk, n, week),
            TopicSpec(self.sink_results, n, week),
            # The exception queue of record: a dead letter expires after PAYSTREAM_DLQ_RETENTION
            # (its decision in admin.exceptions outlives it; docs/operations.md).
            TopicSpec(self.sink_dlq, n, dlq),
            # One record per row, the latest decision wins: compacted, never expires.
            TopicSpec(self.admin_exceptions, n, compact),
            # One record per ended session (keyed by it): compacted, read whole by every admin.
            TopicSpec(self.admin_sessions, 1, compact),
            # Each customer's HubSpot contact id (keyed like sink.crm): compacted, read whole
            # by every CRM sink replica, so known customers skip HubSpot's reads.
            TopicSpec(self.crm_contacts, n, compact),
            TopicSpec(f"{self.worker_app_id}-__assignor-__leader", 1, compact),
        ]
        specs += [TopicSpec(self.changelog(t), n, compact) for t in WORKER_TABLES]
        return specs
