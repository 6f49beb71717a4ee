"""Two CRM sink runners in one group on the real broker: a 429 across rebalances.

librdkafka keeps a partition's pause flag when the partition leaves the assignment and
comes back (measured on the embedded broker), so a runner that paused its partitions for a
back-off, lost one of them in a rebalance and resumed only what it still had, got that
partition back paused: it never delivered from it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import Producer

from devstack.commands import crm_command
from devstack.hubspot import HubSpotStandin
from paystream.metrics import PaystreamMetrics
from schemas.codec import default_codec
from sinks.app import RunnerService, create_crm_sink
from sinks.runner import SinkRunner
from sinks.settings import SinkSettings
from tests.integration.sinks.conftest import final, final_results

pytestmark = pytest.mark.broker

Settings = Callable[..., SinkSettings]

#: a 429 without Retry-After waits this long: far longer than the test may take, so only a
#: back-off that ends with its partitions' assignment lets the test pass in time
BACK_OFF_S = 60.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def running(service: RunnerService) -> Iterator[SinkRunner]:
    """One runner of ``service`` in a thread (its own consumer in the group) until exit."""
    stop = threading.Event()
    runner = service.runner(stop)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        stop.set()
        thread.join(30)
        runner.consumer.close()  # leaves the group: the other member takes the partitions
        while service.closers:  # the contact-id memory the runners share
            service.closers.pop()()
        assert not thread.is_alive(), "the runner did not stop"
        assert not errors, errors


def assigned(runner: SinkRunner) -> set[int]:
    return {partition for _topic, partition in runner.assigned}


def send_to_partitions(settings: SinkSettings, wave: str, per_partition: int) -> set[str]:
    """CRM commands spread over every partition explicitly; their idempotency keys."""
    codec = default_codec()
    producer = Producer(settings.producer_config())
    keys: set[str] = set()
    for partition in range(settings.paystream_topic_partitions):
        for i in range(per_partition):
            command = crm_command(f"cus_{wave}{partition}x{i}", "active", 1_700_000_000 + i)
            keys.add(command["idempotency_key"])
            producer.produce(
                settings.topics.sink_crm,
                key=command["customer_id"],
                value=codec.encode("crm_command", command),
                partition=partition,
            )
    assert producer.flush(30) == 0
    return keys


def test_a_429_across_rebalances_leaves_no_partition_paused(
    sink_settings: Settings,
    hubspot: HubSpotStandin,
    metrics: PaystreamMetrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYSTREAM_ENV", "development")
    settings = sink_settings(
        paystream_sink_retry_after_default_s=BACK_OFF_S,
        paystream_sink_retry_after_max_s=BACK_OFF_S,
    )
    service = create_crm_sink(settings, metrics)
    assert isinstance(service, RunnerService)
    everything = set(range(settings.paystream_topic_partitions))
    with running(service) as first:
        wait_for(lambda: assigned(first) == everything, "the first runner's assignment")
        hubspot.fail_next(429, count=1, path="batch/upsert")  # TEN_SECONDLY_ROLLING
        wave_1 = send_to_partitions(settings, "a", per_partition=3)
        wait_for(lambda: any(r.status == 429 for r in hubspot.requests), "the 429")
        # the first runner backs off with every partition paused; a second member joins
        with running(service) as second:
            wait_for(lambda: bool(assigned(first) and assigned(second)), "a rebalance", 60)
            results = final_results(settings, wave_1, timeout=40)
        # the second member left: the first has every partition again, and all of them
        # deliver (the one it paused, lost and got back included)
        wait_for(lambda: assigned(first) == everything, "the first runner's reassignment")
        # the live members' share of the group, as the lag alert reads it: all partitions
        held = metrics.registry.get_sample_value(
            "paystream_consumer_assigned_partitions", {"group": service.group_id}
        )
        assert held == len(everything)
        wave_2 = send_to_partitions(settings, "b", per_partition=3)
        results.update(final_results(settings, wave_2, timeout=40))

    assert {final(r)["outcome"] for r in results.values()} == {"delivered"}
    stored = {c["properties"]["stripe_customer_id"] for c in hubspot.state()["contacts"]}
    assert len(stored) == len(wave_1 | wave_2)
    assert [r.status for r in hubspot.requests].count(429) == 1
