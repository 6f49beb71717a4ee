"""Fixtures of the sink tests: stand-ins on free ports, settings, a sink in a thread."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import hubspot as hubspot_standin
from devstack import zendesk as zendesk_standin
from paystream.metrics import PaystreamMetrics
from paystream.settings import CommonSettings
from schemas.codec import default_codec
from sinks.service import SinkService
from sinks.settings import SinkSettings
from tests.kafka_helpers import consume, decode_all, produce

FINAL = {"delivered", "dry_run", "dead_lettered"}
PAYSTREAM = str(Path(sys.executable).parent / "paystream")


@pytest.fixture
def hubspot() -> Iterator[hubspot_standin.HubSpotStandin]:
    with hubspot_standin.HubSpotStandin() as standin:
        yield standin


@pytest.fixture
def zendesk() -> Iterator[zendesk_standin.ZendeskStandin]:
    with zendesk_standin.ZendeskStandin() as standin:
        yield standin


def standin_env(
    hubspot: hubspot_standin.HubSpotStandin, zendesk: zendesk_standin.ZendeskStandin
) -> dict[str, str]:
    """Environment pointing a ``paystream sinks`` process at both stand-ins."""
    return {
        "HUBSPOT_API_BASE": hubspot.url,
        "HUBSPOT_ACCESS_TOKEN": hubspot.token,
        "ZENDESK_API_BASE": zendesk.url,
        "ZENDESK_EMAIL": zendesk.email,
        "ZENDESK_API_TOKEN": zendesk.token,
        "PAYSTREAM_SINKS_METRICS_PORT": "0",
        "PAYSTREAM_SINK_BACKOFF_BASE_S": "0.05",
        "PAYSTREAM_SINK_BACKOFF_MAX_S": "0.2",
    }


@pytest.fixture
def sink_settings(
    pipeline_settings: CommonSettings,
    hubspot: hubspot_standin.HubSpotStandin,
    zendesk: zendesk_standin.ZendeskStandin,
) -> Callable[..., SinkSettings]:
    """SinkSettings on the test's topics and stand-ins, writes on, fast retries."""

    def make(**overrides: Any) -> SinkSettings:
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": pipeline_settings.kafka_bootstrap_servers,
            "paystream_broker_profile": pipeline_settings.paystream_broker_profile,
            "paystream_topic_prefix": pipeline_settings.topic_prefix,
            "paystream_topic_partitions": pipeline_settings.paystream_topic_partitions,
            "hubspot_api_base": hubspot.url,
            "hubspot_access_token": hubspot.token,
            "zendesk_api_base": zendesk.url,
            "zendesk_email": zendesk.email,
            "zendesk_api_token": zendesk.token,
            "paystream_sink_writes": "enabled",
            "paystream_sinks_metrics_port": 0,
            "paystream_sink_max_attempts": 3,
            "paystream_sink_backoff_base_s": 0.05,
            "paystream_sink_backoff_max_s": 0.2,
            "paystream_sink_retry_after_max_s": 5.0,
            "paystream_sink_timeout_s": 5.0,
        }
        values.update(overrides)
        return SinkSettings(**values)

    return make


class RunningSink:
    """A sink service running in a thread until the ``with`` block ends."""

    def __init__(self, service: SinkService) -> None:
        self.service = service
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.service.run(self.stop)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> RunningSink:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the sink did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def metrics() -> PaystreamMetrics:
    return PaystreamMetrics()


def send_commands(
    settings: CommonSettings, topic: str, schema: str, commands: list[dict[str, Any]]
) -> None:
    codec = default_codec()
    produce(
        settings,
        topic,
        [(c["customer_id"] or c["idempotency_key"], codec.encode(schema, c)) for c in commands],
    )


def final_results(
    settings: CommonSettings, keys: set[str], timeout: float = 90.0
) -> dict[str, list[dict[str, Any]]]:
    """Every sink.results record per key, once each key has a final outcome."""

    def by_key(messages: list[Any]) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for record in decode_all(messages):
            grouped.setdefault(record["idempotency_key"], []).append(record)
        return grouped

    def done(messages: list[Any]) -> bool:
        grouped = by_key(messages)
        return all(any(r["outcome"] in FINAL for r in grouped.get(k, [])) for k in keys)

    messages = consume(settings, settings.topics.sink_results, until=done, timeout=timeout)
    grouped = by_key(messages)
    missing = [k for k in keys if not any(r["outcome"] in FINAL for r in grouped.get(k, []))]
    assert not missing, f"no final outcome for {missing}"
    return grouped


def dead_letters(
    settings: CommonSettings, count: int, timeout: float = 60.0
) -> list[dict[str, Any]]:
    messages = consume(
        settings, settings.topics.sink_dlq, until=lambda m: len(m) >= count, timeout=timeout
    )
    return decode_all(messages)


def final(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in records if r["outcome"] in FINAL)
