"""Consumer lag per group and partition, from committed offsets (the broker's view).

``read_lag`` asks the broker for every consumer group of this prefix: its committed offset
per partition, the partition's end offset, and how many members the group has now. Lag is
end minus committed, so it is the group's backlog whatever its members think they hold:
a member that stopped fetching a partition it owns (a pause never undone) shows as a lag
that grows while the group's members are alive, which is what ``PaystreamConsumerLagGrowing``
pages on (its members say they are alive themselves:
``paystream_consumer_assigned_partitions{group}``, since the embedded broker describes no
group's members). ``export_lag`` keeps ``paystream_consumer_lag{group,topic,partition}``
current in a process's metrics.

The embedded broker reports end offsets wrongly (its high-watermarks lag behind): its lag
figures are approximate, said beside them (``EMBEDDED_LAG_NOTE``). A real Kafka's are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from paystream.settings import CommonSettings

if TYPE_CHECKING:
    from paystream.metrics import PaystreamMetrics

EMBEDDED_LAG_NOTE = (
    "the embedded broker reports end offsets wrongly: lag is approximate; "
    "use Apache Kafka for exact figures"
)

log = structlog.get_logger("lag")


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        # A group with no commit yet has everything ahead of it.
        start = self.committed if self.committed >= 0 else 0
        return max(0, self.end - start)


@dataclass(frozen=True)
class GroupLag:
    """One group: its partitions' lag and its members now (-1: the broker did not say)."""

    group: str
    partitions: tuple[PartitionLag, ...]
    members: int

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)


def group_lag(partitions: Iterable[PartitionLag]) -> dict[str, int]:
    """Lag per topic of one group."""
    out: dict[str, int] = {}
    for p in partitions:
        out[p.topic] = out.get(p.topic, 0) + p.lag
    return dict(sorted(out.items()))


def read_lag(settings: CommonSettings, timeout: float = 5.0) -> dict[str, GroupLag]:
    """Every consumer group of the prefix with its partitions' lag and its members.

    Raises ``KafkaException``/``OSError`` when the broker does not answer, ``SettingsError``
    when the Kafka settings are incomplete.
    """
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.admin_config(log_level=0))
    prefix = settings.topic_prefix
    admin.list_topics(timeout=timeout)  # raises when the broker does not answer
    listed = admin.list_consumer_groups(request_timeout=timeout).result()
    groups = sorted(g.group_id for g in listed.valid if g.group_id.startswith(prefix))
    # the embedded broker describes no group's members (it answers none): unknown there
    members = {} if settings.embedded_broker else _members(admin, groups, timeout)
    out: dict[str, GroupLag] = {}
    probe = Consumer(settings.consumer_config(prefix + "status-probe", log_level=0))
    try:
        for group in groups:
            futures = admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=timeout
            )
            committed = futures[group].result().topic_partitions or []
            parts = []
            for tp in committed:
                if not tp.topic.startswith(prefix):
                    continue
                _, high = probe.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=timeout
                )
                parts.append(PartitionLag(tp.topic, tp.partition, tp.offset, high))
            out[group] = GroupLag(group, tuple(parts), members.get(group, -1))
    finally:
        probe.close()
    return out


def _members(admin: object, groups: list[str], timeout: float) -> dict[str, int]:
    """Members of each group now; a group the broker does not describe is left out."""
    if not groups:
        return {}
    from confluent_kafka import KafkaException

    futures = admin.describe_consumer_groups(groups, request_timeout=timeout)  # type: ignore[attr-defined]
    out: dict[str, int] = {}
    for group, future in futures.items():
        try:
            out[group] = len(future.result().members)
        except KafkaException:
            continue
    return out


def publish(metrics: PaystreamMetrics, lag: dict[str, GroupLag]) -> None:
    """Set the lag gauges to ``lag`` (series of groups or partitions now gone are dropped)."""
    metrics.consumer_lag.clear()
    for group in lag.values():
        for p in group.partitions:
            metrics.consumer_lag.labels(group.group, p.topic, str(p.partition)).set(p.lag)


def export_lag(
    settings: CommonSettings, metrics: PaystreamMetrics, stop: threading.Event, interval_s: float
) -> None:
    """Read the lag every ``interval_s`` into the metrics until ``stop`` (a thread's body)."""
    from confluent_kafka import KafkaException

    from paystream.errors import PaystreamError

    while not stop.is_set():
        try:
            publish(metrics, read_lag(settings))
        except (KafkaException, OSError, PaystreamError) as exc:
            # the series stay as last read; Prometheus sees them go stale only if we stop
            log.warning("lag_unreadable", error=type(exc).__name__)
        stop.wait(interval_s)
