"""The dedup table forgets event ids older than the retention (tombstones in its changelog)."""

from __future__ import annotations

import time

from paystream.settings import CommonSettings
from tests.integration.worker.conftest import StartWorker
from tests.kafka_helpers import consume, produce
from tests.unit.processors.stripe_events import encoded_stripe


def test_old_event_ids_are_purged_recent_ones_kept(
    pipeline_settings: CommonSettings, start_worker: StartWorker
) -> None:
    topics = pipeline_settings.topics
    now = int(time.time())
    produce(
        pipeline_settings,
        topics.stripe_events,
        [
            encoded_stripe("invoice.paid", "evt_recent", now - 3600, "cus_r"),
            encoded_stripe("invoice.paid", "evt_old", now - 3 * 86400, "cus_o"),
        ],
    )
    worker = start_worker(PAYSTREAM_DEDUP_RETENTION="2d", PAYSTREAM_DEDUP_PURGE_INTERVAL="0.5s")
    worker.wait_ready()

    def tombstoned(messages: list) -> set[str]:  # type: ignore[type-arg]
        return {m.key().decode() for m in messages if m.value() is None}

    changelog = consume(
        pipeline_settings,
        topics.changelog("dedup"),
        until=lambda ms: "evt_old" in tombstoned(ms),
        timeout=60,
    )
    assert "evt_old" in tombstoned(changelog)
    assert "evt_recent" not in tombstoned(changelog)
    assert {m.key().decode() for m in changelog if m.value() is not None} >= {
        "evt_recent",
        "evt_old",
    }
