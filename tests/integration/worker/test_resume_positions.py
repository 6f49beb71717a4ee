"""``resume_positions`` against the real broker: where the worker's group resumes reading."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from paystream.settings import CommonSettings
from processors.offsets import resume_positions
from tests.kafka_helpers import produce


def test_committed_offset_or_the_first_offset_when_nothing_is_committed(
    pipeline_settings: CommonSettings,
) -> None:
    topic = pipeline_settings.topics.stripe_events
    group = f"{pipeline_settings.topics.worker_app_id}-resume"
    produce(pipeline_settings, topic, [("cus_1", b"a"), ("cus_1", b"b"), ("cus_1", b"c")])
    config = pipeline_settings.consumer_config(group)
    partitions = [(topic, p) for p in range(pipeline_settings.topics.partitions)]
    assert resume_positions(config, partitions) == dict.fromkeys(partitions, 0)

    # the group commits offset 2 on the partition that holds the three records
    probe = Consumer(pipeline_settings.consumer_config(f"{group}-probe"))
    try:
        lows_highs = {
            p: probe.get_watermark_offsets(TopicPartition(*p), timeout=10) for p in partitions
        }
    finally:
        probe.close()
    (written,) = [p for p, (_low, high) in lows_highs.items() if high > 0]
    committer = Consumer(config)
    try:
        committer.commit(offsets=[TopicPartition(*written, 2)], asynchronous=False)
    finally:
        committer.close()
    assert resume_positions(config, partitions) == {**dict.fromkeys(partitions, 0), written: 2}
