"""SIGKILL in the middle of a stream: restart ends with the same states and command keys."""

from __future__ import annotations

import json
import time
import uuid

from confluent_kafka import Consumer

from paystream.settings import CommonSettings
from processors.lifecycle import CustomerRecord
from processors.offsets import resume_positions
from tests.integration.worker.conftest import (
    StartWorker,
    command_keys,
    publish,
    reference,
    storyline,
)
from tests.kafka_helpers import consume


def wait_for_commands(settings: CommonSettings, topic: str, at_least: int, timeout: float) -> int:
    consumer = Consumer(settings.consumer_config(f"test-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    seen, deadline = 0, time.monotonic() + timeout
    try:
        while seen < at_least and time.monotonic() < deadline:
            seen += sum(1 for m in consumer.consume(500, 0.05) if m.error() is None)
    finally:
        consumer.close()
    return seen


def test_sigkill_mid_stream_loses_nothing_and_invents_no_key(
    pipeline_settings: CommonSettings, start_worker: StartWorker
) -> None:
    topics = pipeline_settings.topics
    # one input topic, so the uninterrupted run is fully determined by the partition order
    items = storyline(customers=2000, seed=11, app=False)
    publish(pipeline_settings, items)
    expected = reference(pipeline_settings, items)
    total_crm = len(expected.commands[topics.sink_crm])

    first = start_worker("w1")
    first.wait_ready()
    seen = wait_for_commands(pipeline_settings, topics.sink_crm, at_least=300, timeout=120)
    first.kill()
    assert 300 <= seen < total_crm, "the kill did not land mid-stream"

    second = start_worker("w1")
    second.wait_ready()

    for topic in (topics.sink_crm, topics.sink_helpdesk):
        keys = command_keys(pipeline_settings, topic, expected.commands[topic], timeout=240)
        assert set(keys) == expected.commands[topic]  # none lost, none new (repeats allowed)

    changelog = consume(
        pipeline_settings,
        topics.changelog("customers"),
        until=lambda ms: (
            {m.key().decode() for m in ms} >= set(expected.records)
            and _states(ms) == _expected_states(expected.records)
        ),
        timeout=120,
    )
    assert _states(changelog) == _expected_states(expected.records)

    # and the commits caught up: the group resumes at the end of every input partition (a
    # commit held back for good would make each restart replay from there)
    records = consume(
        pipeline_settings, topics.stripe_events, until=lambda ms: len(ms) >= len(items)
    )
    ends: dict[tuple[str, int], int] = {}
    for m in records:
        ends[(m.topic(), m.partition())] = max(
            ends.get((m.topic(), m.partition()), 0), m.offset() + 1
        )
    group = pipeline_settings.consumer_config(topics.worker_app_id)
    deadline = time.monotonic() + 60
    while (resumes := resume_positions(group, list(ends))) != ends and time.monotonic() < deadline:
        time.sleep(0.5)
    assert resumes == ends


def _states(messages: list) -> dict[str, str | None]:  # type: ignore[type-arg]
    last: dict[str, str | None] = {}
    for m in messages:
        if m.value() is not None:
            last[m.key().decode()] = json.loads(m.value())["state"]
    return last


def _expected_states(records: dict[str, CustomerRecord]) -> dict[str, str | None]:
    return {c: r.state for c, r in records.items()}
