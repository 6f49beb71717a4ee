"""The onboarding-stuck timer: one ticket per stuck onboarding, ever; none once completed."""

from __future__ import annotations

import time

from paystream.settings import CommonSettings
from tests.integration.worker.conftest import StartWorker, command_keys
from tests.kafka_helpers import consume, decode_all, produce
from tests.unit.processors.stripe_events import encoded_app, encoded_stripe


def test_stuck_onboarding_opens_one_ticket(
    pipeline_settings: CommonSettings, start_worker: StartWorker
) -> None:
    topics = pipeline_settings.topics
    now = int(time.time())
    produce(
        pipeline_settings,
        topics.stripe_events,
        [
            encoded_stripe("checkout.session.completed", "evt_stuck", now, "cus_stuck"),
            encoded_stripe("checkout.session.completed", "evt_done", now, "cus_done"),
        ],
    )
    produce(
        pipeline_settings,
        topics.app_events,
        [encoded_app("onboarding.completed", "app_done", now + 1, "cus_done")],
    )
    worker = start_worker(
        PAYSTREAM_ONBOARDING_STUCK_AFTER="3s", PAYSTREAM_ONBOARDING_SCAN_INTERVAL="0.5s"
    )
    worker.wait_ready()

    stuck_key = "paystream:onboarding_stuck:cus_stuck:evt_stuck"
    command_keys(pipeline_settings, topics.sink_helpdesk, {stuck_key}, timeout=90)
    # let the timer scan many more times, then look again: still exactly one ticket
    deadline_events = consume(
        pipeline_settings,
        topics.app_events,
        until=lambda ms: (
            sum(1 for r in decode_all(ms) if r["type"] == "paystream.onboarding_deadline") >= 1
        ),
        timeout=30,
    )
    assert deadline_events
    time.sleep(4)
    tickets = decode_all(consume(pipeline_settings, topics.sink_helpdesk, idle=2))
    assert [t["idempotency_key"] for t in tickets] == [stuck_key]
    (ticket,) = tickets
    assert ticket["trigger"] == "onboarding_stuck"
    assert ticket["customer_id"] == "cus_stuck"
    assert ticket["onboarding_stuck"]["opened_by_event_id"] == "evt_stuck"
    assert ticket["email"] == "billz@supabase.io"
