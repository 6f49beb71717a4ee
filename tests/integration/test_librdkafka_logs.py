"""librdkafka's own log lines come out as the process's JSON lines, not raw ``%3|…`` text."""

from __future__ import annotations

import json
import subprocess
import sys

from paystream.runtime.broker import free_port

#: a producer, a consumer and three admin clients (topics from the settings and from a bare
#: address, the worker's broker identity) that cannot reach their broker: librdkafka logs
#: FAIL errors
CLIENTS = """
import sys, time
from confluent_kafka import Consumer, KafkaException, Producer
from paystream.logging import configure_logging
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings
from processors.localstate import broker_identity

configure_logging("librdkafka-test", "info")
settings = CommonSettings(kafka_bootstrap_servers=sys.argv[1])
for client in (settings.admin_config(), sys.argv[1]):
    try:
        ensure_topics(client, [], timeout=1)
    except KafkaException:
        pass
assert broker_identity(settings.admin_config(), ["nowhere"], 1) is None
producer = Producer(settings.producer_config())
consumer = Consumer(settings.consumer_config("g"))
consumer.subscribe(["nowhere"])
producer.produce("nowhere", b"v")
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    producer.poll(0.1)
    consumer.poll(0.1)
consumer.close()
"""


def test_client_logs_are_json_lines_on_stderr() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLIENTS, f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    forwarded = {line["event"].split()[1] for line in lines if line.get("logger") == "librdkafka"}
    # the admin clients are librdkafka producer handles 1 to 3; a consumer names itself by
    # its group (client.id, so the broker's request counts can tell the clients apart)
    expected = {f"[rdkafka#producer-{n}]" for n in (1, 2, 3, 4)} | {"[g#consumer-5]"}
    assert expected <= forwarded, done.stderr[-2000:]
