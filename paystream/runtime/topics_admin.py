"""Create or check every topic with its partitions and config (``paystream topics``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from paystream.errors import TopicMismatchError
from paystream.settings import LIBRDKAFKA_LOGS
from schemas.topics import TopicSpec


def ensure_topics(
    client: str | Mapping[str, Any],
    specs: Iterable[TopicSpec],
    replication: int = 1,
    timeout: float = 15.0,
) -> list[str]:
    """Create the missing topics; return the names created. Raise on partition mismatch.

    ``client`` is a bootstrap address (the embedded broker) or a whole admin-client config
    (``CommonSettings.admin_config()``: the cluster's TLS/SASL settings included).
    """
    config: dict[str, Any] = (
        {"bootstrap.servers": client, **LIBRDKAFKA_LOGS}
        if isinstance(client, str)
        else dict(client)
    )
    with admin_client(config) as admin:
        return _ensure(admin, list(specs), replication, timeout)


@contextmanager
def admin_client(config: Mapping[str, Any]) -> Iterator[AdminClient]:
    """An admin client, polled when the block ends: that hands its librdkafka log lines to
    the logger of ``config`` (``LIBRDKAFKA_LOGS``); nothing else polls an admin client."""
    admin = AdminClient(dict(config))
    try:
        yield admin
    finally:
        admin.poll(0)


def _ensure(
    admin: AdminClient, specs: list[TopicSpec], replication: int, timeout: float
) -> list[str]:
    existing = admin.list_topics(timeout=timeout).topics
    for spec in specs:
        found = existing.get(spec.name)
        if found is not None and found.error is None and len(found.partitions) != spec.partitions:
            raise TopicMismatchError(
                f"topic {spec.name} has {len(found.partitions)} partitions, "
                f"expected {spec.partitions}"
            )
    missing = [s for s in specs if s.name not in existing or existing[s.name].error is not None]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, replication, config=dict(s.config)) for s in missing],
        request_timeout=timeout,
    )
    created: list[str] = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args and getattr(exc.args[0], "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                continue
            raise
    return created


#: topic settings ``paystream topics`` compares on a topic that already exists
CHECKED_CONFIG = ("cleanup.policy", "retention.ms")


def config_differences(
    specs: Iterable[TopicSpec], configs: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """``name: key=have, needs want`` for each checked setting an existing topic has otherwise
    (a topic or setting the broker did not report is not compared)."""
    found: list[str] = []
    for spec in specs:
        have_all = configs.get(spec.name, {})
        for key in CHECKED_CONFIG:
            want, have = spec.config.get(key), have_all.get(key)
            if want is not None and have is not None and want != have:
                found.append(f"{spec.name}: {key}={have}, needs {want}")
    return found


def topic_configs(
    client: Mapping[str, Any], names: Iterable[str], timeout: float = 15.0
) -> dict[str, dict[str, str]]:
    """The broker's config of each named topic (empty if it does not answer)."""
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    resources = [ConfigResource("topic", n) for n in names]
    if not resources:
        return {}
    configs: dict[str, dict[str, str]] = {}
    with admin_client(client) as admin:
        futures = admin.describe_configs(resources, request_timeout=timeout)
        for resource, future in futures.items():
            try:
                entries = future.result(timeout=timeout)
            except KafkaException:
                continue
            configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
    return configs
