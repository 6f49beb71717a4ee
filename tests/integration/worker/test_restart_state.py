"""Restarts keep the local tables when they match the changelogs, and only then.

* A clean restart keeps RocksDB, replays only what another worker wrote meanwhile, and
  still knows every event id: replayed old events are duplicates, nothing is re-applied.
* After the (memory-only) broker restarted, the kept files would describe topics that no
  longer exist: the worker wipes them and the same event ids count as new again.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

from paystream.runtime.broker import EmbeddedBroker
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings
from processors.localstate import MARKER
from tests.conftest import TEST_PARTITIONS
from tests.integration.worker.conftest import (
    StartWorker,
    WorkerProcess,
    command_keys,
    publish,
    reference,
    storyline,
)
from tests.unit.processors.stripe_events import encoded_stripe

TOKEN = "restart-test-token"


def local_tables(worker: WorkerProcess) -> dict[str, object]:
    """The last ``local tables`` decision the worker logged."""
    lines = [
        line
        for line in worker.log_path.read_text(errors="replace").splitlines()
        if '"event": "local tables"' in line
    ]
    assert lines, "the worker logged no local-tables decision"
    found: dict[str, object] = json.loads(lines[-1][lines[-1].index("{") :])
    return found


def outcome_count(worker: WorkerProcess, outcome: str) -> float:
    pattern = rf'paystream_events_total\{{[^}}]*outcome="{outcome}"[^}}]*\}} (\S+)'
    return sum(float(v) for v in re.findall(pattern, worker.metrics()))


def marker_of(tmp_path: Path, name: str, worker: WorkerProcess) -> Path:
    return tmp_path / name / f"worker-{worker.port}" / MARKER


def test_clean_restart_keeps_tables_and_catches_up_on_the_changelog(
    pipeline_settings: CommonSettings, start_worker: StartWorker, tmp_path: Path
) -> None:
    topics = pipeline_settings.topics
    first_items = storyline(customers=30, seed=41, app=False)
    publish(pipeline_settings, first_items)
    first_keys = reference(pipeline_settings, first_items).commands[topics.sink_crm]

    a = start_worker("a", PAYSTREAM_API_TOKEN=TOKEN)
    a.wait_ready()
    assert local_tables(a)["kept"] is False  # first start
    assert first_keys <= set(command_keys(pipeline_settings, topics.sink_crm, first_keys))
    a.stop()
    assert a.process.returncode == 0
    assert marker_of(tmp_path, "a", a).is_file()

    # while a is down, b (own data directory, same group) processes more customers
    second_items = storyline(customers=30, seed=42, app=False)
    publish(pipeline_settings, second_items)
    everything = first_items + second_items
    b = start_worker("b")
    b.wait_ready()
    # b alone must deliver every command: a partition it stops handling shows here, not
    # later as events a2 applies again
    everything_keys = reference(pipeline_settings, everything).commands[topics.sink_crm]
    delivered = set(command_keys(pipeline_settings, topics.sink_crm, everything_keys))
    assert not everything_keys - delivered, f"{len(everything_keys - delivered)} never delivered"
    b.stop()
    # a stop cut short (killed after 30 s) loses b's last table writes: a2 would rightly
    # apply those events again, and the count below would blame the kept tables
    assert b.process.returncode == 0

    a2 = start_worker("a", port=a.port, PAYSTREAM_API_TOKEN=TOKEN)
    a2.wait_ready()
    decision = local_tables(a2)
    assert decision["kept"] is True, decision
    assert not marker_of(tmp_path, "a", a2).exists()  # taken: a crash now leaves none

    # every old event again, then one new event for a customer only b has seen
    customer = second_items[0][1][0]
    new_event = (
        "stripe",
        encoded_stripe("invoice.paid", f"evt_new_{uuid.uuid4().hex}", 1_800_000_000, customer),
    )
    publish(pipeline_settings, [*everything, new_event])
    want = reference(pipeline_settings, [*everything, new_event])
    command_keys(pipeline_settings, topics.sink_crm, want.commands[topics.sink_crm])

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every delivery counted once it was processed
        if outcome_count(a2, "duplicate") + outcome_count(a2, "applied") > len(everything):
            break
        time.sleep(0.2)
    assert outcome_count(a2, "applied") == 1  # only the new event: a knew every other id
    assert outcome_count(a2, "duplicate") >= len(everything)
    for cus, record in want.records.items():
        status, body = a2.get(f"/customers/{cus}", TOKEN)
        assert (status, body.get("billing_state")) == (200, record.state), cus


def test_broker_restart_wipes_stale_local_tables(start_worker: StartWorker, tmp_path: Path) -> None:
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        settings = CommonSettings(
            kafka_bootstrap_servers=broker.bootstrap_servers,
            paystream_broker_profile="embedded",
            paystream_topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
            paystream_topic_partitions=TEST_PARTITIONS,
        )
        ensure_topics(broker.bootstrap_servers, settings.topics.specs())
        items = storyline(customers=20, seed=43, app=False)
        expected = reference(settings, items)
        topics = settings.topics
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "PAYSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        }

        publish(settings, items)
        first = start_worker("w", **env)
        first.wait_ready()
        command_keys(settings, topics.sink_crm, expected.commands[topics.sink_crm])
        first.stop()
        assert marker_of(tmp_path, "w", first).is_file()

        # the broker comes back empty (memory only); the same events arrive again
        broker.stop()
        broker.start()
        ensure_topics(broker.bootstrap_servers, topics.specs())
        publish(settings, items)

        second = start_worker("w", port=first.port, **env)
        second.wait_ready()
        decision = local_tables(second)
        assert decision["kept"] is False, decision
        assert "re-created" in str(decision["reason"])
        # the stale tables would call every event a duplicate and emit nothing
        for topic in (topics.sink_crm, topics.sink_helpdesk):
            keys = command_keys(settings, topic, expected.commands[topic], timeout=120)
            assert set(keys) == expected.commands[topic]
        second.stop()
