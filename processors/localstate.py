"""Whether the worker may keep its local RocksDB tables across a restart.

The tables' changelog topics are the record; the local files are a cache of them. The cache
may be kept only when it is known to equal a prefix of the changelogs:

* the previous run ended cleanly: every table write it made was flushed to its changelog
  (a SIGKILL can leave local writes whose changelog records were never acknowledged, and
  keeping those would let this copy drift from the one another worker rebuilds), and it
  noted the last changelog offset it wrote per partition;
* the changelogs are the same topics: same cluster id and same topic ids. A broker that
  restarted without its data (the embedded broker keeps everything in memory), or a topic
  deleted and re-created, gives new topic ids, and local state would poison the tables.

Then Faust's recovery replays each changelog partition only after the offset the local
files already hold (``PublishedTable.persisted_offset``), which rebuilds exactly what is
missing (e.g. what another worker wrote while this one was down). Otherwise the files are
wiped and every changelog is replayed from its start, as on a first start.

The marker is read and deleted at start (a crash later leaves none) and written at a clean
exit; the decision is a pure function of the marker and the broker's identity.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "clean-shutdown.json"
VERSION = 1


@dataclass(frozen=True)
class BrokerIdentity:
    """What tells one copy of the changelog topics from another."""

    cluster_id: str | None
    #: changelog topic → (topic id, partition count)
    topics: Mapping[str, tuple[str, int]]


@dataclass(frozen=True)
class CleanShutdown:
    """Noted by a worker that exited cleanly with everything flushed."""

    identity: BrokerIdentity
    #: (changelog topic, partition) → last offset this run wrote (the local files hold it)
    offsets: Mapping[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    keep: bool
    reason: str


def decide(marker: CleanShutdown | None, broker: BrokerIdentity | None) -> Decision:
    """Keep the local tables only when they are known to match the broker's changelogs."""
    if marker is None:
        return Decision(False, "no clean shutdown recorded (first start, crash or kill)")
    if broker is None:
        return Decision(False, "the broker's topic ids are unknown")
    if marker.identity.cluster_id != broker.cluster_id:
        return Decision(False, "another Kafka cluster")
    if not broker.topics or marker.identity.topics != broker.topics:
        return Decision(False, "changelog topics re-created (broker restarted without its data?)")
    return Decision(True, "local tables match the changelogs")


def resume_offsets(marker: CleanShutdown, topic: str) -> dict[int, int]:
    """Partition → last offset the local files hold, for one changelog topic."""
    return {p: o for (t, p), o in marker.offsets.items() if t == topic}


# ------------------------------------------------------------------------------ the marker
def _to_json(marker: CleanShutdown) -> dict[str, Any]:
    return {
        "version": VERSION,
        "cluster_id": marker.identity.cluster_id,
        "topics": {t: [tid, n] for t, (tid, n) in sorted(marker.identity.topics.items())},
        "offsets": [[t, p, o] for (t, p), o in sorted(marker.offsets.items())],
    }


def _from_json(data: Any) -> CleanShutdown | None:
    try:
        if data["version"] != VERSION:
            return None
        topics = {str(t): (str(v[0]), int(v[1])) for t, v in data["topics"].items()}
        offsets = {(str(t), int(p)): int(o) for t, p, o in data["offsets"]}
        cluster = data["cluster_id"]
        return CleanShutdown(
            BrokerIdentity(None if cluster is None else str(cluster), topics), offsets
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def take_marker(data_dir: Path) -> CleanShutdown | None:
    """Read and delete the marker: from now on, only a clean exit writes a new one."""
    path = data_dir / MARKER
    try:
        text = path.read_text()
    except OSError:
        return None
    path.unlink(missing_ok=True)
    try:
        return _from_json(json.loads(text))
    except ValueError:
        return None


def write_marker(data_dir: Path, marker: CleanShutdown) -> None:
    """Write the marker atomically (a torn file reads as no marker)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(_to_json(marker)))
    os.replace(tmp, data_dir / MARKER)


# ------------------------------------------------------------------------------ the broker
def broker_identity(
    admin_config: Mapping[str, Any], topics: Iterable[str], timeout_s: float = 10.0
) -> BrokerIdentity | None:
    """Cluster id and topic ids of ``topics``; None when the broker cannot tell."""
    from confluent_kafka import KafkaException, TopicCollection

    from paystream.runtime.topics_admin import admin_client

    names = sorted(set(topics))
    try:
        with admin_client(admin_config) as admin:
            cluster_id = admin.list_topics(timeout=timeout_s).cluster_id
            described = admin.describe_topics(TopicCollection(names), request_timeout=timeout_s)
            found: dict[str, tuple[str, int]] = {}
            for name, future in described.items():
                description = future.result(timeout_s)
                if description.topic_id is None:
                    return None
                found[name] = (str(description.topic_id), len(description.partitions))
    except (KafkaException, TimeoutError, ValueError):
        return None
    return BrokerIdentity(cluster_id, found)


# ------------------------------------------------------------------ embedded broker end offsets
def true_end_offsets(
    consumer_config: Mapping[str, Any],
    reported: Mapping[tuple[str, int], int],
    timeout_s: float = 10.0,
) -> dict[tuple[str, int], int]:
    """End offsets corrected for the embedded broker, which reports the base offset of a
    partition's last record batch + 1 instead of its last offset + 1.

    Faust's recovery reads a changelog until the reported end, so with those figures it
    stops before the last batch's later records (and a kept table would skip them). The
    last batch is read once from its base offset; its last offset + 1 is the real end.
    Hand-written because no client library knows this broker's quirk.
    """
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    ends = dict(reported)
    todo = {tp: offset for tp, offset in reported.items() if offset > 0}
    if not todo:
        return ends
    config = dict(consumer_config)
    config.update(
        {
            "group.id": f"paystream-end-offsets-{os.getpid()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer = Consumer(config)
    pending = set(todo)
    deadline = time.monotonic() + timeout_s
    try:
        consumer.assign([TopicPartition(t, p, offset - 1) for (t, p), offset in todo.items()])
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.1):
                tp = (str(message.topic()), int(message.partition() or 0))
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(tp)
                    continue
                ends[tp] = max(ends[tp], int(message.offset() or 0) + 1)
    finally:
        consumer.close()
    return ends
