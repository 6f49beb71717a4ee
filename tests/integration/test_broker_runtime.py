"""The embedded broker and topic administration against the real broker."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from paystream.errors import BrokerStartError, TopicMismatchError
from paystream.runtime.broker import EmbeddedBroker, broker_reachable, free_port
from paystream.runtime.topics_admin import config_differences, ensure_topics, topic_configs
from schemas.topics import DAY_MS, Topics, TopicSpec


def test_topics_are_created_with_their_partitions_and_idempotently(kafka_bootstrap: str) -> None:
    topics = Topics(f"rt{uuid.uuid4().hex[:8]}.", partitions=3)
    created = ensure_topics(kafka_bootstrap, topics.specs())
    assert sorted(created) == sorted(s.name for s in topics.specs())
    assert ensure_topics(kafka_bootstrap, topics.specs()) == []
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert len(metadata.topics[topics.stripe_events].partitions) == 3
    assert len(metadata.topics[topics.changelog("customers")].partitions) == 3


def test_a_partition_mismatch_is_refused(kafka_bootstrap: str) -> None:
    name = f"mm{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, [TopicSpec(name, 2)])
    with pytest.raises(TopicMismatchError, match="has 2 partitions, expected 4"):
        ensure_topics(kafka_bootstrap, [TopicSpec(name, 4)])


def test_sink_dlq_gets_its_retention_and_an_older_one_is_reported(kafka_bootstrap: str) -> None:
    new = Topics(f"dl{uuid.uuid4().hex[:8]}.", partitions=1, dlq_retention_ms=2 * DAY_MS)
    (dlq,) = [s for s in new.specs() if s.name == new.sink_dlq]
    ensure_topics(kafka_bootstrap, [dlq])
    configs = topic_configs({"bootstrap.servers": kafka_bootstrap}, [dlq.name])
    assert configs[dlq.name]["retention.ms"] == str(2 * DAY_MS)
    assert config_differences([dlq], configs) == []
    wider = Topics(new.prefix, partitions=1, dlq_retention_ms=30 * DAY_MS)
    assert config_differences(wider.specs(), configs) == [
        f"{dlq.name}: retention.ms={2 * DAY_MS}, needs {30 * DAY_MS}"
    ]


def test_free_ports_stay_out_of_the_range_outgoing_connections_take() -> None:
    low, high = (int(p) for p in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert not [port for port in ports if low <= port <= high]
    for port in ports:  # each one can be bound by the service it is meant for
        with socket.socket() as service:
            service.bind(("127.0.0.1", port))


def test_a_broker_that_cannot_listen_fails_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log")
        with pytest.raises(BrokerStartError, match=f"port {port}"):
            broker.start(timeout=10)
        broker.stop()


def test_freeze_and_thaw(tmp_path: Path) -> None:
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        assert broker_reachable(broker.bootstrap_servers)
        broker.freeze()
        assert not broker_reachable(broker.bootstrap_servers, timeout=1.0)
        broker.thaw()
        assert broker_reachable(broker.bootstrap_servers, timeout=5.0)
    assert not broker_reachable(broker.bootstrap_servers, timeout=0.5)
