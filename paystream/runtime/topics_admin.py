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
