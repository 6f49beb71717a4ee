"""The dedup lookup reconcile asks (GET /events/{id}?key=) answers from either of two workers."""

from __future__ import annotations

import time

import pytest

from paystream.settings import CommonSettings
from schemas.codec import default_codec
from tests.integration.reconcile.conftest import TOKEN
from tests.integration.worker.conftest import (
    StartWorker,
    WorkerProcess,
    command_keys,
    publish,
    reference,
    storyline,
)

pytestmark = pytest.mark.broker


def processed(worker: WorkerProcess, event_id: str, key: str, timeout: float = 90) -> object:
    """The worker's answer once the group has settled (503 while rebalancing)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = worker.get(f"/events/{event_id}?key={key}", TOKEN)
        if status == 200 or time.monotonic() > deadline:
            assert status == 200, (status, body)
            return body["processed"]
        time.sleep(0.5)


def test_either_worker_knows_every_processed_event(
    pipeline_settings: CommonSettings, start_worker: StartWorker
) -> None:
    topics = pipeline_settings.topics
    items = storyline(customers=8, seed=11, duplicates=False, app=False)
    publish(pipeline_settings, items)
    expected = reference(pipeline_settings, items)
    env = {"PAYSTREAM_API_TOKEN": TOKEN, "PAYSTREAM_WORKER_ADVERTISED_HOST": "localhost"}
    one, two = start_worker("w1", **env), start_worker("w2", **env)
    one.wait_ready()
    two.wait_ready()
    command_keys(pipeline_settings, topics.sink_helpdesk, expected.commands[topics.sink_helpdesk])

    codec = default_codec()
    events = [(codec.decode(value)[1]["event_id"], key) for _kind, (key, value) in items]
    assert len(events) >= 8 * 4
    for event_id, key in events:
        for worker in (one, two):  # half of them are routed to the other worker
            assert processed(worker, event_id, key) is True, (event_id, key)
    # both own partitions, so the requests above crossed between them
    owned = [set(w.get("/readyz")[1]["partitions"]) for w in (one, two)]  # type: ignore[arg-type]
    assert owned[0] and owned[1] and not owned[0] & owned[1], owned
    customer = next(key for _e, key in events if key.startswith("cus_"))
    for worker in (one, two):
        assert processed(worker, "evt_never_delivered", customer) is False
        assert worker.get(f"/events/evt_never_delivered?key={customer}", "wrong")[0] == 401
